"""``flask --app wsgi db ...`` and ``flask --app wsgi trace ...``: the same use cases as the
API, run as the installation's operator. Each command is one unit of work: it commits on
success and rolls back on any error. Long jobs show progress on a terminal only."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app import migrate
from app.auth.models import User
from app.auth.operations import create_token, create_user, end_sessions
from app.catalog import operations as catalog
from app.catalog.models import ProductCategory
from app.codes import operations as codes
from app.credit.models import Anomaly
from app.events.models import Device
from app.parties import operations as parties
from app.parties.models import MerchantKind
from app.simulate import simulate_command
from devices.protocol import derive_secret
from tracecore.access import OPERATOR, Role
from tracecore.errors import DomainError


def _ext():
    return current_app.extensions["trace"]


@contextlib.contextmanager
def unit() -> Iterator[Session]:
    """A session that commits when the block succeeds; a domain error becomes a clean exit."""
    session = _ext().sessionmaker()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        session.rollback()
        where = f" ({exc.field})" if exc.field else ""
        raise click.ClickException(f"{exc.message}{where}") from None
    finally:
        session.close()


@contextlib.contextmanager
def progress_bar(length: int, label: str):
    """A progress callback ``(done)`` drawing a bar on a terminal, silent when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        state = {"done": 0}

        def report(done: int) -> None:
            bar.update(done - state["done"])
            state["done"] = done

        yield report


# -- database -------------------------------------------------------------------------------

