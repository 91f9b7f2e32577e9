"""Helpers for the MQTT tests: a private Mosquitto, the worker subprocess, signed devices."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import protocol
from tests.factories import EventFactory

ROOT = Path(__file__).resolve().parents[2]
#: The worker's client id in these tests: one persistent session in the share group, so no
#: stopped session of an earlier test keeps a share of the stream queued for itself.
WORKER_CLIENT_ID = "trace-ingest-test"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.05):
    """Poll until ``predicate()`` is truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(found):
        pytest.fail("these tests need Mosquitto 2.0: apt-get install mosquitto")
    return found


class Broker:
    """A private Mosquitto on a free port of 127.0.0.1, persistence in its own directory."""

    def __init__(self, directory: Path, conf: str | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.conf.write_text(
            conf
            if conf is not None
            else "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.dir}/",
                    "max_queued_messages 1000000",
                    "max_inflight_messages 100",
                    *self.common(),
                ]
            )
            + "\n"
        )
        self.proc: subprocess.Popen | None = None

    def common(self) -> list[str]:
        # As root, Mosquitto would switch to the `mosquitto` user and lose our tmp files.
        return [f"user {getpass.getuser()}", f"log_dest file {self.log}", "log_type all"]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.dir / "mosquitto.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err
            )

        def listening() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.tail()}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        """A clean stop: Mosquitto writes its persistence file on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, n: int = 4000) -> str:
        text = ""
        for name in ("mosquitto.stderr", "mosquitto.log"):
            path = self.dir / name
            if path.exists():
                text += path.read_text(errors="replace")[-n:]
        return text


class WorkerProcess:
    """`flask --app wsgi devices ingest` in a subprocess, its log in a file."""

    def __init__(self, log: Path, env: dict, args: list[str]) -> None:
        self.log = log
        command = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*command, "devices", "ingest", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_subscribed(self, after: int = 0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the worker exited ({self.proc.returncode}):\n{self.output()}")
            return "subscribed to" in self.output()[after:]

        wait_for(ready, 30, "the worker to subscribe")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Device:
    """A registered device on MQTT: signs and numbers events like firmware, publishes them
    QoS 1 on its events topic, and collects what arrives on its acks and commands topics."""

    def __init__(
        self,
        port: int,
        device_id: str,
        secret: str,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.device_id, self.secret = device_id, secret
        self.events = EventFactory(secret)
        self.acks: dict[str | None, list[dict]] = defaultdict(list)
        self.ack_messages: list[list[dict]] = []
        #: every ack in the order it came, whatever message carried it
        self.ack_stream: list[dict] = []
        self.commands: list[dict] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        #: mid → the broker's PUBACK reason code (0 success, 16 no matching subscribers...)
        self.puback: dict[int, int] = {}
        #: mid → (topic, payload) of what was published, to resend
        self.sent: dict[int, tuple[str, bytes]] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"dev-{device_id}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(50)
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600  # its acks wait at the broker over a restart
        self.client.connect("127.0.0.1", port, properties=props)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError(f"device {device_id} could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(
                [
                    (protocol.topic_acks(self.device_id), 1),
                    (protocol.topic_commands(self.device_id), 1),
                ]
            )

    def _on_message(self, client, userdata, message) -> None:
        body = json.loads(message.payload)
        with self.lock:
            if message.topic.endswith("/commands"):
                self.commands.append(body)
                return
            self.ack_messages.append(body["acks"])
            self.ack_stream.extend(body["acks"])
            for ack in body["acks"]:
                self.acks[ack["event_id"]].append(ack)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self.lock:
            self.puback[mid] = reason_code.value

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- events

    def event(self, type_: str, when: datetime, seq: int | None = None, **fields) -> dict:
        """The device's next signed event (see tests/factories.py)."""
        return self.events(type_, when, seq, **fields)

    def publish(
        self, *events: dict, raw: bytes | None = None, topic: str | None = None, wait: bool = True
    ) -> mqtt.MQTTMessageInfo:
        if raw is None:
            raw = json.dumps(events[0] if len(events) == 1 else {"events": list(events)}).encode()
        topic = topic or protocol.topic_events(self.device_id)
        # (not under self.lock: paho calls on_publish holding its own lock)
        info = self.client.publish(topic, raw, qos=1)
        self.sent[info.mid] = (topic, raw)
        if wait:
            wait_for(lambda: info.mid in self.puback, 10, "the broker's PUBACK")
        return info

    def resend_unrouted(self, timeout: float = 60) -> int:
        """Like firmware following PROTOCOL.md: once every publish has its PUBACK, resend
        those the broker dropped for want of a subscriber (reason code 16), until none is.
        Returns how many were resent."""
        resent = 0
        while True:
            wait_for(
                lambda: all(mid in self.puback for mid in list(self.sent)),
                timeout,
                f"PUBACKs of {self.device_id}'s publishes",
            )
            with self.lock:
                dropped = [m for m, code in self.puback.items() if code == 16 and m in self.sent]
                again = [self.sent.pop(m) for m in dropped]
            if not again:
                return resent
            for topic, raw in again:
                self.publish(raw=raw, topic=topic, wait=False)
            resent += len(again)

    def statuses(self, event_id: str | None) -> list[str]:
        with self.lock:
            return [a["status"] for a in self.acks.get(event_id, [])]

    def wait_acks(self, event_ids, timeout: float = 30) -> dict[str, list[str]]:
        """Every event's ack statuses, once each has at least one."""
        event_ids = list(event_ids)

        def all_acked():
            with self.lock:
                return all(self.acks.get(e) for e in event_ids)

        wait_for(all_acked, timeout, f"acks for {len(event_ids)} events of {self.device_id}")
        return {e: self.statuses(e) for e in event_ids}


def now() -> datetime:
    return datetime.now(UTC)
