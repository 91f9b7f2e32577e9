"""Every setting of the service, its default, and where it comes from (the environment).

Read once at start-up by :func:`load_config`; a bad value stops the start with a message
that names the variable.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

from tracecore.anomalies import Thresholds
from tracecore.credit import Policy
from tracecore.workdays import Calendar, ResponsePeriod, parse_days

ROOT = Path(__file__).resolve().parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or malformed."""


def _default_database_url() -> str:
    return f"sqlite:///{INSTANCE / 'trace.db'}"


def _default_web_workers() -> int:
    """app.serve's default: one process per core."""
    return os.cpu_count() or 2


#: What production is told to use instead of in-process rate-limit counters.
SHARED_RATE_LIMIT_STORAGE = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Config:
    #: SQLAlchemy URL. ``sqlite:///...`` (SpatiaLite, the embedded default) or
    #: ``postgresql://...`` / ``postgresql+psycopg://...`` (PostGIS, production).
    DATABASE_URL: str = field(default_factory=_default_database_url)
    #: Host (and optional port) written into GS1 Digital Link URIs: https://{host}/01/...
    RESOLVER_HOST: str = "id.trace.example.cn"
    #: Scheme of Digital Link URIs. Always https in production; a local demo may use http.
    RESOLVER_SCHEME: str = "https"
    #: Keys session cookies and the HMAC of personal identifiers; must be stable.
    SECRET_KEY: str = ""
    #: development | production | testing. Production refuses to start without SECRET_KEY.
    TRACE_ENV: str = "development"
    #: Largest number of trace codes one issuance request may ask for (the API's own bound,
    #: app.schemas.MAX_CODES, is 1,000,000: a larger setting allows no more over the API).
    MAX_CODES_PER_REQUEST: int = 1_000_000
    #: Largest request body accepted, in bytes.
    MAX_CONTENT_LENGTH: int = 1 * 1024 * 1024
    #: EPCIS capture: the most events one document may hold (GS1-EPCIS-Capture-Limit), and its
    #: largest size in bytes (GS1-EPCIS-Capture-File-Size-Limit; never above MAX_CONTENT_LENGTH).
    EPCIS_CAPTURE_LIMIT: int = 500
    EPCIS_CAPTURE_FILE_SIZE_LIMIT: int = 1 * 1024 * 1024
    #: Largest number of labels in one PDF sheet.
    MAX_LABELS_PER_SHEET: int = 100_000
    #: TrueType font (or the first face of a collection) that label sheets embed a subset
    #: of: Debian's fonts-wqy-microhei by default; any TrueType CJK font will do.
    LABEL_FONT: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    #: MQTT broker of the ingest worker, e.g. mqtt://user:pass@127.0.0.1:1883 (empty: none).
    MQTT_URL: str = ""
    #: How far ahead of the service's clock a device's event time may be, in seconds.
    EVENT_MAX_SKEW_S: int = 300
    #: on | off: run the anomaly rules on every ingest batch (off only to measure their cost).
    ANOMALY_RULES: str = "on"
    #: JSON object overriding the anomaly rules' thresholds
    #: (defaults: tracecore.anomalies.Thresholds),
    #: e.g. {"remote_sign_km": 3, "stalled_hours": 72}.
    ANOMALY_THRESHOLDS: str = ""
    #: JSON object overriding credit point values and list thresholds (defaults:
    #: tracecore.credit.Policy), e.g. {"fade_days": 730, "black_below": 400}.
    CREDIT_POLICY: str = ""
    #: Working days a party has to respond (appeal) after a regulator confirms a finding
    #: against it or sanctions it; only then does the record count publicly.
    CREDIT_RESPONSE_WORKING_DAYS: int = 7
    #: Public holidays that are no working days, comma-separated ISO dates
    #: (e.g. 2027-01-01,2027-02-06), as the State Council publishes them each year.
    PUBLIC_HOLIDAYS: str = ""
    #: Weekend days worked in their place (调休), comma-separated ISO dates.
    WORKING_WEEKEND_DAYS: str = ""
    #: How long a parcel event waits for its waybill's packing before it is rejected, hours.
    PARKED_EVENT_HOURS: int = 24
    #: Public reviews and complaints accepted per client per hour.
    REVIEWS_PER_HOUR: int = 5
    COMPLAINTS_PER_HOUR: int = 3
    #: Consumers' reports of fakes accepted per client (address) per hour; a network, four
    #: times as many.
    COUNTERFEIT_REPORTS_PER_HOUR: int = 3
    #: How old an event may be when it arrives (a handheld offline for days), in days.
    EVENT_MAX_AGE_DAYS: int = 30
    #: Where rate-limit counters live: memory:// (one process) or redis://host:6379/0 so that
    #: every web worker and instance shares them. Production refuses memory:// with more
    #: than one web worker.
    RATE_LIMIT_STORAGE: str = "memory://"
    #: Web worker processes (app/serve.py reads it too; its default is one per core, and it
    #: exports the count it runs with, its ``--workers`` included).
    WEB_WORKERS: int = field(default_factory=_default_web_workers)
    #: Public answers may show a merchant's credit grade this many seconds old (each web
    #: process keeps it that long instead of scoring the records on every scan).
    PUBLIC_CREDIT_MAX_AGE_S: int = 10
    #: The overview's events per district (the denominator of findings per 10,000 events) are
    #: a scan of the last 30 days' events: each web process keeps them, and counts them again
    #: in the background once they are this many seconds old (so do the recalls' reach and
    #: the lowest scores). 0: counted in every request.
    OVERVIEW_EVENT_COUNTS_MAX_AGE_S: int = 600
    #: Requests per client address to the public pages and answers (flask-limiter syntax).
    PUBLIC_RATE_LIMIT: str = "600 per minute"
    #: Sign-in attempts per client address.
    SIGN_IN_RATE_LIMIT: str = "10 per minute"
    #: Requests to POST /api/v1/events per client address that authenticate no event (an
    #: unknown device, a bad signature, an unreadable body); a device's signed events are
    #: never counted. Over it: 429 with Retry-After.
    UNAUTHENTICATED_EVENTS_RATE_LIMIT: str = "120 per minute"
    #: Failed sign-ins per account (from addresses that have not signed in to it lately; from
    #: one that has, per account and that address). Over it, the account's sign-in waits for
    #: the window to end; a successful sign-in clears the count it was counted on.
    SIGN_IN_ACCOUNT_LIMIT: str = "5 per 15 minutes"
    #: on | off: the speed-ups that override library internals or defaults (app/wrappers.py,
    #: the public rate limit's check and storage, the ingest worker's MQTT read path, the
    #: collector's settings; docs/performance.md). off runs the libraries' own: the behaviour
    #: is the same, only slower.
    SPEEDUPS: str = "on"
    #: Who issues the trace codes, named in the consumer pages' header and footer (a page
    #: that names its issuer, its site and its hotline is harder to pass off). The defaults
    #: describe the demo; a deployment sets its own.
    ISSUER_NAME: str = "商品追溯公共服务平台（演示）"
    #: ... the same in English (the pages' English version).
    ISSUER_NAME_EN: str = "Product Trace Public Service (demo)"
    #: The issuer's own site (https://...), linked from the header and footer.
    ISSUER_URL: str = "https://trace.example.cn/"
    #: The phone number the verdicts' advice gives for reporting a fake or a recalled unit
    #: (default: 12315, the market regulators' national complaint line).
    ISSUER_HOTLINE: str = "12315"
    #: A workspace session ends after this many minutes without a request.
    SESSION_IDLE_MINUTES: int = 30
    #: ... and after this many hours in any case.
    SESSION_MAX_HOURS: int = 8

    #: Webhooks (docs/webhooks.md): seconds a receiver has to connect and answer.
    WEBHOOK_TIMEOUT_S: int = 10
    #: The first wait after a failed delivery, in milliseconds; each further failure in a
    #: row doubles it (with jitter), up to WEBHOOK_RETRY_CAP_S seconds.
    WEBHOOK_RETRY_BASE_MS: int = 1000
    WEBHOOK_RETRY_CAP_S: int = 3600
    #: A subscription is disabled (with the reason shown) after this many failed deliveries
    #: in a row, or after failing for this many hours, whichever comes first.
    WEBHOOK_DISABLE_AFTER_FAILURES: int = 20
    WEBHOOK_DISABLE_AFTER_HOURS: int = 24
    #: Milliseconds the deliverer sleeps when it found nothing to send.
    WEBHOOK_POLL_MS: int = 200
    #: Seconds a deliverer's claim on a subscription lasts without news (then another
    #: deliverer may take it over).
    WEBHOOK_LEASE_S: int = 60
    #: Days a webhook feed row is kept for a subscription that has not had it (a disabled
    #: one); rows every subscription has had are deleted by the deliverer within a minute.
    WEBHOOK_FEED_RETENTION_DAYS: int = 14

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @cached_property
    def thresholds(self) -> Thresholds:
        return _overridden(Thresholds(), "ANOMALY_THRESHOLDS", self.ANOMALY_THRESHOLDS)

    @cached_property
    def policy(self) -> Policy:
        return _overridden(Policy(), "CREDIT_POLICY", self.CREDIT_POLICY)

    @cached_property
    def calendar(self) -> Calendar:
        """The working-day calendar of response periods."""
        days = {}
        for name in ("PUBLIC_HOLIDAYS", "WORKING_WEEKEND_DAYS"):
            try:
                days[name] = parse_days(getattr(self, name))
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        return Calendar(days["PUBLIC_HOLIDAYS"], days["WORKING_WEEKEND_DAYS"])

    @property
    def response_period(self) -> ResponsePeriod:
        """How long a party may respond before a decision against it counts publicly."""
        return ResponsePeriod(self.CREDIT_RESPONSE_WORKING_DAYS, self.calendar)


