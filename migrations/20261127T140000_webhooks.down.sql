DROP TABLE webhook_delivery, webhook_event, webhook_endpoint;
