"""`flask --app wsgi devices mqtt-auth` and devices/mosquitto/mosquitto.conf: a private
Mosquitto started on the production configuration with the generated password and ACL files."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from mqtt_support import ROOT, Broker, Device, now
from paho.mqtt.enums import CallbackAPIVersion

from devices import protocol

# A private Mosquitto and a worker subprocess, which reads what the tests commit.
pytestmark = [pytest.mark.slow, pytest.mark.committed]

WORKER_USER, WORKER_PASSWORD = "ingest", "worker-pw"


def production_conf(broker: Broker, passwd, acl) -> str:
    """devices/mosquitto/mosquitto.conf with this test's port, files and log."""
    text = (ROOT / "devices" / "mosquitto" / "mosquitto.conf").read_text()
    replacements = {
        r"^listener 1883$": f"listener {broker.port} 127.0.0.1",
        r"^password_file .*$": f"password_file {passwd}",
        r"^acl_file .*$": f"acl_file {acl}",
        r"^persistence_location .*$": f"persistence_location {broker.dir}/",
        r"^log_dest syslog$": "",
    }
    for pattern, line in replacements.items():
        text, n = re.subn(pattern, line, text, flags=re.MULTILINE)
        assert n == 1, f"mosquitto.conf has no line {pattern}"
    return text + "\n" + "\n".join(broker.common()) + "\n"


def connack(port: int, username: str | None, password: str | None) -> str:
    """The reason the broker gives a client logging in with these credentials."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    answer: list[str] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        answer.append(str(reason_code))
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


@pytest.fixture
def secured(runner, make, client, tmp_path):
    """Two shelf scanners and a disabled one; password and ACL files written by the CLI; a
    Mosquitto on the production configuration using them."""
    merchant = make.merchant()
    serials = make.codes(make.batch(make.product(merchant)), 2)
    a, b, gone = (make.device("shelf_scanner", merchant) for _ in range(3))
    resp = client.post(f"/api/v1/devices/{gone[0]}/disable", headers=make.auth("admin"))
    assert resp.status_code == 200
    passwd, acl = tmp_path / "trace.passwd", tmp_path / "trace.acl"
    args = ["devices", "mqtt-auth", "--passwd", str(passwd), "--acl", str(acl)]
    result = runner.invoke(
        args=[*args, "--worker-user", WORKER_USER, "--worker-password", WORKER_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    users = [line.split(":")[0] for line in passwd.read_text().splitlines()]
    assert sorted(users) == sorted([WORKER_USER, a[0], b[0]])  # not the disabled one
    broker = Broker(tmp_path / "mosquitto")
    broker.conf.write_text(production_conf(broker, passwd, acl))
    broker.start()
    yield {"broker": broker, "a": a, "b": b, "gone": gone, "serials": serials}
    broker.stop()


def test_only_enabled_devices_and_the_worker_may_log_in(secured):
    """Do the generated passwords let in each enabled device and the worker, and no one else
    (wrong secret, disabled device, anonymous)?"""
    port = secured["broker"].port
    (a, secret_a), (gone, secret_gone) = secured["a"], secured["gone"]
    assert connack(port, a, secret_a) == "Success"
    assert connack(port, WORKER_USER, WORKER_PASSWORD) == "Success"
    assert connack(port, a, "0" * 64) == "Not authorized"
    assert connack(port, gone, secret_gone) == "Not authorized"
    assert connack(port, None, None) == "Not authorized"


def test_a_device_reaches_only_its_own_topics(secured, start_worker):
    """Through the generated ACL, does a device publish to its own events topic and get its
    acks, while a publish to another device's events topic is refused (PUBACK "Not
    authorized") and another device's acks never reach it?"""
    broker = secured["broker"]
    start_worker(mqtt_url=f"mqtt://{WORKER_USER}:{WORKER_PASSWORD}@127.0.0.1:{broker.port}")
    (a_id, a_secret), (b_id, b_secret) = secured["a"], secured["b"]
    a = Device(broker.port, a_id, a_secret, username=a_id, password=a_secret)
    b = Device(broker.port, b_id, b_secret, username=b_id, password=b_secret)
    try:
        t = now() - timedelta(minutes=5)
        own = a.event("shelved", t, code=secured["serials"][0])
        assert a.puback[a.publish(own).mid] == 0  # Success
        assert a.wait_acks([own["event_id"]])[own["event_id"]] == ["accepted"]

        # Mosquitto 2.0.11 answers a forbidden QoS 1 publish with PUBACK 135 and drops it
        forged = a.event("shelved", t, code=secured["serials"][1])
        assert a.puback[a.publish(forged, topic=protocol.topic_events(b_id)).mid] == 135

        # ... and grants the subscription to another device's acks (SUBACK "Granted QoS 1")
        # but never delivers a message on it: the read ACL is checked per message.
        granted = threading.Event()
        a.client.on_subscribe = lambda c, u, mid, codes, props: granted.set()
        a.client.subscribe(protocol.topic_acks(b_id), qos=1)
        assert granted.wait(10)
        theirs = b.event("shelved", t, code=secured["serials"][1])
        b.publish(theirs)
        assert b.wait_acks([theirs["event_id"]])[theirs["event_id"]] == ["accepted"]
        # a round trip on a's connection: anything the broker sent a before is in by now
        granted.clear()
        a.client.subscribe(protocol.topic_commands(a_id), qos=1)
        assert granted.wait(10)
        assert theirs["event_id"] not in a.acks
        assert forged["event_id"] not in b.acks and forged["event_id"] not in a.acks
        assert list(a.acks) == [own["event_id"]]
    finally:
        a.close()
        b.close()
