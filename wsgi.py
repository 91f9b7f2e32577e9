"""WSGI entry point: ``flask --app wsgi ...``, and the app of each worker of the production
server (``python -m app.serve``)."""

from app import create_app

app = create_app()
