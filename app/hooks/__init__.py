"""Signed webhooks: subscriptions, the feed (a transactional outbox) the use cases write in
their own transaction, and the deliverer process (``flask --app wsgi hooks deliver``)."""
