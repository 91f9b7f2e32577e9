"""Credit information exchange (信用信息共享): the decisions a municipal or provincial credit
platform collects about a legal person, per unified social credit code, as JSON and CSV
(docs/credit-exchange.md names every field, in Chinese and English).

What is exchanged is what is public after due process, and nothing else:

- ``confirmed_finding``: a finding a regulator confirmed, once its record counts publicly
  (the response period passed with no appeal holding it);
- ``sanction``: a regulator's sanction, on the same terms;
- ``list_entry`` / ``list_exit``: entering or leaving the red or black list (the dated list
  entries, which follow the public standing only);
- ``repair``: leaving the black list (信用修复: the records behind it faded or were
  outweighed).

An undecided finding (a risk signal), a decision still in its response period or held by
an appeal, a dismissed or withdrawn finding, and an upheld appeal's record never appear.
Couriers are natural persons without a USCC: their records are not exchanged.

:func:`exchange` lists a party's or a jurisdiction's items since a moment, a page at a time;
:func:`push_new_items` (called by the periodic sweep) pushes each item to the webhooks'
``exchange`` subscribers once it is public, the same dict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.accesslog.operations import log_access
from app.auth.models import ApiToken, User
from app.credit.models import Anomaly, AuditEntry, CreditRecord, ExchangePush, ListEntry
from app.credit.operations import Account, accounts
from app.outbox import feed
from app.parties.models import LogisticsCompany, Merchant
from app.timefmt import rfc3339_beijing
from tracecore import credit
from tracecore.access import Principal
from tracecore.anomalies import ANOMALY_NAMES, SEVERITY_NAMES
from tracecore.errors import Forbidden, NotFound
from tracecore.uscc import validate_uscc

#: The kinds of item, each with its Chinese name (信用中国 / 双公示 wording).
KINDS = {
    "confirmed_finding": "认定失信行为",
    "sanction": "行政惩戒",
    "list_entry": "列入名单",
    "list_exit": "移出名单",
    "repair": "信用修复（移出失信黑名单）",
}
LISTS = {"red": "守信红名单", "black": "失信黑名单"}
#: The parties that have a USCC: legal persons. (Couriers are natural persons.)
EXCHANGED_PARTIES = {"merchant": Merchant, "logistics_company": LogisticsCompany}
#: The region code of an authority without a jurisdiction (nationwide), as GB 32100 writes
#: a national registration authority's.
NATIONAL = "100000"

#: The fields of an item, in the order of the CSV's columns.
FIELDS = (
    *("id", "kind", "kind_name", "subject_name", "uscc", "party_type", "party_id"),
    *("list", "list_name", "basis_rule", "basis_finding", "decided_at", "date"),
    *("authority_name", "authority_region_code", "period_from", "period_to"),
    *("record_id", "list_entry_id", "anomaly_id", "content_hash"),
)


@dataclass(frozen=True)
class Authority:
    """Who decided: an authority's name and GB/T 2260 region code (None: the platform's
    own change as time passed, no authority's decision)."""

    name: str
    region_code: str | None


# -- one item -----------------------------------------------------------------------------


def content_hash(item: dict) -> str:
    """SHA-256 of the item's fields (all but this one), as canonical JSON (sorted keys, no
    spaces, UTF-8): a receiver tells a changed item from one sent again."""
    body = {k: v for k, v in item.items() if k != "content_hash"}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


# -- pushed to the webhooks as items become public ------------------------------------------


