DROP TABLE google_callback_nonce, google_notification, google_object, google_class;
