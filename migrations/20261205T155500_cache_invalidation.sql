-- Cross-instance invalidation of the hot-path caches (issue #14): API keys and webhook endpoint
-- lists are kept in each process's memory, and every change to them, by whatever code or SQL, tells
-- every process through NOTIFY (program rows have had their `program_changed` trigger since
-- 20261205T130100_cluster). PostgreSQL delivers a notification only when its
-- transaction commits (never on rollback), to every listening session, in commit order; payloads are
-- ids, never rows or secrets.

-- last_used_at is written once a minute per key in use: not a change the cache cares about.
CREATE FUNCTION walletcards_notify_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('api_key_changed', OLD.id::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER api_key_changed_notify AFTER UPDATE OF revoked_at, role, program_id, key_hash OR DELETE ON api_key
  FOR EACH ROW EXECUTE FUNCTION walletcards_notify_api_key_changed();

CREATE FUNCTION walletcards_notify_webhook_endpoints_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('webhook_endpoints_changed', NEW.program_id::text);
  ELSE
    PERFORM pg_notify('webhook_endpoints_changed', OLD.program_id::text);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_changed_notify AFTER INSERT OR UPDATE OF enabled, events, program_id OR DELETE ON webhook_endpoint
  FOR EACH ROW EXECUTE FUNCTION walletcards_notify_webhook_endpoints_changed();