db_cli = AppGroup("db", help="Apply or revert the schema migrations on DATABASE_URL.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    migrate.upgrade(_ext().config.DATABASE_URL, revision)


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Revert one migration, or down to REVISION ('base' empties the database)."""
    migrate.downgrade(_ext().config.DATABASE_URL, revision)


# -- trace ----------------------------------------------------------------------------------

trace_cli = AppGroup("trace", help="Parties, products, batches, trace codes and labels.")


@trace_cli.group("token")
def token_cli() -> None:
    """API tokens."""


@token_cli.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--party-id", type=int, help="The merchant or logistics company it acts for.")
@click.option("--label", default="", help="A note on who holds it.")
@click.option(
    "--jurisdiction",
    default="",
    help="A regulator's region-code prefixes, comma-separated (e.g. 3204); empty: nationwide.",
)
@click.option(
    "--outside-system",
    default=None,
    help="The name of an outside traceability system: the token may only capture EPCIS "
    "events for its party (--party-id) and read its capture jobs.",
)
def token_create(
    role: str, party_id: int | None, label: str, jurisdiction: str, outside_system: str | None
) -> None:
    """Create a token; it is printed once, on the last line, and stored only hashed."""
    with unit() as session:
        token, record = create_token(
            session, Role(role), party_id, label, jurisdiction, outside_system
        )
    click.echo(
        f"created {role} token #{record.id}; keep it secret, it is not shown again:", err=True
    )
    click.echo(token)


@trace_cli.group("user")
def user_cli() -> None:
    """People who sign in to the workspace."""


@user_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--party-id", type=int, help="The merchant or logistics company they work for.")
@click.option("--jurisdiction", default="", help="Region-code prefixes, e.g. 3204,441202.")
@click.option("--name", "display_name", default="", help="The name shown in the workspace.")
@click.password_option(envvar="TRACE_USER_PASSWORD", help="Asked for when not given.")
def user_create(
    username: str,
    role: str,
    party_id: int | None,
    jurisdiction: str,
    display_name: str,
    password: str,
) -> None:
    """Create a workspace user; the password is stored only as a scrypt hash."""
    with unit() as session:
        user = create_user(
            session,
            username,
            password,
            Role(role),
            party_id=party_id,
            jurisdiction=jurisdiction,
            display_name=display_name,
        )
    click.echo(f"created {role} user #{user.id} {user.username}", err=True)


@user_cli.command("sign-out")
@click.argument("username")
def user_sign_out(username: str) -> None:
    """End every workspace session of a user now (a lost laptop, a copied cookie)."""
    with unit() as session:
        user = session.scalar(sa.select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        end_sessions(session, user.id)
    click.echo(f"ended every session of {user.username}", err=True)


@trace_cli.command("merchant")
@click.option("--name", required=True)
@click.option("--uscc", required=True, help="Unified social credit code, 18 characters.")
@click.option("--kind", type=click.Choice([k.value for k in MerchantKind]), required=True)
@click.option("--region-code", required=True, help="GB/T 2260 six-digit code.")
@click.option("--lat", type=float)
@click.option("--lon", type=float)
def merchant_add(name, uscc, kind, region_code, lat, lon) -> None:
    """Register a merchant; prints its id."""
    with unit() as session:
        merchant = parties.register_merchant(
            session,
            OPERATOR,
            name=name,
            uscc=uscc,
            kind=MerchantKind(kind),
            region_code=region_code,
            lat=lat,
            lon=lon,
        )
    click.echo(merchant.id)


@trace_cli.command("company")
@click.option("--name", required=True)
@click.option("--uscc", required=True)
@click.option("--region-code", required=True)
def company_add(name, uscc, region_code) -> None:
    """Register a logistics company; prints its id."""
    with unit() as session:
        company = parties.register_logistics_company(
            session, OPERATOR, name=name, uscc=uscc, region_code=region_code
        )
    click.echo(company.id)


@trace_cli.command("courier")
@click.option("--name", required=True)
@click.option("--id-number", required=True, prompt=True, hide_input=True)
@click.option("--phone", required=True)
@click.option("--company-id", type=int, required=True)
@click.option("--region-code", required=True)
def courier_add(name, id_number, phone, company_id, region_code) -> None:
    """Register a courier under the real name; prints its id."""
    with unit() as session:
        courier = parties.register_courier(
            session,
            OPERATOR,
            _ext().config.SECRET_KEY,
            name=name,
            id_number=id_number,
            phone=phone,
            company_id=company_id,
            region_code=region_code,
        )
    click.echo(courier.id)


@trace_cli.command("product")
@click.option("--gtin", required=True)
@click.option("--name", required=True)
@click.option("--category", type=click.Choice([c.value for c in ProductCategory]), required=True)
@click.option("--merchant-id", type=int, required=True)
def product_add(gtin, name, category, merchant_id) -> None:
    """Register a product; prints its id."""
    with unit() as session:
        product = catalog.register_product(
            session,
            OPERATOR,
            gtin=gtin,
            name=name,
            category=ProductCategory(category),
            merchant_id=merchant_id,
        )
    click.echo(product.id)


@trace_cli.command("batch")
@click.option("--product-id", type=int, required=True)
@click.option("--lot", required=True)
@click.option("--produced-on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--expires-on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--origin", "origin_name", required=True, help="Place name of the origin.")
@click.option("--lat", type=float, required=True)
@click.option("--lon", type=float, required=True)
@click.option("--quantity", type=int, required=True)
def batch_add(product_id, lot, produced_on, expires_on, origin_name, lat, lon, quantity) -> None:
    """Register a batch (lot); prints its id."""
    with unit() as session:
        batch = catalog.register_batch(
            session,
            OPERATOR,
            product_id=product_id,
            lot=lot,
            produced_on=produced_on.date(),
            expires_on=expires_on.date(),
            origin_name=origin_name,
            origin_lat=lat,
            origin_lon=lon,
            quantity=quantity,
        )
    click.echo(batch.id)


@trace_cli.command("issue")
@click.argument("batch_id", type=int)
@click.option("--count", type=int, required=True)
@click.option("--out", type=click.File("w"), default="-", help="CSV file (default: stdout).")
@click.option("--allow-over-quantity", is_flag=True)
def issue(batch_id: int, count: int, out, allow_over_quantity: bool) -> None:
    """Issue COUNT trace codes for BATCH_ID and write them as CSV ``serial,uri``."""
    from app.codes.api import uri_prefix

    cfg = _ext().config
    with progress_bar(count, "issuing") as report, unit() as session:
        issued = codes.issue_codes(
            session,
            OPERATOR,
            batch_id,
            count,
            max_count=cfg.MAX_CODES_PER_REQUEST,
            allow_over_quantity=allow_over_quantity,
            progress=report,
        )
        prefix = uri_prefix(issued.batch.product.gtin, issued.batch.lot)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["serial", "uri"])
    writer.writerows((s, prefix + s) for s in issued.serials)
    click.echo(
        f"issued {count} codes for batch {batch_id} (issuance {issued.issuance.id})", err=True
    )


@trace_cli.command("labels")
@click.argument("batch_id", type=int)
@click.option("--out", type=click.File("wb"), required=True, help="PDF file to write.")
@click.option("--offset", type=int, default=0)
@click.option("--limit", type=int, default=1_000_000)
def labels_cmd(batch_id: int, out, offset: int, limit: int) -> None:
    """Render the batch's labels as a printable A4 PDF sheet."""
    from app import labels
    from app.codes.api import uri_prefix
    from app.label_sheet import write_label_sheet_pdf

    with unit() as session:
        batch = catalog.get_batch(session, batch_id)
        serials = codes.codes_of_batch(session, batch_id, offset, limit)
        gtin, lot, name = batch.product.gtin, batch.lot, batch.product.name
    prefix = uri_prefix(gtin, lot)
    items = labels.batch_labels(prefix, gtin, lot, name, serials)
    with progress_bar(len(serials), "rendering") as report:
        done = write_label_sheet_pdf(
            items,
            out,
            progress=(lambda n: report(min(n, len(serials)))) if report else None,
            font_path=_ext().config.LABEL_FONT,
        )
    click.echo(f"wrote {done} labels", err=True)


@trace_cli.command("code")
@click.argument("serial_or_uri")
def code_show(serial_or_uri: str) -> None:
    """Show a trace code, found by serial or by Digital Link URI."""
    import json

    from app import serialize
    from app.codes.api import code_uri

    with unit() as session:
        found = (
            codes.find_code_by_uri(session, serial_or_uri)
            if "/" in serial_or_uri
            else codes.find_code(session, serial_or_uri)
        )
        answer = serialize.code(found, code_uri(found))
    click.echo(json.dumps(answer, ensure_ascii=False, indent=2))


@trace_cli.command("demo")
def demo() -> None:
    """Seed a small demo data set (once); prints an admin token when it seeds."""
    from app import demo as demo_data

    with unit() as session:
        seeded = demo_data.seed(session, _ext().config)
    if seeded is None:
        click.echo("demo data already present", err=True)
        return
    for line in seeded:
        click.echo(line)


@trace_cli.command("demo-cases")
def demo_cases() -> None:
    """Play the demo's dishonest cases once, five days back, through the real ingest and
    sweep, so the regulators' queue has findings to decide (app/demo_cases.py)."""
    from app import demo_cases as cases

    ext = _ext()
    if ext.config.TRACE_ENV == "production":
        raise click.ClickException("the demo's cases make up parties and events: not in production")
    findings = sa.select(sa.func.count()).select_from(Anomaly)
    with ext.sessionmaker() as session:
        if cases.already_played(session):
            click.echo("demo cases already played", err=True)
            return
        before = session.scalar(findings)
    report = cases.play(current_app)
    with ext.sessionmaker() as session:
        found = session.scalar(findings) - before
    click.echo(f"demo cases: {report.accepted:,} events stored, {found} findings raised", err=True)


# -- devices --------------------------------------------------------------------------------

devices_cli = AppGroup("devices", help="The MQTT ingest worker and the broker's users.")


@devices_cli.command("ingest")
@click.option(
    "--client-id",
    envvar="TRACE_INGEST_CLIENT_ID",
    help="MQTT client id, stable across restarts and different for each worker "
    "(default: trace-ingest-<hostname>).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=1000,
    show_default=True,
    help="Messages stored per transaction, at most.",
)
@click.option(
    "--log-every",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds between throughput lines in the log.",
)
@click.option(
    "--sweep-every",
    type=click.FloatRange(1),
    default=300.0,
    show_default=True,
    help="Seconds between sweeps (stalled and late parcels, expired parked events).",
)
def devices_ingest(
    client_id: str | None, batch_size: int, log_every: float, sweep_every: float
) -> None:
    """Store the events devices publish over MQTT (runs until SIGTERM or Ctrl-C)."""
    import logging

    from app.anomalies.sweep import run_sweep
    from app.ingest.api import limits
    from app.ingest.worker import BrokerAddress, Worker, default_client_id

    ext = _ext()
    cfg = ext.config
    if not cfg.MQTT_URL:
        raise click.ClickException(
            "MQTT_URL is not set: give the broker as MQTT_URL=mqtt://user:password@host:1883"
        )
    try:
        broker = BrokerAddress.parse(cfg.MQTT_URL)
    except ValueError as exc:
        raise click.ClickException(f"MQTT_URL: {exc}") from None
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    Worker(
        ext.sessionmaker,
        cfg.SECRET_KEY,
        broker,
        client_id=client_id or default_client_id(),
        limits=limits(),  # the same as the HTTP twin's
        batch_size=batch_size,
        log_every=log_every,
        sweep=lambda session: run_sweep(session, cfg),
        sweep_every=sweep_every,
        speedups=cfg.SPEEDUPS == "on",
    ).run()


@devices_cli.command("mqtt-auth")
@click.option(
    "--passwd",
    "passwd_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Mosquitto password file to write (mosquitto.conf: password_file).",
)
@click.option(
    "--acl",
    "acl_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Mosquitto ACL file to write (mosquitto.conf: acl_file).",
)
@click.option(
    "--worker-user",
    help="The ingest workers' MQTT user (default: from MQTT_URL, else trace-ingest).",
)
@click.option(
    "--worker-password",
    envvar="MQTT_WORKER_PASSWORD",
    help="Its password (default: from MQTT_URL).",
)
def mqtt_auth(
    passwd_path: str, acl_path: str, worker_user: str | None, worker_password: str | None
) -> None:
    """Write Mosquitto's password and ACL files: every enabled device (user = device id,
    password = its secret) and the ingest workers' user. Reload the broker after (SIGHUP)."""
    from app.ingest.worker import BrokerAddress

    cfg = _ext().config
    from_url = BrokerAddress.parse(cfg.MQTT_URL) if cfg.MQTT_URL else None
    worker_user = worker_user or (from_url and from_url.username) or "trace-ingest"
    if worker_password is None and from_url and from_url.username == worker_user:
        worker_password = from_url.password
    if not worker_password:
        raise click.ClickException(
            "give the workers' password: --worker-password, MQTT_WORKER_PASSWORD, "
            "or in MQTT_URL (mqtt://user:password@host:port)"
        )
    if not _MQTT_USER.fullmatch(worker_user) or _DEVICE_ID.fullmatch(worker_user):
        raise click.ClickException(
            "--worker-user: letters, digits, '-', '_' or '.', and not shaped like a device id"
        )
    with unit() as session:
        devices = session.execute(
            sa.select(Device.id, Device.secret_version)
            .where(Device.disabled_at.is_(None))
            .order_by(Device.id)
        ).all()
    lines = [f"{worker_user}:{mosquitto_hash(worker_password)}"]
    lines += [
        f"{device_id}:{mosquitto_hash(derive_secret(cfg.SECRET_KEY, device_id, version))}"
        for device_id, version in devices
    ]
    _replace_file(passwd_path, "\n".join(lines) + "\n", 0o640)
    _replace_file(acl_path, MOSQUITTO_ACL.format(worker=worker_user), 0o644)
    click.echo(
        f"wrote {passwd_path} ({len(devices)} devices and the worker user {worker_user!r}) "
        f"and {acl_path}; reload mosquitto to apply them (kill -HUP, systemctl reload)",
        err=True,
    )


_MQTT_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DEVICE_ID = re.compile(r"[0-9A-F]{16}")

#: Devices reach only their own topics (%u is the MQTT username, i.e. the device id). The
#: workers' shared subscription $share/trace-ingest/trace/v1/devices/+/events is checked by
#: Mosquitto 2.0 against the topic filter without its $share/<group>/ prefix.
MOSQUITTO_ACL = """\
# Written by `flask --app wsgi devices mqtt-auth`: regenerate it rather than edit it.
# No topic lines before the first `user`: anonymous clients get nothing.

# Each device (username = its id) publishes its events, reads its acks and commands.
pattern write trace/v1/devices/%u/events
pattern read trace/v1/devices/%u/acks
pattern read trace/v1/devices/%u/commands

# The ingest workers read every device's events and answer on acks and commands.
user {worker}
topic read trace/v1/devices/+/events
topic write trace/v1/devices/+/acks
topic write trace/v1/devices/+/commands
"""


def mosquitto_hash(password: str, iterations: int = 101) -> str:
    """A password hash as `mosquitto_passwd` (2.0) writes it: PBKDF2-HMAC-SHA512,
    ``$7$<iterations>$<base64 12-byte salt>$<base64 64-byte hash>``.

    101 iterations is mosquitto_passwd's default; stretching adds nothing to device secrets
    (256 random bits each) and Mosquitto pays it on every device connection."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def _replace_file(path: str, text: str, mode: int) -> None:
    """Write atomically, keeping an existing file's mode and owner (Mosquitto reads it as
    its own user)."""
    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".mqtt-auth-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if os.path.exists(target):
            st = os.stat(target)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- webhooks -------------------------------------------------------------------------------

hooks_cli = AppGroup("hooks", help="Signed webhooks: the deliverer.")


@hooks_cli.command("deliver")
@click.option("--once", is_flag=True, help="One pass over the due subscriptions, then exit.")
def hooks_deliver(once: bool) -> None:
    """POST the webhook subscriptions' feed, signed, in order, until SIGTERM or Ctrl-C.
    Several may run on PostgreSQL (each subscription is served by one at a time); one on
    SQLite."""
    import logging
    import signal
    import threading

    from app.hooks.deliver import Deliverer, Settings

    ext = _ext()
    deliverer = Deliverer(ext.sessionmaker, Settings.of(ext.config))
    if once:
        click.echo(f"attempted {deliverer.run_once()}", err=True)
        return
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger(__name__).info("webhook deliverer %s started", deliverer.name)
    deliverer.run(ext.config.WEBHOOK_POLL_MS / 1000, stop.is_set)


def register(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(trace_cli)
    devices_cli.add_command(simulate_command)
    app.cli.add_command(devices_cli)
    app.cli.add_command(hooks_cli)
