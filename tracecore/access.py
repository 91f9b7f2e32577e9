"""Who is acting, and the checks every use case makes against it: a role, the party a
merchant's or logistics company's credentials act for, and a regulator's jurisdiction.

Plain values: every area of the app authorises with these, and the auth area (tokens, users,
sessions) only turns a credential into a :class:`Principal`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tracecore.errors import Forbidden, ValidationError
from tracecore.regions import validate_region_code


class Role(enum.StrEnum):
    ADMIN = "admin"
    REGULATOR = "regulator"
    MERCHANT = "merchant"  #: bound to one merchant
    LOGISTICS = "logistics"  #: bound to one logistics company


@dataclass(frozen=True)
class Principal:
    """Who is acting: a role and, for merchants and logistics companies, which party."""

    role: Role
    party_id: int | None = None
    token_id: int | None = None
    user_id: int | None = None
    #: Region-code prefixes a regulator acts in; empty means nationwide.
    jurisdiction: tuple[str, ...] = ()
    #: The outside traceability system a token is for (its name): it may only capture EPCIS
    #: events for its party and read its own capture jobs.
    outside_system: str | None = None

    def covers(self, region_code: str | None) -> bool:
        """Whether a place (a GB/T 2260 code) is inside the jurisdiction."""
        if not self.jurisdiction:
            return True
        return bool(region_code) and region_code.startswith(self.jurisdiction)

    def require_region(self, region_code: str | None, what: str = "this") -> None:
        """Regulators act only inside their jurisdiction."""
        if not self.covers(region_code):
            raise Forbidden(f"{what} is outside your jurisdiction")

    @property
    def is_authority(self) -> bool:
        """Admins and regulators: they act on any party inside their jurisdiction (which
        party a resource belongs to, and who else may act on it: ``app/authz.py``)."""
        return self.role in (Role.ADMIN, Role.REGULATOR)

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this action needs one of the roles: {allowed}")


#: The command line runs as the operator of the installation.
OPERATOR = Principal(Role.ADMIN)


def parse_jurisdiction(text: str) -> tuple[str, ...]:
    """``"3204,441202"`` -> ("3204", "441202"): prefixes of 2, 4 or 6 digits whose
    province part is a real GB/T 2260 province."""
    prefixes = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if len(part) not in (2, 4, 6) or not part.isdigit():
            raise ValidationError(
                f"a jurisdiction is region-code prefixes of 2, 4 or 6 digits, not {part[:12]!r}",
                field="jurisdiction",
            )
        validate_region_code(part.ljust(6, "0"))
        prefixes.append(part)
    return tuple(dict.fromkeys(prefixes))
