"""Bearer tokens and what each role may do.

Tokens are 256-bit random strings; only their SHA-256 is stored (a slow password hash adds
nothing for secrets this long, and lookup stays one indexed read).
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import ApiToken, Role
from app.auth.principal import Principal
from app.parties.models import LogisticsCompany, Merchant
from app.parties.operations import get_party
from trace.errors import NotFound, ValidationError

TOKEN_PREFIX = "trc_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, role: Role, party_id: int | None = None, label: str = ""
) -> tuple[str, ApiToken]:
    """A new token for ``role``; returns the token text (shown once) and its record."""
    if role in (Role.MERCHANT, Role.LOGISTICS):
        if party_id is None:
            raise ValidationError(f"a {role.value} token needs --party-id", field="party_id")
        model = Merchant if role is Role.MERCHANT else LogisticsCompany
        try:
            get_party(session, model, party_id)
        except NotFound as exc:
            raise NotFound(exc.message, field="party_id") from None
    elif party_id is not None:
        raise ValidationError(f"a {role.value} token is not bound to a party", field="party_id")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(token_hash=_digest(token), role=role, party_id=party_id, label=label)
    session.add(record)
    session.flush()
    return token, record


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of a live token, or None."""
    record = session.scalar(
        sa.select(ApiToken).where(
            ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)
        )
    )
    if record is None:
        return None
    return Principal(record.role, record.party_id, record.id)