def push_new_items(
    session: Session, policy: credit.Policy, *, platform: str = "", now: datetime | None = None
) -> int:
    """Tell the webhooks' ``exchange`` subscribers of each item that became public, or
    changed, since the last sweep: a confirmed finding or a sanction once its response
    period has ended with no appeal holding it (or the appeal was rejected), a list entry or
    exit when it is made. Each content of an item is pushed once (``content_hash``); a
    list entry's item is pushed again when the party leaves (it gains its end). A decision
    that can never be public any more (a sanction an upheld appeal voided, a finding's
    record superseded) is settled, so later sweeps no longer look at it. The sweep calls
    this; returns how many items were pushed. Flushes."""
    now = now or datetime.now(UTC)
    # Decisions not yet pushed: sanctions, and the records of confirmed findings (an open
    # finding is no decision; a dismissed or withdrawn one never will be).
    records = session.execute(
        sa.select(CreditRecord.id, CreditRecord.party_type, CreditRecord.party_id)
        .outerjoin(Anomaly, Anomaly.id == CreditRecord.anomaly_id)
        .where(
            sa.or_(
                CreditRecord.kind == "sanction",
                sa.and_(CreditRecord.kind == "anomaly", Anomaly.status == "confirmed"),
            ),
            CreditRecord.party_type.in_(EXCHANGED_PARTIES),
            ~_pushed(_item_id("record-", CreditRecord.id)),
        )
    ).all()
    entries = list(
        session.scalars(
            sa.select(ListEntry)
            .where(
                ListEntry.party_type.in_(EXCHANGED_PARTIES),
                sa.or_(
                    ~_pushed(_item_id("list-", ListEntry.id, "-in")),
                    sa.and_(
                        ListEntry.left_at.is_not(None),
                        ~_pushed(_item_id("list-", ListEntry.id, "-out")),
                    ),
                ),
            )
            .order_by(ListEntry.id)
        )
    )
    parties = {(t, i) for _, t, i in records} | {(e.party_type, e.party_id) for e in entries}
    if not parties:
        return 0
    accs = accounts(session, parties, policy, now)
    known = (_Deciders(session), _Subjects(session))
    items = [
        *_record_items(session, accs.values(), policy, *known),
        *_list_items(session, entries, policy, platform, *known),
    ]
    wanted = {f"record-{r.id}" for r in records} | {f"list-{e.id}-in" for e in entries}
    wanted |= {f"list-{e.id}-out" for e in entries if e.left_at is not None}
    # Only a left entry's item may have been pushed before (without its end).
    again = [f"list-{e.id}-in" for e in entries if e.left_at is not None]
    last = {
        p.item_id: p
        for p in (
            session.scalars(sa.select(ExchangePush).where(ExchangePush.item_id.in_(again)))
            if again
            else ()
        )
    }
    pushed = 0
    for item in sorted((i for i in items if i["id"] in wanted), key=_order):
        before = last.get(item["id"])
        if before is not None and before.content_hash == item["content_hash"]:
            continue
        if before is None:
            session.add(ExchangePush(item_id=item["id"], content_hash=item["content_hash"], at=now))
        else:
            before.content_hash, before.at = item["content_hash"], now
        _push(session, item)
        pushed += 1
    void = {r.id for acc in accs.values() for r in acc.records if r.standing == "void"}
    for record_id, _, _ in records:
        if record_id in void:
            session.add(ExchangePush(item_id=f"record-{record_id}", content_hash=None, at=now))
    session.flush()
    return pushed


def _item_id(prefix: str, column, suffix: str = ""):
    """An item's id, as SQL, from its record's or list entry's id."""
    item = sa.literal(prefix, sa.String) + sa.cast(column, sa.String)
    return item + sa.literal(suffix, sa.String) if suffix else item


def _pushed(item_id) -> sa.Exists:
    return sa.exists().where(ExchangePush.item_id == item_id)


def _push(session: Session, item: dict) -> None:
    """One ``exchange`` feed row: the item as the exchange API gives it, for the authorities
    of the party's region and the party itself."""
    party = (item["party_type"], item["party_id"])
    found = session.get(EXCHANGED_PARTIES[party[0]], party[1])
    feed.record(
        session,
        "exchange",
        f"exchange.{item['kind']}",
        {k: v for k, v in item.items() if k != "_at"},
        party=party,
        region_code=found.region_code[:6],
        merchant_id=party[1] if party[0] == "merchant" else None,
    )


# -- listing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[dict]
    #: The cursor of the next page (``after``), or None on the last.
    next: str | None


