"""The traceability domain in plain Python: identifiers, serials, lifecycle, rules, credit.

Nothing in this package imports Flask or a database driver: it takes values and returns
values or raises :class:`tracecore.errors.DomainError`.
"""
