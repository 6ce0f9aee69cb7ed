-- The Citus path (issue #13, docs/architecture.md "Beyond one database"): every per-program table
-- carries program_id, so the schema can be distributed by program. Six tables lacked it; their
-- program follows from a parent row. Existing rows are filled from it here; new rows are filled by
-- the code where it writes in bulk (campaign recipients) and otherwise by a BEFORE INSERT trigger
-- from the same parent, so every insert path (and every branch still writing without the column)
-- stays correct. Rows whose parent is gone (registrations of unknown serials) cannot belong to a
-- program and are removed.

CREATE FUNCTION fill_program_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.program_id IS NULL THEN
    CASE TG_TABLE_NAME
      WHEN 'apple_registration' THEN SELECT c.program_id INTO NEW.program_id FROM card c WHERE c.apple_serial = NEW.serial_number;
      WHEN 'apple_pass_fetch' THEN SELECT c.program_id INTO NEW.program_id FROM card c WHERE c.id = NEW.card_id;
      WHEN 'campaign_recipient' THEN SELECT c.program_id INTO NEW.program_id FROM campaign c WHERE c.id = NEW.campaign_id;
      WHEN 'google_notification' THEN SELECT g.program_id INTO NEW.program_id FROM google_object g WHERE g.object_id = NEW.object_id;
      WHEN 'webhook_delivery' THEN SELECT e.program_id INTO NEW.program_id FROM webhook_endpoint e WHERE e.id = NEW.endpoint_id;
      -- Idempotency keys are scoped by the program's id (http/idempotency.ts); another scope
      -- (an instance-wide key) has no program.
      WHEN 'idempotency_record' THEN
        IF NEW.scope ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN NEW.program_id := NEW.scope::uuid; END IF;
    END CASE;
  END IF;
  RETURN NEW;
END
$$;

ALTER TABLE apple_registration ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
UPDATE apple_registration r SET program_id = c.program_id FROM card c WHERE c.apple_serial = r.serial_number;
DELETE FROM apple_registration WHERE program_id IS NULL;
ALTER TABLE apple_registration ALTER COLUMN program_id SET NOT NULL;
CREATE TRIGGER apple_registration_program_id BEFORE INSERT ON apple_registration FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();

ALTER TABLE apple_pass_fetch ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
UPDATE apple_pass_fetch f SET program_id = c.program_id FROM card c WHERE c.id = f.card_id;
ALTER TABLE apple_pass_fetch ALTER COLUMN program_id SET NOT NULL;
CREATE TRIGGER apple_pass_fetch_program_id BEFORE INSERT ON apple_pass_fetch FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();

ALTER TABLE campaign_recipient ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
UPDATE campaign_recipient r SET program_id = c.program_id FROM campaign c WHERE c.id = r.campaign_id;
ALTER TABLE campaign_recipient ALTER COLUMN program_id SET NOT NULL;
CREATE TRIGGER campaign_recipient_program_id BEFORE INSERT ON campaign_recipient FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();

ALTER TABLE google_notification ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
UPDATE google_notification n SET program_id = g.program_id FROM google_object g WHERE g.object_id = n.object_id;
DELETE FROM google_notification WHERE program_id IS NULL;
ALTER TABLE google_notification ALTER COLUMN program_id SET NOT NULL;
CREATE TRIGGER google_notification_program_id BEFORE INSERT ON google_notification FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();

ALTER TABLE webhook_delivery ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
UPDATE webhook_delivery d SET program_id = e.program_id FROM webhook_endpoint e WHERE e.id = d.endpoint_id;
ALTER TABLE webhook_delivery ALTER COLUMN program_id SET NOT NULL;
CREATE TRIGGER webhook_delivery_program_id BEFORE INSERT ON webhook_delivery FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();

ALTER TABLE idempotency_record ADD COLUMN program_id uuid REFERENCES program(id) ON DELETE CASCADE;
-- Null only for a scope that is not a program (none today): such a record is instance-wide.
UPDATE idempotency_record SET program_id = scope::uuid WHERE scope ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
CREATE TRIGGER idempotency_record_program_id BEFORE INSERT ON idempotency_record FOR EACH ROW WHEN (NEW.program_id IS NULL) EXECUTE FUNCTION fill_program_id();