def subject_of(session: Session, uscc: str) -> Merchant | LogisticsCompany:
    """The merchant or logistics company with this USCC (checked: a 422 naming ``uscc``
    when it is not one), or NotFound."""
    code = validate_uscc(uscc)
    for model in EXCHANGED_PARTIES.values():
        found = session.scalar(sa.select(model).where(model.uscc == code))
        if found is not None:
            return found
    raise NotFound(f"no merchant or logistics company with the USCC {code}")


def exchange(
    session: Session,
    viewer: Principal,
    policy: credit.Policy,
    *,
    uscc: str = "",
    since: datetime | None = None,
    after: str = "",
    limit: int = 100,
    platform: str = "",
    now: datetime | None = None,
) -> Page:
    """The exchange items of the party with ``uscc`` (authorities over it, and the party
    itself), or without one of every party in the viewer's jurisdiction (authorities only),
    dated at or after ``since``, oldest first, ``limit`` a page after the cursor ``after``.
    Reading it is logged (an export, no personal data: legal persons only)."""
    now = now or datetime.now(UTC)
    if uscc:
        found = subject_of(session, uscc)
        party_type = "merchant" if isinstance(found, Merchant) else "logistics_company"
        authz.require(session, viewer, found, "this party")
        parties = {(party_type, found.id)}
    else:
        if not viewer.is_authority:
            raise Forbidden("give your own uscc: only authorities read every party's records")
        parties = _parties_in(session, viewer)
    log_access(session, viewer, "export", "credit_exchange", found.uscc if uscc else "*")
    items = [
        i
        for i in _items(session, parties, policy, platform, now)
        if since is None or i["_at"] >= since
    ]
    items.sort(key=_order)
    if after:
        items = [i for i in items if _cursor(i) > after]
    page = items[:limit]
    more = len(items) > limit
    return Page(
        [{k: v for k, v in i.items() if k != "_at"} for i in page],
        _cursor(page[-1]) if more else None,
    )


def _order(item: dict) -> tuple:
    return (item["_at"], item["id"])


def _cursor(item: dict) -> str:
    """A page's cursor: the item's moment (UTC, fixed width) and id, which sort as items do."""
    return f"{item['_at'].astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}.{item['id']}"


def _parties_in(session: Session, viewer: Principal) -> set[tuple[str, int]]:
    """Every legal person with an exchanged record or list entry, in the jurisdiction."""
    found: set[tuple[str, int]] = set()
    for party_type, model in EXCHANGED_PARTIES.items():
        with_records = sa.union(
            sa.select(CreditRecord.party_id).where(
                CreditRecord.party_type == party_type,
                CreditRecord.kind.in_(("anomaly", "sanction")),
            ),
            sa.select(ListEntry.party_id).where(ListEntry.party_type == party_type),
        ).subquery()
        query = sa.select(model.id, model.region_code).where(model.id.in_(sa.select(with_records)))
        found |= {
            (party_type, pid) for pid, region in session.execute(query) if viewer.covers(region)
        }
    return found


def _items(
    session: Session, parties: set[tuple[str, int]], policy: credit.Policy, platform: str, now
) -> list[dict]:
    if not parties:
        return []
    accs = accounts(session, parties, policy, now).values()
    entries = list(
        session.scalars(
            sa.select(ListEntry)
            .where(ListEntry.party_id.in_({p[1] for p in parties}))
            .order_by(ListEntry.id)
        )
    )
    entries = [e for e in entries if (e.party_type, e.party_id) in parties]
    known = (_Deciders(session), _Subjects(session))
    return [
        *_record_items(session, accs, policy, *known),
        *_list_items(session, entries, policy, platform, *known),
    ]


# -- building items -----------------------------------------------------------------------


