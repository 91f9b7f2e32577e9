"""The consumer's verdict on a scanned code, from the data and the anomaly rules' findings.

:func:`assess` turns facts about one unit into an overall verdict and the warnings behind it,
most serious first. The words shown to people live with the page; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

__all__ = ["DANGER", "GENUINE", "LOOKS", "WARNING", "Facts", "Verdict", "Warning", "assess"]

GENUINE, WARNING, DANGER = "genuine", "warning", "danger"

#: Warning kinds, most serious first, and the verdict each one brings.
KINDS: dict[str, str] = {
    "unknown_code": DANGER,  #: never issued: likely a counterfeit
    "forged_link": DANGER,  #: a real serial under another product's or lot's link
    "recalled": DANGER,  #: the batch is recalled: do not use
    "copied_code": DANGER,  #: checked by many people in many places: likely a copied label
    "sold_twice": WARNING,  #: the one-sale rule was broken
    "expired": WARNING,  #: past its expiry date
    "merchant_black_listed": WARNING,  #: the merchant is on the black list
}
#: The looks a verdict can have: genuine, or its most serious warning's kind. Each has its
#: own headline, icon and advice on the consumer's page.
LOOKS = (GENUINE, *KINDS)


@dataclass(frozen=True)
class Facts:
    """What is known about a unit when a consumer checks it."""

    issued: bool
    today: date
    #: The serial was issued, but for another product or lot than the link scanned names.
    forged_link: bool = False
    expires_on: date | None = None
    batch_recalled: bool = False
    recalled_at: datetime | None = None
    recall_reason: str | None = None
    merchant_list: str | None = None  #: "red", "black" or None
    #: Open or confirmed anomalies on the code: (type, evidence).
    anomalies: tuple[tuple[str, dict], ...] = ()


@dataclass(frozen=True)
class Warning:
    kind: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    level: str  #: genuine | warning | danger
    warnings: tuple[Warning, ...]

    @property
    def genuine(self) -> bool:
        return self.level == GENUINE

    @property
    def look(self) -> str:
        """How the verdict is shown: ``genuine``, or the kind of its most serious warning."""
        return self.warnings[0].kind if self.warnings else GENUINE


def assess(facts: Facts) -> Verdict:
    """The verdict: ``danger`` if any warning is of a danger kind, ``warning`` if any other,
    ``genuine`` only for an issued code with nothing against it."""
    if facts.forged_link:
        return Verdict(DANGER, (Warning("forged_link"),))
    if not facts.issued:
        return Verdict(DANGER, (Warning("unknown_code"),))
    found: list[Warning] = []
    if facts.batch_recalled:
        found.append(
            Warning("recalled", {"recalled_at": facts.recalled_at, "reason": facts.recall_reason})
        )
    anomalies = dict(facts.anomalies)
    if "copied_code" in anomalies:
        found.append(Warning("copied_code", anomalies["copied_code"]))
    if "duplicate_sale" in anomalies:
        found.append(Warning("sold_twice", anomalies["duplicate_sale"]))
    if facts.expires_on is not None and facts.today > facts.expires_on:
        found.append(Warning("expired", {"expires_on": facts.expires_on}))
    if facts.merchant_list == "black":
        found.append(Warning("merchant_black_listed"))
    found.sort(key=lambda w: list(KINDS).index(w.kind))
    if not found:
        return Verdict(GENUINE, ())
    level = DANGER if any(KINDS[w.kind] == DANGER for w in found) else WARNING
    return Verdict(level, tuple(found))
