"""``flask devices simulate``: the device simulator run against this service. A fleet from the
database (:mod:`app.demo_fleet`), its traffic from the device side's generator, sent over MQTT
or HTTP by its transports (:mod:`devices.simulator`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from app import demo_cases
from app.demo_fleet import CodeSupply, last_event_time, load_fleet, prepare_fleet
from devices.simulator import (
    CST,
    HttpPublisher,
    MqttPublisher,
    Publisher,
    Traffic,
    generate,
    http_poster,
)


@click.command("simulate")
@click.option("--shops", type=click.IntRange(min=1), help="Shops to simulate (default: all).")
@click.option("--couriers", type=click.IntRange(min=1), help="Couriers (default: all).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Events per second at most (0: as fast as the service answers).",
)
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--events", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option(
    "--http",
    "http_url",
    metavar="URL",
    help="POST to URL/api/v1/events instead of publishing to MQTT_URL.",
)
@click.option("--seed", type=int, help="Random seed (default: a new one, printed).")
@click.option(
    "--lookback",
    type=click.FloatRange(min=0.1, max=24 * 29),
    help="Start the simulated clock this many hours ago (default: from the rate "
    "and the number of events, 72 h for an open-ended run).",
)
@click.option(
    "--orders-per-hour",
    type=click.FloatRange(min=0.1),
    default=4.0,
    show_default=True,
    help="Orders per shop and hour at the busiest hours.",
)
@click.option(
    "--offline-share",
    type=click.FloatRange(0, 1),
    default=0.25,
    show_default=True,
    help="Share of handhelds that go offline now and then, then send a burst.",
)
@click.option(
    "--loss",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of messages dropped before sending (the service asks for them).",
)
@click.option(
    "--setup-only",
    is_flag=True,
    help="Register the fleet (devices, parties, codes) and stop, sending nothing.",
)
@with_appcontext
def simulate_command(
    shops,
    couriers,
    rate,
    duration,
    events,
    http_url,
    seed,
    lookback,
    orders_per_hour,
    offline_share,
    loss,
    setup_only,
) -> None:
    """Simulate shop scanners and couriers' handhelds sending events (demo, load tests).

    Uses the devices registered in the database (the demo's), registering scanners,
    handhelds, parties and trace codes as needed. Events go to the broker at MQTT_URL, or
    over HTTP with --http. Their times start in the past and catch up with the clock; an
    event is never sent before its time."""
    ext = current_app.extensions["trace"]
    config = ext.config
    if config.TRACE_ENV == "production":
        raise click.ClickException("the simulator makes up parties and events: not in production")
    if duration is not None and events is not None:
        raise click.UsageError("give --duration or --events, not both")
    if not http_url and not config.MQTT_URL and not setup_only:
        raise click.UsageError("set MQTT_URL (the broker) or give --http URL")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    with ext.sessionmaker() as session:
        demo_fleet = demo_cases.fleet_before_cases(session)
        if demo_fleet and shops is None and couriers is None:
            shops, couriers = demo_fleet  # the demo's own; the cases' parties stay out
        merchant_ids, courier_ids = prepare_fleet(
            session, config, shops=shops, couriers=couriers, seed=seed
        )
        session.commit()
        fleet = load_fleet(
            session,
            config.SECRET_KEY,
            merchant_ids=merchant_ids,
            courier_ids=courier_ids,
            supply=lambda pid: CodeSupply(ext.sessionmaker, config, pid),
        )
        last = last_event_time(session, fleet)
    if setup_only:
        click.echo(f"simulate: ready: {fleet.describe()}", err=True)
        return
    traffic = Traffic(orders_per_hour=orders_per_hour, offline_share=offline_share)
    now = datetime.now(UTC).replace(microsecond=0)
    total = events if events is not None else (rate * duration if duration and rate else None)
    if lookback is None:
        if total is None:
            lookback = 72.0
        else:
            hours = 1.2 * total / max(1.0, traffic.events_per_hour(len(fleet.shops)))
            lookback = min(24 * 29, max(2.0, hours))
    start = now - timedelta(hours=lookback)
    if last is not None and last + timedelta(minutes=1) > start:
        start = min(now, last + timedelta(minutes=1))
    stream = generate(fleet, start=start, seed=seed, traffic=traffic)

    def say(text: str) -> None:
        click.echo(f"simulate: {text}", err=True)

    common = {"loss": loss, "seed": seed, "log": say}
    if http_url:
        publisher: Publisher = HttpPublisher(fleet, http_poster(http_url), **common)
        where = f"{http_url.rstrip('/')}/api/v1/events"
    else:
        publisher = MqttPublisher(fleet, config.MQTT_URL, **common)
        where = config.MQTT_URL.split("@")[-1]
    say(f"{fleet.describe()} -> {where}")
    say(
        f"seed {seed}; simulated clock from {start.astimezone(CST):%Y-%m-%d %H:%M} (CST); "
        f"at most {rate:g} events/s"
        if rate
        else f"seed {seed}; as fast as possible"
    )
    try:
        stats = publisher.run(
            stream,
            rate=rate or None,
            duration=duration,
            max_events=events,
            progress=lambda s: say(s.summary()),
        )
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        stats = publisher.stats
    click.echo(stats.summary())