def _record_items(
    session: Session,
    accs: Iterable[Account],
    policy: credit.Policy,
    deciders: _Deciders | None = None,
    subjects: _Subjects | None = None,
) -> list[dict]:
    """The public confirmed findings and sanctions of these accounts."""
    public = [
        (acc, r)
        for acc in accs
        for r in acc.records
        if r.standing == "public" and r.kind in ("anomaly", "sanction")
    ]
    if not public:
        return []
    anomalies = _anomalies(session, {r.anomaly_id for _, r in public if r.anomaly_id})
    records = {
        r.id: r
        for r in session.scalars(
            sa.select(CreditRecord).where(CreditRecord.id.in_({r.id for _, r in public}))
        )
    }
    deciders = deciders or _Deciders(session)
    subjects = subjects or _Subjects(session)
    out = []
    for acc, view in public:
        record = records[view.id]
        if view.kind == "anomaly":
            anomaly = anomalies[view.anomaly_id]
            decided_at = anomaly.decided_at
            authority, why = deciders.of_anomaly(anomaly.id)
            zh_type = ANOMALY_NAMES.get(anomaly.type, (anomaly.type,))[0]
            zh_severity = SEVERITY_NAMES.get(anomaly.severity, (anomaly.severity,))[0]
            rule = f"{zh_type}（{zh_severity}）"
            finding = why or view.reason
            kind = "confirmed_finding"
        else:
            decided_at = record.created_at
            authority, _ = deciders.of_sanction(record)
            rule, finding, kind = "监管部门作出惩戒决定", view.reason, "sanction"
        out.append(
            _item(
                f"record-{view.id}",
                kind,
                subjects.of(acc.party_type, acc.party_id),
                None,
                rule,
                finding,
                decided_at,
                view.public_from,
                authority,
                (view.public_from, view.effective_at + timedelta(days=policy.fade_days)),
                record_id=view.id,
                anomaly_id=view.anomaly_id,
            )
        )
    return out


def _list_items(
    session: Session,
    entries: list[ListEntry],
    policy: credit.Policy,
    platform: str,
    deciders: _Deciders | None = None,
    subjects: _Subjects | None = None,
) -> list[dict]:
    """Entering and (when it did) leaving a list, for each of these entries."""
    causes = {
        r.id: r
        for r in session.scalars(
            sa.select(CreditRecord).where(
                CreditRecord.id.in_({e.record_id for e in entries if e.record_id})
            )
        )
    }
    deciders = deciders or _Deciders(session)
    subjects = subjects or _Subjects(session)
    own = Authority(platform, None)
    out = []
    for e in entries:
        if e.party_type not in EXCHANGED_PARTIES:
            continue
        if e.anomaly_id is not None:
            entered_by = deciders.of_anomaly(e.anomaly_id)[0]
        elif e.record_id in causes and causes[e.record_id].kind == "sanction":
            entered_by = deciders.of_sanction(causes[e.record_id])[0]
        else:  # a commendation, a commitment, or time passing: the platform's own change
            entered_by = own
        subject = subjects.of(e.party_type, e.party_id)
        period = (e.entered_at, e.left_at)
        common = dict(list_entry_id=e.id, record_id=e.record_id, anomaly_id=e.anomaly_id)
        out.append(
            _item(
                f"list-{e.id}-in",
                "list_entry",
                subject,
                e.list,
                f"列入{LISTS[e.list]}",
                e.entered_because,
                e.entered_at,
                e.entered_at,
                entered_by,
                period,
                **common,
            )
        )
        if e.left_at is not None:
            out.append(
                _item(
                    f"list-{e.id}-out",
                    "repair" if e.list == credit.BLACK else "list_exit",
                    subject,
                    e.list,
                    f"移出{LISTS[e.list]}",
                    e.left_because or "",
                    e.left_at,
                    e.left_at,
                    own,
                    period,
                    **common,
                )
            )
    return out