def _overridden(defaults, name: str, raw: str):
    """``defaults`` with the fields a JSON object in setting ``name`` gives, type-checked."""
    if not raw:
        return defaults
    try:
        values = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a JSON object") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{name} must be a JSON object")
    known = {f.name: getattr(defaults, f.name) for f in fields(defaults)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{name}: unknown setting {key!r}; known: {', '.join(known)}")
        if isinstance(value, bool) or (
            not isinstance(value, type(known[key]))
            and not (isinstance(known[key], float) and isinstance(value, int))
        ):
            raise ConfigError(f"{name}: {key} must be like {known[key]!r}")
    return replace(defaults, **values)


def _coerce(name: str, raw: str, typ: type) -> object:
    if typ is int or typ == "int":
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
        return value
    return raw


def _instance_secret() -> str:
    """A per-installation secret kept in instance/secret_key, created on first use."""
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _check_limits(config: Config) -> None:
    """Every limit string parses; production does not count limits per process when
    several processes serve it (each would allow the whole limit: N workers, N times)."""
    from limits import parse_many

    for name in ("PUBLIC_RATE_LIMIT", "SIGN_IN_RATE_LIMIT", "SIGN_IN_ACCOUNT_LIMIT"):
        try:
            parse_many(getattr(config, name))
        except ValueError:
            raise ConfigError(
                f"{name} must be a limit such as '10 per minute', got {getattr(config, name)!r}"
            ) from None
    in_process = config.RATE_LIMIT_STORAGE.startswith("memory://")
    if config.TRACE_ENV == "production" and in_process and config.WEB_WORKERS > 1:
        raise ConfigError(
            f"RATE_LIMIT_STORAGE=memory:// counts limits in each of the {config.WEB_WORKERS} web "
            "workers (WEB_WORKERS, the server's worker count) apart, multiplying every limit: "
            f"in production set RATE_LIMIT_STORAGE={SHARED_RATE_LIMIT_STORAGE} (the machine's "
            "Redis), or WEB_WORKERS=1"
        )


def load_config(overrides: dict | None = None, environ: dict | None = None) -> Config:
    """Build the configuration from the environment, then ``overrides`` (used by tests)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(Config):
        if f.name in env and env[f.name] != "":
            values[f.name] = _coerce(f.name, env[f.name], f.type)
    values.update(overrides or {})
    config = Config(**values)
    if config.TRACE_ENV not in ("development", "production", "testing"):
        raise ConfigError("TRACE_ENV must be development, production or testing")
    if config.ANOMALY_RULES not in ("on", "off"):
        raise ConfigError("ANOMALY_RULES must be on or off")
    if config.SPEEDUPS not in ("on", "off"):
        raise ConfigError("SPEEDUPS must be on or off")
    config.thresholds, config.policy, config.calendar  # noqa: B018 - validated now, not at the first event
    if config.RESOLVER_SCHEME not in ("https", "http"):
        raise ConfigError("RESOLVER_SCHEME must be https or http")
    if config.TRACE_ENV == "production" and config.RESOLVER_SCHEME != "https":
        raise ConfigError("RESOLVER_SCHEME must be https in production")
    if not config.ISSUER_URL.startswith(("https://", "http://")):
        raise ConfigError("ISSUER_URL must be an https:// (or http://) URL")
    if not config.ISSUER_NAME.strip() or not config.ISSUER_NAME_EN.strip():
        raise ConfigError("ISSUER_NAME and ISSUER_NAME_EN must not be blank")
    if not config.RATE_LIMIT_STORAGE.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError("RATE_LIMIT_STORAGE must be memory:// or a redis:// URL")
    if not config.SECRET_KEY:
        if config.TRACE_ENV == "production":
            raise ConfigError("SECRET_KEY must be set in the environment in production")
        config = Config(**{**values, "SECRET_KEY": _instance_secret()})
    _check_limits(config)
    return config
