"""Alembic environment: migrates DATABASE_URL, or the URL the caller passes in."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

import app.models  # noqa: F401 - registers every table on the metadata
from app.db import Base, create_engine
from config import load_config
from migrations.env_include import include_object

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
