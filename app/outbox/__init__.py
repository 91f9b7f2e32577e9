"""The webhook feed (a transactional outbox): what the use cases record, in their own
transaction, for the webhook deliverer (:mod:`app.hooks`) to send. It needs nothing of the
other areas, so every area may write to it."""
