-- The migration funnel "plastic → wallet" (issue #12, item 4): the one step nothing recorded per card
-- was "the holder opened their link". join_view counts anonymous join-page visitors, not card pages,
-- so the card keeps the first time its page was opened (set once, never moved). Frozen in time:
-- never edit an applied migration.
ALTER TABLE card ADD COLUMN page_viewed_at timestamptz;
