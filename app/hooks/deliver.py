"""The deliverer: ``flask --app wsgi hooks deliver``, a process of its own (never a thread
of the web app). It POSTs each subscription's feed rows in order, signed, and advances the
subscription's cursor only on a 2xx.

One pass (:meth:`Deliverer.run_once`):

1. **claim** the active subscriptions that are due (not waiting out a backoff) and not
   leased by another deliverer: a lease (``leased_by``, ``leased_until``) taken in a short
   transaction, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that several deliverers
   never serve one subscription at once and no transaction stays open across an HTTP call;
2. **serve** each: read its topics' feed rows after its cursor, up to the horizon (on
   PostgreSQL, below the oldest running transaction: :func:`app.hooks.feed.horizon`), skip
   those it may not have or that lie outside its scope, and POST the others one by one. A
   2xx moves the cursor past the row; anything else (an error, a timeout, a 3xx: redirects
   are never followed) logs the failure, schedules the retry (exponential backoff with
   jitter) and stops there: the next attempt sends the same row, with the same
   ``webhook-id``. After ``WEBHOOK_DISABLE_AFTER_FAILURES`` failures in a row, or failing
   for ``WEBHOOK_DISABLE_AFTER_HOURS``, the subscription is disabled with the reason.

Every attempt is committed with its log entry and the cursor, and renews the lease. A
deliverer that dies leaves its lease to expire; another then sends what was not confirmed
(at least once: receivers de-duplicate by ``webhook-id``).
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import authz
from app.auth.models import ApiToken
from app.db import is_postgresql
from app.epcis.query import device_events
from app.hooks.models import WebhookDelivery, WebhookSubscription
from app.hooks.operations import signing_key, subscriber
from app.outbox import feed
from app.outbox.models import WebhookFeed
from tracecore import webhooks
from tracecore.access import Principal
from tracecore.epcis import Uris

log = logging.getLogger(__name__)

#: Feed rows read per subscription and pass.
READ_BATCH = 200
#: What is kept of a receiver's answer body (it is read, then dropped).
MAX_ANSWER = 64 * 1024
USER_AGENT = "trace-webhooks/1"


#: Seconds between two prunings of the feed by a running deliverer.
PRUNE_EVERY_S = 60


@dataclass(frozen=True)
class Settings:
    """What the deliverer needs of the configuration (config.py's WEBHOOK_* settings)."""

    service_key: str
    production: bool
    uris: Uris
    retry: webhooks.Retry
    timeout_s: float
    lease: timedelta
    #: Feed rows older than this are deleted even if a (disabled) subscription has not had them.
    feed_retention: timedelta = timedelta(days=14)

    @classmethod
    def of(cls, config) -> Settings:
        return cls(
            service_key=config.SECRET_KEY,
            production=config.TRACE_ENV == "production",
            uris=Uris(config.RESOLVER_HOST, config.RESOLVER_SCHEME),
            retry=webhooks.Retry(
                base=timedelta(milliseconds=config.WEBHOOK_RETRY_BASE_MS),
                cap=timedelta(seconds=config.WEBHOOK_RETRY_CAP_S),
                max_failures=config.WEBHOOK_DISABLE_AFTER_FAILURES,
                max_failing=timedelta(hours=config.WEBHOOK_DISABLE_AFTER_HOURS),
            ),
            timeout_s=config.WEBHOOK_TIMEOUT_S,
            lease=timedelta(seconds=config.WEBHOOK_LEASE_S),
            feed_retention=timedelta(days=config.WEBHOOK_FEED_RETENTION_DAYS),
        )


@dataclass(frozen=True)
class Answer:
    """How one POST went."""

    status: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, headers: dict[str, str], body: bytes, timeout_s: float, production: bool):
    """POST ``body`` to ``url`` (never following a redirect). In production every address
    the host resolves to must be public (:func:`tracecore.webhooks.refused_address`)."""
    started = time.perf_counter()

    def done(status: int | None, error: str | None) -> Answer:
        return Answer(status, round((time.perf_counter() - started) * 1000), error)

    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        if production:
            for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
                refused = webhooks.refused_address(info[4][0], production)
                if refused:
                    return done(None, f"refused: {refused}")
        kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
        conn = kind(parts.hostname, port, timeout=timeout_s)
        try:
            path = parts.path or "/"
            conn.request("POST", f"{path}?{parts.query}" if parts.query else path, body, headers)
            answer = conn.getresponse()
            answer.read(MAX_ANSWER)
            return done(answer.status, None if 200 <= answer.status < 300 else answer.reason)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:300])


