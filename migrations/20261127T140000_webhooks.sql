-- Webhooks: endpoints a program subscribes, the events emitted for them (the outbox, written in
-- the transaction that caused the event) and one delivery per event per endpoint (the log).

CREATE TABLE webhook_endpoint (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  url text NOT NULL,
  events text[] NOT NULL,
  -- The HMAC signing key. It must be usable to sign, so it is stored as is (like the passes'
  -- authentication tokens); the API shows it once at creation (or rotation) and never again.
  secret text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  disabled_at timestamptz,
  disabled_reason text,
  -- The first failed attempt since the last successful one (null while healthy): the endpoint is
  -- disabled when failures have gone on for the configured span (24 h) without a success.
  failing_since timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  last_success_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Serves emitEvent's one query (program_id = $1 AND enabled AND $2 = ANY(events)) and the list.
CREATE INDEX webhook_endpoint_program_idx ON webhook_endpoint (program_id, created_at);

CREATE TABLE webhook_event (
  id uuid PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  type text NOT NULL,
  -- json, not jsonb: the payload keeps its key order, so every attempt sends the same bytes.
  data json NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_event_program_idx ON webhook_event (program_id, created_at);

CREATE TABLE webhook_delivery (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoint(id) ON DELETE CASCADE,
  event_id uuid NOT NULL REFERENCES webhook_event(id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error text,
  last_attempt_at timestamptz,
  next_attempt_at timestamptz,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_delivery_endpoint_idx ON webhook_delivery (endpoint_id, id);
CREATE INDEX webhook_delivery_pending_idx ON webhook_delivery (endpoint_id) WHERE status = 'pending';
CREATE INDEX webhook_delivery_event_idx ON webhook_delivery (event_id);
