-- Many instances on one database (issue #13): nothing that matters lives in one process.

-- Program images are cached per process with the pass builder; the cache is keyed by this version,
-- which every image change bumps in the transaction that stores the image, so an instance that
-- did not save the image never signs a pass with the old one.
ALTER TABLE program ADD COLUMN image_version integer NOT NULL DEFAULT 0;

-- Every change to a program row tells every instance (LISTEN program_changed, payload: the id), so
-- caches of program rows and images are dropped everywhere, not only where the change was made.
CREATE FUNCTION notify_program_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('program_changed', coalesce(NEW.id, OLD.id)::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER program_changed AFTER UPDATE OR DELETE ON program
  FOR EACH ROW EXECUTE FUNCTION notify_program_changed();

-- Per-address request limits shared by every instance (@fastify/rate-limit store): a fixed window
-- per key (route + client address), counted atomically.
CREATE TABLE rate_limit_counter (
  key text PRIMARY KEY,
  hits integer NOT NULL,
  reset_at timestamptz NOT NULL
);
CREATE INDEX rate_limit_counter_reset_idx ON rate_limit_counter (reset_at);

-- Outgoing API rate limits shared by every instance (Google Wallet: 20 requests/s per project):
-- the next free slot of each limited API, moved on atomically by every request.
CREATE TABLE api_rate_slot (
  name text PRIMARY KEY,
  next_at timestamptz NOT NULL
);

-- Scheduled work (automations tick, campaign tick, pruning) runs once per tick across all workers:
-- a lease per task.
CREATE TABLE scheduled_task (
  name text PRIMARY KEY,
  holder text,
  running_until timestamptz,
  last_started_at timestamptz,
  last_finished_at timestamptz
);
