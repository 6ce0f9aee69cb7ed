-- The migration funnel "plastic → wallet" (issue #12, item 4): the one step nothing recorded per card
-- was "the holder opened their link" (join_view counts anonymous join-page visitors, not card pages).
-- One row per card, written by the card page's first view and never moved. A table of its own, not a
-- card column, so that a page view never writes (or locks) the card row purchases update.
-- Frozen in time: never edit an applied migration.
CREATE TABLE card_page_view (
  program_id uuid NOT NULL,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  first_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, card_id)
);
