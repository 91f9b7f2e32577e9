"""Bearer tokens for API clients, password sign-in for people, and the access log.

Tokens are 256-bit random strings; only their SHA-256 is stored (a slow password hash adds
nothing for secrets this long, and lookup stays one indexed read).
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import ApiToken, User
from app.parties.models import LogisticsCompany, Merchant
from app.parties.operations import get_party
from tracecore.access import Principal, Role, parse_jurisdiction
from tracecore.errors import Conflict, NotFound, ValidationError

TOKEN_PREFIX = "trc_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_binding(session: Session, role: Role, party_id: int | None) -> None:
    """Merchant and logistics roles act for one existing party; authorities for none."""
    if role in (Role.MERCHANT, Role.LOGISTICS):
        if party_id is None:
            raise ValidationError(f"a {role.value} token needs --party-id", field="party_id")
        model = Merchant if role is Role.MERCHANT else LogisticsCompany
        try:
            get_party(session, model, party_id)
        except NotFound as exc:
            raise NotFound(exc.message, field="party_id") from None
    elif party_id is not None:
        raise ValidationError(f"a {role.value} is not bound to a party", field="party_id")


def create_token(
    session: Session,
    role: Role,
    party_id: int | None = None,
    label: str = "",
    jurisdiction: str = "",
    outside_system: str | None = None,
) -> tuple[str, ApiToken]:
    """A new token for ``role``; returns the token text (shown once) and its record. With
    ``outside_system`` (its name), the token of an outside traceability system: bound to a
    merchant or a logistics company, it may only capture EPCIS events for that party."""
    _check_binding(session, role, party_id)
    if outside_system is not None:
        outside_system = outside_system.strip()
        if not 1 <= len(outside_system) <= 100:
            raise ValidationError("an outside system's name is 1-100 characters", field="system")
        if role not in (Role.MERCHANT, Role.LOGISTICS):
            raise ValidationError(
                "an outside system acts for a merchant or a logistics company", field="role"
            )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        token_hash=_digest(token),
        role=role,
        party_id=party_id,
        label=label,
        jurisdiction=",".join(parse_jurisdiction(jurisdiction)),
        outside_system=outside_system,
    )
    session.add(record)
    session.flush()
    return token, record


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of a live token, or None (read as a row: every authenticated request
    asks, and loading an ORM object cost more than the lookup)."""
    record = session.execute(_LIVE_TOKEN, {"digest": _digest(token)}).first()
    if record is None:
        return None
    return Principal(
        record.role,
        record.party_id,
        token_id=record.id,
        jurisdiction=parse_jurisdiction(record.jurisdiction),
        outside_system=record.outside_system,
    )


_LIVE_TOKEN = sa.select(
    ApiToken.id, ApiToken.role, ApiToken.party_id, ApiToken.jurisdiction, ApiToken.outside_system
).where(ApiToken.token_hash == sa.bindparam("digest"), ApiToken.revoked_at.is_(None))


# -- people: password sign-in for the workspace ---------------------------------------------

#: werkzeug's scrypt (n=2**15, r=8, p=1), salted; the hash names its method and parameters.
PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 10
#: A hash to check against when the user does not exist, so both cases cost the same time.
_DUMMY_HASH = generate_password_hash("not a real password", method=PASSWORD_METHOD)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    *,
    party_id: int | None = None,
    jurisdiction: str = "",
    display_name: str = "",
) -> User:
    """A person who signs in to the workspace. The password is stored only as a hash."""
    username = username.strip().lower()
    if not username or len(username) > 64 or not username.isascii():
        raise ValidationError("a username is 1-64 ASCII characters", field="username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"a password has at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username} is taken", field="username")
    _check_binding(session, role, party_id)
    user = User(
        username=username,
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
        role=role,
        party_id=party_id,
        jurisdiction=",".join(parse_jurisdiction(jurisdiction)),
        display_name=display_name[:100],
    )
    session.add(user)
    session.flush()
    return user


def check_password(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same cost either way)."""
    user = session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    if user is None or user.disabled_at is not None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


def user_principal(session: Session, user_id: int, generation: int | None) -> Principal | None:
    """The principal of an active user whose session carries the user's current session
    generation (sessions carry only the user's id and that number)."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None or generation != user.session_generation:
        return None
    return Principal(
        user.role,
        user.party_id,
        user_id=user.id,
        jurisdiction=parse_jurisdiction(user.jurisdiction),
    )


def end_sessions(session: Session, user_id: int) -> None:
    """End every workspace session of this user, on the server: a session cookie signed
    before now, copied or not, no longer signs anyone in."""
    session.execute(
        sa.update(User)
        .where(User.id == user_id)
        .values(session_generation=User.session_generation + 1)
    )
