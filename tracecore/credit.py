"""Credit scoring of parties (信用评价): records in, score, grade and list status out.

Due process: only decided, final records count publicly. A record carries ``public_from``,
the moment it starts to count in public answers (the grade and score, the red and black
lists, and the consequences that follow from them), or None while it does not: an automatic
finding not yet decided is a risk signal (:func:`risk`), never part of the public standing; a
confirmed finding or a sanction counts once the party's response period has passed
(:func:`public_from`).

A party's credit account is an append-only list of records (anomalies, complaints, sanctions,
commendations, credit commitments, passed inspections, delivery ratings), each with its
points and time. The score starts at 800 and adds each record's points, scaled down linearly
as the record ages until it has no effect after ``fade_days`` (credit repair, 信用修复), kept
within 0–1000. Point values and thresholds are :class:`Policy`, the configuration defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

START_SCORE = 800
RED, BLACK = "red", "black"


@dataclass(frozen=True)
class Policy:
    #: Points of a provisional or confirmed anomaly, by severity (dismissed: none).
    anomaly_points: dict = field(
        default_factory=lambda: {"minor": -10, "major": -40, "serious": -120}
    )
    sanction_points: int = -150
    commendation_points: int = 50
    commitment_points: int = 20
    inspection_points: int = 10
    #: A delivery rating r (1–5) counts (r - 3) × this, and all ratings of one party together
    #: move the score by at most ``rating_cap`` either way: a handful cannot sink anyone.
    rating_step: int = 4
    rating_cap: int = 60
    fade_days: int = 365
    grade_a: int = 900
    grade_b: int = 750
    grade_c: int = 600
    #: Black list below this score, whatever the records say.
    black_below: int = 450
    #: A confirmed serious anomaly within this many days keeps a party off the red list.
    red_clean_days: int = 365


@dataclass(frozen=True)
class Record:
    kind: str  #: anomaly | complaint | sanction | commendation | commitment | inspection | rating
    points: int
    at: datetime
    #: For anomalies: severity and whether a regulator confirmed it.
    severity: str | None = None
    confirmed: bool = False
    #: When the record starts to count publicly; None: not (yet) public.
    public_from: datetime | None = None


@dataclass(frozen=True)
class Standing:
    score: int
    grade: str
    list: str | None  #: "red", "black" or None


def weight(at: datetime, now: datetime, fade_days: int) -> float:
    """How much a record still counts: 1 when new, falling linearly to 0 at fade_days."""
    age = (now - at) / timedelta(days=fade_days)
    return max(0.0, 1.0 - max(0.0, age))


def score(records: Iterable[Record], now: datetime, policy: Policy = Policy()) -> int:
    total = float(START_SCORE)
    ratings = 0.0
    for r in records:
        w = weight(r.at, now, policy.fade_days)
        if r.kind == "rating":
            ratings += r.points * w
        else:
            total += r.points * w
    total += max(-policy.rating_cap, min(policy.rating_cap, ratings))
    return round(max(0.0, min(1000.0, total)))


def grade(value: int, policy: Policy = Policy()) -> str:
    if value >= policy.grade_a:
        return "A"
    if value >= policy.grade_b:
        return "B"
    if value >= policy.grade_c:
        return "C"
    return "D"


def standing(records: list[Record], now: datetime, policy: Policy = Policy()) -> Standing:
    """Score, grade and list: black for a confirmed serious anomaly still in effect or a score
    below the threshold; red for grade A with a signed commitment and no serious anomaly in
    the clean period; otherwise neither."""
    value = score(records, now, policy)
    letter = grade(value, policy)
    recent = now - timedelta(days=policy.red_clean_days)
    serious = [r for r in records if r.kind == "anomaly" and r.severity == "serious"]
    confirmed_serious = any(r.confirmed and r.at >= recent for r in serious)
    if confirmed_serious or value < policy.black_below:
        return Standing(value, letter, BLACK)
    committed = any(r.kind == "commitment" for r in records)
    if letter == "A" and committed and not any(r.at >= recent for r in serious):
        return Standing(value, letter, RED)
    return Standing(value, letter, None)


def public(records: Iterable[Record], now: datetime) -> list[Record]:
    """The records that count publicly at ``now``."""
    return [r for r in records if r.public_from is not None and r.public_from <= now]


def public_standing(
    records: Iterable[Record], now: datetime, policy: Policy = Policy()
) -> Standing:
    """The standing every public answer shows: from the records final at ``now`` only."""
    return standing(public(records, now), now, policy)


@dataclass(frozen=True)
class Appeal:
    """A party's response to a decision, as finality needs it."""

    filed_at: datetime
    status: str  #: pending | upheld | rejected
    decided_at: datetime | None = None


def public_from(final_at: datetime | None, appeals: Iterable[Appeal] = ()) -> datetime | None:
    """When a decided record starts to count publicly: at ``final_at`` (the end of the
    party's response period), unless the party appealed before then. An appeal filed in
    the period holds the record while it is pending (None: not public); once rejected, the
    record counts from the later of the period's end and the rejection; an upheld appeal
    means the record never counts. An appeal filed after ``final_at`` holds nothing: the
    record stays public until the appeal is upheld."""
    if final_at is None:
        return None
    appeals = list(appeals)
    if any(a.status == "upheld" for a in appeals):
        return None
    moment = final_at
    for a in appeals:
        if a.filed_at < final_at:
            if a.status == "pending" or a.decided_at is None:
                return None
            moment = max(moment, a.decided_at)
    return moment


@dataclass(frozen=True)
class Risk:
    """The risk indicator (风险预警) of a party's undecided findings: how many, by severity,
    and the points they would cost if every one were confirmed. Shown to the party and to
    regulators, never in a public answer."""

    open: int
    points: int
    by_severity: dict


def risk(severities: Iterable[str], policy: Policy = Policy()) -> Risk:
    """The risk indicator of open findings of these severities."""
    counts = {"minor": 0, "major": 0, "serious": 0}
    for s in severities:
        counts[s] = counts.get(s, 0) + 1
    points = sum(policy.anomaly_points.get(s, 0) * n for s, n in counts.items())
    return Risk(sum(counts.values()), points, counts)


def rating_points(stars: int, policy: Policy = Policy()) -> int:
    """A delivery rating's points before the cap: 5 stars +2 steps, 1 star -2 steps."""
    if not 1 <= stars <= 5:
        raise ValueError("a rating is 1 to 5")
    return (stars - 3) * policy.rating_step
