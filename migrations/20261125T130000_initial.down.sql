DROP TABLE apple_registration, idempotency_record, ledger_entry, purchase, card, staff_member,
  api_key, program_image, program;
DROP SEQUENCE card_update_tag_seq;
