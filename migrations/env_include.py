"""What autogenerate compares: our tables, not the spatial extension's own catalogue."""

from geoalchemy2 import alembic_helpers

from app.db import Base


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table" and reflected and compare_to is None and name not in Base.metadata.tables:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
