"""The deliverer as it runs in production: ``flask --app wsgi hooks deliver`` in a process of
its own, sending to a real receiver what the API's use cases recorded; killed mid-way and
started again, it loses nothing (and may repeat what it sent just before, with the same
webhook-id); SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.test_webhooks import Receiver, findings, subscribe

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.committed()]


def _deliverer(database_url: str, log: Path) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "TRACE_ENV": "testing",
        "RESOLVER_HOST": "id.example.cn",
        "WEBHOOK_POLL_MS": "50",
        "WEBHOOK_LEASE_S": "1",
    }
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "hooks", "deliver"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(receiver: Receiver, n: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while len(receiver.received) < n and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    assert len(receiver.received) >= n, log.read_text(errors="replace")


def test_the_deliverer_process_sends_everything_in_order_across_a_restart(
    app, client, make, database_url, tmp_path
):
    receiver = Receiver()
    log = tmp_path / "hooks.log"
    try:
        merchant = make.merchant()
        subscribe(client, make.auth("merchant", merchant), receiver, ["finding"])
        findings(app, merchant, "P1", "P2")
        proc = _deliverer(database_url, log)
        _wait(receiver, 2, proc, log)
        proc.kill()  # no goodbye: its lease expires
        proc.wait(10)
        findings(app, merchant, "P3")
        findings(app, merchant, "P4")
        proc = _deliverer(database_url, log)
        _wait(receiver, 4, proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text(errors="replace")
        # At least once: a message sent just before the kill may come again, with its id.
        by_id = {h["webhook-id"]: b["data"]["subject"]["id"] for h, b in receiver.received}
        assert list(by_id.values()) == ["P1", "P2", "P3", "P4"]
        numbers = [int(h["webhook-id"].removeprefix("msg_")) for h, _ in receiver.received]
        assert numbers == sorted(numbers)  # a repeat only ever repeats the last ones
        assert receiver.bad_signatures == 0
    finally:
        receiver.close()
