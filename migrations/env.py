"""Alembic environment: runs the migrations against DATABASE_URL (or the URL given by the caller)."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

import app.models  # noqa: F401 - registers every table on the metadata
from app.db import Base, create_engine
from config import load_config

def include_object(obj, name, type_, reflected, compare_to):
    """Leave the spatial extension's own catalogue tables alone."""
    if type_ == "table" and reflected and compare_to is None and name not in Base.metadata.tables:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


url = context.config.attributes.get("database_url") or load_config().DATABASE_URL
engine = create_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
