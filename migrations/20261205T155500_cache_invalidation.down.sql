DROP TRIGGER IF EXISTS webhook_endpoints_changed_notify ON webhook_endpoint;
DROP TRIGGER IF EXISTS api_key_changed_notify ON api_key;
DROP FUNCTION IF EXISTS walletcards_notify_webhook_endpoints_changed();
DROP FUNCTION IF EXISTS walletcards_notify_api_key_changed();
