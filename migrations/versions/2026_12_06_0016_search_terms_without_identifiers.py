"""Search terms in the access log keep no personal identifiers; decisions indexed by target
(issue 15).

The workspace logged what a regulator searched for as typed, so a courier searched by the
full mobile or resident ID number left that number in clear in the append-only access log.
The service now logs such a term masked (``138****0001``) with the number's keyed hash
(HMAC-SHA256 with ``SECRET_KEY``, as the couriers' table keeps it) and marks the line as
personal data; a term that found a courier by name is kept masked (``张*``) likewise.

It also indexes the decisions' audit trail by target: the queue shows each finding's
decision and reason on its row, and the CSV export for every row.

This revision rewrites the existing search lines so: the one sanctioned exception to the
log's append-only rule. The trigger is lifted for the rewrite and put back in the same
transaction, and the rewrite is itself recorded by one access-log line
(``system rewrite access_log 0016``). The downgrade cannot bring back what was masked.

The redaction is frozen here as tracecore/identity.py had it on 2026-12-06: a migration must
do tomorrow what it did today, whatever that module becomes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 23:00:00
"""

import hashlib
import hmac
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID_IN_TEXT = re.compile(r"(?<![\dA-Za-z])\d(?:[\s-]*\d){16}[\s-]*[\dXx](?![\dA-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<![\dA-Za-z+])(?:\+?86[\s-]*)?1[3-9](?:[\s-]*\d){9}(?![\dA-Za-z])")
_UPDATE_TRIGGER_SQLITE = (
    "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END"
)

access_log = sa.table(
    "access_log",
    sa.column("id", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor_role", sa.String),
    sa.column("action", sa.String),
    sa.column("target_type", sa.String),
    sa.column("target_id", sa.String),
    sa.column("personal_data", sa.Boolean),
    sa.column("detail", sa.String),
)


def _keyed_hash(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def redact(secret: str, term: str, showed_courier: bool) -> tuple[str, list[str]]:
    """The term as the log keeps it now, and ``kind:hash`` per identifier in it."""
    hashes: list[str] = []

    def replace(kind: str):
        def masked(match: re.Match) -> str:
            number = re.sub(r"[\s-]", "", match.group(0)).upper()
            if kind == "phone":
                number = number.removeprefix("+86").removeprefix("86")
                shown = number[:3] + "****" + number[-4:]
            else:
                shown = number[:6] + "*" * (len(number) - 10) + number[-4:]
            hashes.append(f"{kind}:{_keyed_hash(secret, number)}")
            return shown

        return masked

    term = _ID_IN_TEXT.sub(replace("id_number"), term)
    term = _MOBILE_IN_TEXT.sub(replace("phone"), term)
    if not hashes and showed_courier and term:
        # The old line was marked because it listed a courier: the term was (part of) a name.
        hashes.append(f"name:{_keyed_hash(secret, 'name:' + term)}")
        term = term[:1] + "*" * max(len(term) - 1, 1)
    return term, hashes


def _secret() -> str:
    from config import load_config

    return load_config().SECRET_KEY


def upgrade() -> None:
    # Plain CREATE INDEX: a batch copy would lose the append-only triggers.
    op.create_index("ix_audit_entries_target", "audit_entries", ["target_type", "target_id"])
    _rewrite_search_terms()


def _rewrite_search_terms() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            access_log.c.id,
            access_log.c.target_id,
            access_log.c.personal_data,
            access_log.c.detail,
        ).where(access_log.c.target_type == "search")
    ).all()
    secret = _secret() if rows else ""
    changes = []
    for row in rows:
        term, hashes = redact(secret, row.target_id, bool(row.personal_data))
        if hashes:
            detail = " ".join(filter(None, [row.detail, *hashes]))[:300]
            changes.append({"row_id": row.id, "term": term[:64], "detail": detail})
    if not changes:
        return
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only")
    else:
        op.execute("DROP TRIGGER access_log_no_update")
    conn.execute(
        access_log.update()
        .where(access_log.c.id == sa.bindparam("row_id"))
        .values(target_id=sa.bindparam("term"), personal_data=True, detail=sa.bindparam("detail")),
        changes,
    )
    if postgresql:
        op.execute("ALTER TABLE access_log ENABLE TRIGGER access_log_append_only")
    else:
        op.execute(_UPDATE_TRIGGER_SQLITE)
    conn.execute(
        access_log.insert().values(
            at=datetime.now(UTC),
            actor_role="system",
            action="rewrite",
            target_type="access_log",
            target_id="0016",
            personal_data=False,
            detail=f"{len(changes)} search terms with personal identifiers masked and hashed "
            "(migration 0016, issue 15)",
        )
    )


def downgrade() -> None:
    """The index goes; the masked terms stay masked (the numbers are gone)."""
    op.drop_index("ix_audit_entries_target", table_name="audit_entries")
