-- "I already have a card" (issue #12, item 2): the holder of an imported plastic card takes the SAME
-- card to the wallet from the join page (plastic number + phone). One row per card: when it was first
-- claimed, and whether the phone was proven — by a one-time code ('otp') at the claim, or, without an
-- SMS gateway, by the card's first completed purchase after it ('purchase'; null until then). A table
-- of its own rather than card columns, like card_page_view: a claim never rewrites the card row.
-- Frozen in time: never edit an applied migration.
CREATE TABLE card_claim (
  program_id uuid NOT NULL,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  verified_at timestamptz,
  verified_via text CHECK (verified_via IN ('otp', 'purchase')),
  PRIMARY KEY (program_id, card_id),
  CHECK ((verified_at IS NULL) = (verified_via IS NULL))
);
