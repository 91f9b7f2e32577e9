"""Bearer tokens and what each role may do.

Tokens are 256-bit random strings; only their SHA-256 is stored (a slow password hash adds
nothing for secrets this long, and lookup stays one indexed read).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import ApiToken, Role
from app.parties.models import LogisticsCompany, Merchant
from trace.errors import Forbidden, NotFound, ValidationError

TOKEN_PREFIX = "trc_"


@dataclass(frozen=True)
class Principal:
    """Who is acting: a role and, for merchants and logistics companies, which party."""

    role: Role
    party_id: int | None = None
    token_id: int | None = None

    @property
    def is_authority(self) -> bool:
        """Admins and regulators act on behalf of any party."""
        return self.role in (Role.ADMIN, Role.REGULATOR)

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this action needs one of the roles: {allowed}")

    def require_merchant(self, merchant_id: int) -> None:
        """Authorities act for any merchant; a merchant only for itself."""
        if self.is_authority:
            return
        if self.role is Role.MERCHANT and self.party_id == merchant_id:
            return
        raise Forbidden("you may act only for your own merchant")

    def require_company(self, company_id: int) -> None:
        if self.is_authority:
            return
        if self.role is Role.LOGISTICS and self.party_id == company_id:
            return
        raise Forbidden("you may act only for your own logistics company")


#: The command line runs as the operator of the installation.
OPERATOR = Principal(Role.ADMIN)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, role: Role, party_id: int | None = None,
                 label: str = "") -> tuple[str, ApiToken]:
    """A new token for ``role``; returns the token text (shown once) and its record."""
    if role in (Role.MERCHANT, Role.LOGISTICS):
        if party_id is None:
            raise ValidationError(f"a {role.value} token needs --party-id", field="party_id")
        model = Merchant if role is Role.MERCHANT else LogisticsCompany
        if session.get(model, party_id) is None:
            raise NotFound(f"no {model.__tablename__[:-1].replace('_', ' ')} with id {party_id}",
                           field="party_id")
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
        sa.select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                  ApiToken.revoked_at.is_(None)))
    if record is None:
        return None
    return Principal(record.role, record.party_id, record.id)
