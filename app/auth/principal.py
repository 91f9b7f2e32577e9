"""Who is acting, and the checks every use case makes against it."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.models import Role
from trace.errors import Forbidden


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