class Deliverer:
    """Claims due subscriptions and delivers their feed (see the module's text)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        send: Callable[..., Answer] = post,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.send = send
        self.now = now
        #: This process's name in the leases it takes.
        self.name = secrets.token_hex(8)

    def run_once(self, limit: int = 100) -> int:
        """Serve every subscription due now (at most ``limit``); returns how many messages
        were attempted."""
        return sum(self.serve(sub_id) for sub_id in self.claim(limit))

    def run(self, poll_s: float, stopping: Callable[[], bool]) -> None:
        """Deliver until ``stopping()``; sleep ``poll_s`` when there was nothing to send;
        prune the feed once a minute."""
        pruned_at = 0.0
        while not stopping():
            try:
                attempted = self.run_once()
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    self.prune()
                    pruned_at = time.monotonic()
            except sa.exc.OperationalError:
                log.exception("database unavailable; trying again")
                attempted = 0
                time.sleep(1)
            if not attempted:
                time.sleep(poll_s)

    def prune(self) -> int:
        """Delete the feed rows that every subscription has passed (all those a new
        subscription would not be sent, when there is none), and those older than the
        retention whoever has not had them, but for the newest; returns how many. The feed
        gets a row per ingest batch: without this it would grow for ever."""
        f, sub = WebhookFeed, WebhookSubscription
        with self.sessions() as session:
            cursors = session.execute(sa.select(sub.cursor_xid, sub.cursor_id)).all()
            xid, row_id = min(tuple(c) for c in cursors) if cursors else feed.end(session)
            passed = sa.or_(f.xid < xid, sa.and_(f.xid == xid, f.id <= row_id))
            old = f.created_at < self.now() - self.settings.feed_retention
            # The newest row stays: SQLite gives a deleted highest id to the next row, which
            # every cursor already past it would then never be sent.
            newest = sa.select(sa.func.max(f.id)).scalar_subquery()
            deleted = session.execute(
                sa.delete(f).where(sa.or_(passed, old), f.id < newest)
            ).rowcount
            session.commit()
        return deleted

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, limit: int) -> list[int]:
        """Lease the due subscriptions no other deliverer holds."""
        now = self.now()
        sub = WebhookSubscription
        with self.sessions() as session:
            query = (
                sa.select(sub.id)
                .where(
                    sub.state == "active",
                    sa.or_(sub.next_attempt_at.is_(None), sub.next_attempt_at <= now),
                    sa.or_(
                        sub.leased_until.is_(None),
                        sub.leased_until < now,
                        sub.leased_by == self.name,
                    ),
                )
                .order_by(sub.id)
                .limit(limit)
            )
            if is_postgresql(session):
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    sa.update(sub)
                    .where(sub.id.in_(ids))
                    .values(leased_by=self.name, leased_until=now + self.settings.lease)
                )
            session.commit()
        return ids

    # -- serving one subscription ----------------------------------------------------------

    def serve(self, subscription_id: int) -> int:
        """Deliver the subscription's feed rows up to the horizon, stopping at a failure.
        Returns the number of POSTs made."""
        attempted = 0
        with self.sessions() as session:
            sub = session.get(WebhookSubscription, subscription_id)
            if sub is None or sub.leased_by != self.name or sub.state != "active":
                return 0
            if self._token_revoked(session, sub):
                self._disable(sub, "the subscriber's token was revoked", self.now())
                session.commit()
                return 0
            viewer = subscriber(sub)
            key = signing_key(self.settings.service_key, sub)
            rows = self._rows(session, sub)
            for row in rows:
                data = self._data(session, sub, viewer, row)
                if data is None:  # not the subscriber's, or outside its scope: passed over
                    sub.cursor_xid, sub.cursor_id = row.xid, row.id
                    continue
                attempted += 1
                if not self._deliver(session, sub, key, row, data):
                    break
            sub.leased_by = sub.leased_until = None
            session.commit()
        return attempted

    def _token_revoked(self, session: Session, sub: WebhookSubscription) -> bool:
        if sub.token_id is None:
            return False
        revoked = session.scalar(sa.select(ApiToken.revoked_at).where(ApiToken.id == sub.token_id))
        return revoked is not None

    def _rows(self, session: Session, sub: WebhookSubscription) -> list[WebhookFeed]:
        f = WebhookFeed
        query = sa.select(f).where(
            f.topic.in_(sub.topics),
            sa.or_(f.xid > sub.cursor_xid, sa.and_(f.xid == sub.cursor_xid, f.id > sub.cursor_id)),
        )
        top = feed.horizon(session)
        if top is not None:
            query = query.where(f.xid < top)
        return list(session.scalars(query.order_by(f.xid, f.id).limit(READ_BATCH)))

    def _data(
        self, session: Session, sub: WebhookSubscription, viewer: Principal, row: WebhookFeed
    ) -> dict | None:
        """What the subscription is sent of this row, or None when nothing."""
        if row.topic == "events":
            found = device_events(
                session,
                viewer,
                self.settings.uris,
                row.data["event_ids"],
                batch_id=sub.batch_id,
                merchant_id=sub.merchant_id,
            )
            if not found:
                return None
            return feed.events_data(found)
        if sub.batch_id is not None and row.batch_id != sub.batch_id:
            return None
        if sub.merchant_id is not None and row.merchant_id != sub.merchant_id:
            return None
        if row.topic not in webhooks.PUBLIC_TOPICS:
            if viewer.is_authority:
                if not viewer.covers(row.region_code):
                    return None
            elif not authz.acts_for(session, viewer, row.party_type, row.party_id):
                return None
        return row.data

    def _deliver(
        self,
        session: Session,
        sub: WebhookSubscription,
        key: bytes,
        row: WebhookFeed,
        data: dict,
    ) -> bool:
        """POST one message, log it, and move the cursor or schedule the retry; commits."""
        webhook_id = f"msg_{row.id}"
        body = json.dumps(
            {
                "type": row.kind,
                "topic": row.topic,
                "timestamp": feed.rfc3339(row.created_at),
                "data": data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.signature(key, webhook_id, timestamp, body),
        }
        answer = self.send(
            sub.url, headers, body, self.settings.timeout_s, self.settings.production
        )
        now = self.now()
        session.add(
            WebhookDelivery(
                subscription_id=sub.id,
                webhook_id=webhook_id,
                feed_id=row.id,
                attempt=sub.failures + 1,
                status="delivered" if answer.ok else "failed",
                response_code=answer.status,
                duration_ms=answer.duration_ms,
                error=None if answer.ok else (answer.error or "no answer")[:300],
                at=now,
            )
        )
        if answer.ok:
            sub.cursor_xid, sub.cursor_id = row.xid, row.id
            sub.failures, sub.failing_since, sub.next_attempt_at = 0, None, None
        else:
            sub.failures += 1
            sub.failing_since = sub.failing_since or now
            reason = self.settings.retry.give_up(sub.failures, sub.failing_since, now)
            if reason:
                self._disable(sub, f"{reason}; last: {answer.status or answer.error}", now)
            else:
                sub.next_attempt_at = now + self.settings.retry.wait(sub.failures)
        sub.leased_until = now + self.settings.lease
        session.commit()
        return answer.ok

    @staticmethod
    def _disable(sub: WebhookSubscription, reason: str, now: datetime) -> None:
        sub.state, sub.disabled_reason, sub.disabled_at = "disabled", reason[:300], now
        sub.next_attempt_at = None
        log.warning("webhook subscription %s disabled: %s", sub.id, reason)
