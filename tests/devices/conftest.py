"""Fixtures for the MQTT side: a private Mosquitto (never the machine's shared one), the
ingest worker as a subprocess (`flask --app wsgi devices ingest`), and devices that sign,
publish and collect their acks and commands over MQTT."""

from __future__ import annotations

import os
import sys

import pytest
import sqlalchemy as sa
from mqtt_support import WORKER_CLIENT_ID, Broker, Device, WorkerProcess


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def start_worker(database_url, broker, tmp_path):
    """Start a worker subprocess on the test database and the private broker; stopped (and
    its log shown if the test failed) at the end."""
    started: list[WorkerProcess] = []

    def start(*args: str, mqtt_url: str | None = None) -> WorkerProcess:
        env = os.environ | {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "MQTT_URL": mqtt_url or broker.url,
            "TRACE_ENV": "testing",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(
            log, env, ["--client-id", WORKER_CLIENT_ID, "--log-every", "1", *args]
        )
        started.append(worker)
        worker.wait_subscribed()
        return worker

    yield start
    for worker in started:
        worker.terminate()
    for worker in started:
        sys.stderr.write(f"--- {worker.log.name}\n{worker.output()[-6000:]}\n")


@pytest.fixture
def devices(broker, make):
    """``devices(kind, owner_id)`` → a registered :class:`Device` connected to the broker."""
    opened: list[Device] = []

    def open_device(kind: str, owner_id: int) -> Device:
        device = Device(broker.port, *make.device(kind, owner_id))
        opened.append(device)
        return device

    yield open_device
    for device in opened:
        device.close()


@pytest.fixture
def scalar(app):
    """``scalar(sql, **params)``: one value, read on a fresh connection."""
    engine = app.extensions["trace"].engine

    def run(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    return run


@pytest.fixture
def rows(app):
    """``rows(sql, **params)``: every row, read on a fresh connection."""
    engine = app.extensions["trace"].engine

    def run(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()

    return run