def _item(
    item_id: str,
    kind: str,
    subject: tuple[str, str, str, int],
    which: str | None,
    rule: str,
    finding: str,
    decided_at: datetime,
    at: datetime,
    authority: Authority,
    period: tuple[datetime | None, datetime | None],
    *,
    record_id: int | None = None,
    list_entry_id: int | None = None,
    anomaly_id: int | None = None,
) -> dict:
    name, uscc, party_type, party_id = subject
    item = {
        "id": item_id,
        "kind": kind,
        "kind_name": KINDS[kind],
        "subject_name": name,
        "uscc": uscc,
        "party_type": party_type,
        "party_id": party_id,
        "list": which,
        "list_name": LISTS.get(which or ""),
        "basis_rule": rule,
        "basis_finding": finding,
        "decided_at": rfc3339_beijing(decided_at),
        "date": rfc3339_beijing(at),
        "authority_name": authority.name,
        "authority_region_code": authority.region_code,
        "period_from": rfc3339_beijing(period[0]) or None,
        "period_to": rfc3339_beijing(period[1]) or None,
        "record_id": record_id,
        "list_entry_id": list_entry_id,
        "anomaly_id": anomaly_id,
    }
    item["content_hash"] = content_hash(item)
    item["_at"] = at
    return item


def _anomalies(session: Session, ids: set[int]) -> dict[int, Anomaly]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(sa.select(Anomaly).where(Anomaly.id.in_(ids)))}


class _Subjects:
    """(name, USCC, party type, id) of legal persons, each read once."""

    def __init__(self, session: Session) -> None:
        self.session, self.known = session, {}

    def of(self, party_type: str, party_id: int) -> tuple[str, str, str, int]:
        key = (party_type, party_id)
        if key not in self.known:
            found = self.session.get(EXCHANGED_PARTIES[party_type], party_id)
            self.known[key] = (found.name, found.uscc, party_type, party_id)
        return self.known[key]


class _Deciders:
    """Who decided, from the audit trail: the confirming regulator of a finding, the
    sanctioning one of a sanction (its audit entry is the party's, written with it)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sanctions: dict[tuple[str, str], list[AuditEntry]] = {}
        self.authorities: dict[tuple, Authority] = {}

    def of_anomaly(self, anomaly_id: int) -> tuple[Authority, str]:
        """The authority that confirmed the finding, and the reason it gave."""
        entry = self.session.scalar(
            sa.select(AuditEntry)
            .where(
                AuditEntry.target_type == "anomaly",
                AuditEntry.target_id == str(anomaly_id),
                AuditEntry.action == "anomaly.confirm",
            )
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        return (self._authority(entry), entry.reason) if entry else (Authority("", None), "")

    def of_sanction(self, record: CreditRecord) -> tuple[Authority, str]:
        """The authority whose sanction this is: the party's first ``credit.sanction`` audit
        entry written at or after the record (the same unit of work writes both). A party's
        entries are read once."""
        party = (record.party_type, str(record.party_id))
        if party not in self.sanctions:
            self.sanctions[party] = list(
                self.session.scalars(
                    sa.select(AuditEntry)
                    .where(
                        AuditEntry.target_type == party[0],
                        AuditEntry.target_id == party[1],
                        AuditEntry.action == "credit.sanction",
                    )
                    .order_by(AuditEntry.at, AuditEntry.id)
                )
            )
        entry = next((e for e in self.sanctions[party] if e.at >= record.created_at), None)
        return (self._authority(entry), entry.reason) if entry else (Authority("", None), "")

    def _authority(self, entry: AuditEntry) -> Authority:
        """A user's display name (or username), or a token's label; the region of the first
        prefix of its jurisdiction, padded to six digits (none: nationwide, 100000)."""
        key = (entry.actor_role, entry.actor_user_id, entry.actor_token_id)
        if key not in self.authorities:
            self.authorities[key] = self._read_authority(entry)
        return self.authorities[key]

    def _read_authority(self, entry: AuditEntry) -> Authority:
        name, jurisdiction = "", ""
        if entry.actor_user_id is not None:
            user = self.session.get(User, entry.actor_user_id)
            if user is not None:
                name, jurisdiction = user.display_name or user.username, user.jurisdiction
        elif entry.actor_token_id is not None:
            token = self.session.get(ApiToken, entry.actor_token_id)
            if token is not None:
                name = token.label or f"API token #{token.id}"
                jurisdiction = token.jurisdiction
        first = jurisdiction.split(",")[0].strip()
        return Authority(name or entry.actor_role, first.ljust(6, "0") if first else NATIONAL)
