"""The speed layer (docs/speedups.md): SPEEDUPS=off runs the libraries' own code, and each
library internal still used does what the library does (the paho read path is checked in
tests/devices/test_worker_failures.py)."""

import gc
import runpy
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from config import ConfigError, load_config


def test_speedups_is_on_or_off():
    assert load_config({"SECRET_KEY": "k"}, environ={}).SPEEDUPS == "on"
    assert load_config({"SECRET_KEY": "k"}, environ={"SPEEDUPS": "off"}).SPEEDUPS == "off"
    with pytest.raises(ConfigError, match="SPEEDUPS"):
        load_config({"SECRET_KEY": "k"}, environ={"SPEEDUPS": "fast"})


@pytest.mark.parametrize("setting", ["on", "off"])
def test_speedups_off_leaves_the_web_workers_collector_alone(monkeypatch, setting):
    """gunicorn.conf.py freezes the app's objects and raises the collector's threshold in
    each web worker, only with SPEEDUPS=on."""
    monkeypatch.setenv("SPEEDUPS", setting)
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *a: calls.append(a))
    conf["post_worker_init"](None)
    assert calls == ([] if setting == "off" else ["freeze", (20_000, 20, 20)])


@pytest.mark.parametrize("speedups", [True, False])
def test_speedups_off_gives_the_ingest_worker_pahos_own_read_path(app, speedups):
    import paho.mqtt.client as mqtt

    from app.ingest import mqtt_client
    from app.ingest.worker import BrokerAddress, Worker

    worker = Worker(
        app.extensions["trace"].sessionmaker,
        "k",
        BrokerAddress.parse("mqtt://127.0.0.1:1"),
        client_id="speedups-test",
        speedups=speedups,
    )
    cls = type(worker.client)
    assert cls is (mqtt_client.Client if speedups else mqtt_client.PausingClient)
    own = ("_handle_publish", "_handle_on_message")
    assert all((getattr(cls, n) is getattr(mqtt.Client, n)) is not speedups for n in own)


def test_the_pool_renews_its_connections_after_the_scans_invalidation(tmp_path):
    """app.consumer.operations calls the pool's private ``_invalidate`` with a connection
    from outside the pool when the server dropped it: SQLAlchemy's own disconnect handling,
    which renews every pooled connection made before then at its next checkout."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=sa.pool.QueuePool)
    try:
        with engine.connect() as conn:
            before = conn.connection.dbapi_connection
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is before  # pooled, reused
        outside = sqlite3.connect(tmp_path / "pool.db")  # not a pool's record
        engine.pool._invalidate(outside, Exception("server closed the connection"))
        outside.close()
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is not before
    finally:
        engine.dispose()
