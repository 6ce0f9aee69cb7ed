-- The PassKit web service answers 304 from a map in each process (issue #14): serial → the card's
-- Last-Modified (updated_at) and a digest of its authentication token. Every change to what that
-- answer depends on — a card's updated_at, token or serial, a card deleted — tells every process
-- through NOTIFY 'apple_pass_changed' at commit, so each forgets those serials.
--
-- The payload is a comma-separated list of `card id:serial` (serials never contain ',' or ':', the
-- web service's identifier pattern); '*' means "forget every serial". The card id lets the process
-- that made the change stop holding that card out of its map (wallets/apple/not-modified-map.ts).
-- Cost (docs/benchmarks.md, the 304 map): PostgreSQL serialises the commits of transactions that
-- sent a NOTIFY, so every card write pays it; measured 0.23–0.28× the one-row UPDATE throughput of
-- the same table without the trigger at 4 clients. See there before enabling this in production.
-- One trigger call per statement (transition tables), not per row: a campaign chunk that touches
-- 1,000 cards sends 20 notifications of up to 50 cards (an item is at most 137 characters, a
-- payload at most 8,000 bytes), not 1,000.
CREATE FUNCTION walletcards_notify_apple_pass_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  batch text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('apple_pass_changed', '*');
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    FOR batch IN
      SELECT string_agg(serial, ',') FROM (
        SELECT id::text || ':' || apple_serial AS serial, (row_number() OVER () - 1) / 50 AS chunk FROM walletcards_old_cards
      ) s GROUP BY chunk
    LOOP
      PERFORM pg_notify('apple_pass_changed', batch);
    END LOOP;
    RETURN NULL;
  END IF;
  FOR batch IN
    SELECT string_agg(serial, ',') FROM (
      SELECT serial, (row_number() OVER () - 1) / 50 AS chunk FROM (
        SELECT o.id::text || ':' || o.apple_serial AS serial FROM walletcards_old_cards o JOIN walletcards_new_cards n ON n.id = o.id
         WHERE o.updated_at IS DISTINCT FROM n.updated_at
            OR o.apple_auth_token IS DISTINCT FROM n.apple_auth_token
            OR o.apple_serial IS DISTINCT FROM n.apple_serial
        UNION
        SELECT n.id::text || ':' || n.apple_serial FROM walletcards_old_cards o JOIN walletcards_new_cards n ON n.id = o.id
         WHERE o.apple_serial IS DISTINCT FROM n.apple_serial
      ) changed
    ) s GROUP BY chunk
  LOOP
    PERFORM pg_notify('apple_pass_changed', batch);
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER apple_pass_changed_update AFTER UPDATE ON card
  REFERENCING OLD TABLE AS walletcards_old_cards NEW TABLE AS walletcards_new_cards
  FOR EACH STATEMENT EXECUTE FUNCTION walletcards_notify_apple_pass_changed();
CREATE TRIGGER apple_pass_changed_delete AFTER DELETE ON card
  REFERENCING OLD TABLE AS walletcards_old_cards
  FOR EACH STATEMENT EXECUTE FUNCTION walletcards_notify_apple_pass_changed();
CREATE TRIGGER apple_pass_changed_truncate AFTER TRUNCATE ON card
  FOR EACH STATEMENT EXECUTE FUNCTION walletcards_notify_apple_pass_changed();
