"""Signed webhooks: subscriptions (the API), and the deliverer process
(``flask --app wsgi hooks deliver``) that sends the feed the use cases write
(:mod:`app.outbox`)."""
