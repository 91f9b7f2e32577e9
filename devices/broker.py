"""A private MQTT broker for the demo and the tests: Debian's ``mosquitto``, run as a child
process on a loopback port with a generated configuration, so `make run` needs no broker
installed or configured by hand.

Why mosquitto and not a pure-Python broker: the ingest worker and the devices speak MQTT 5
with QoS 1, manual acknowledgements and a shared subscription (``$share/trace-ingest/...``).
``amqtt`` (0.12) refuses MQTT 5 connections outright, and under 3.1.1 it grants a ``$share/``
subscription as a literal topic and never delivers to it: a demo on it would silently ingest
nothing. mosquitto 2 is a real broker (the one production may use too), one Debian package.

    python -m devices.broker --port 1883       # in the foreground until Ctrl-C / SIGTERM;
                                                # SIGHUP re-reads --password-file/--acl-file

    with start_broker() as broker:              # in code: a free port, stopped on exit
        os.environ["MQTT_URL"] = broker.url
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: Where Debian puts the binary (/usr/sbin is not on every user's PATH).
DEBIAN_BINARY = "/usr/sbin/mosquitto"


class BrokerError(RuntimeError):
    """The broker could not be started."""


def find_mosquitto() -> str | None:
    """The mosquitto binary, or None when the package is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def config_text(
    port: int,
    host: str = "127.0.0.1",
    *,
    password_file: str | None = None,
    acl_file: str | None = None,
) -> str:
    """The mosquitto.conf of a private broker: one listener, nothing kept on disk.

    Without a password file it is open to anyone who can reach ``host`` (keep it on
    loopback); with one, every client must log in (devices: id and secret), and ``acl_file``
    says who may publish and subscribe where (``flask --app wsgi devices mqtt-auth``).
    """
    lines = [
        f"listener {port} {host}",
        "protocol mqtt",
        f"allow_anonymous {'false' if password_file else 'true'}",
        "persistence false",
        # Acks for a device that is slow to read them are kept, up to a point.
        "max_queued_messages 10000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    if password_file:
        lines.append(f"password_file {password_file}")
    if acl_file:
        lines.append(f"acl_file {acl_file}")
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the broker gets SIGTERM if the process that started it dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _broker_user() -> tuple[int, int] | None:
    """(uid, gid) mosquitto drops to when started as root, or None when it does not."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        entry = pwd.getpwnam("mosquitto")
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


def _private_copy(source: str | None, workdir: Path, name: str) -> str | None:
    """The path the broker reads ``source`` from. Started as root, mosquitto reads its
    password and ACL files as the `mosquitto` user: give it a copy only that user can read."""
    if source is None:
        return None
    user = _broker_user()
    if user is None:
        return str(Path(source).resolve())
    target = workdir / name
    shutil.copyfile(source, target)
    os.chown(target, *user)
    target.chmod(0o600)
    return str(target)


@dataclass
class Broker:
    """A running private broker. ``stop()`` (or leaving the ``with`` block) ends it."""

    process: subprocess.Popen
    host: str
    port: int
    workdir: Path
    log_path: Path | None
    password_file: str | None = None
    acl_file: str | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def reload(self) -> None:
        """Re-read the password and ACL files (after devices were registered or disabled)."""
        _private_copy(self.password_file, self.workdir, "passwords")
        _private_copy(self.acl_file, self.workdir, "acl")
        self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_broker(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    password_file: str | None = None,
    acl_file: str | None = None,
    log_to_stderr: bool = False,
    timeout: float = 10.0,
) -> Broker:
    """Start mosquitto on ``host:port`` (0: a free port) and wait until it accepts
    connections. Raises :class:`BrokerError` with the broker's own words when it cannot."""
    binary = find_mosquitto()
    if binary is None:
        raise BrokerError(
            "mosquitto is not installed: `apt-get install mosquitto` "
            "(scripts/bootstrap.sh mosquitto does it), or set MQTT_URL to a broker"
        )
    port = port or free_port(host)
    if _listening(host, port):
        raise BrokerError(f"something already listens on {host}:{port}")
    workdir = Path(tempfile.mkdtemp(prefix="trace-mqtt-"))
    # mosquitto started as root drops to the `mosquitto` user: let it read its config.
    workdir.chmod(0o755)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        config_text(
            port,
            host,
            password_file=_private_copy(password_file, workdir, "passwords"),
            acl_file=_private_copy(acl_file, workdir, "acl"),
        ),
        encoding="utf-8",
    )
    conf.chmod(0o644)
    log_path = None if log_to_stderr else workdir / "mosquitto.log"
    log_file = None if log_path is None else log_path.open("wb")
    try:
        process = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=log_file if log_file else None,
            stderr=log_file if log_file else None,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        if log_file:
            log_file.close()
    broker = Broker(process, host, port, workdir, log_path, password_file, acl_file)
    deadline = time.monotonic() + timeout
    while not _listening(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            said = broker.log().strip()
            broker.stop()
            raise BrokerError(
                f"mosquitto did not start on {host}:{port}" + (f": {said}" if said else "")
            )
        time.sleep(0.05)
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devices.broker",
        description="Run a private MQTT broker (mosquitto) until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883, help="0: a free port")
    parser.add_argument("--password-file", help="mosquitto password file (devices log in)")
    parser.add_argument("--acl-file", help="mosquitto ACL file")
    args = parser.parse_args(argv)
    try:
        broker = start_broker(
            args.port,
            args.host,
            password_file=args.password_file,
            acl_file=args.acl_file,
            log_to_stderr=True,
        )
    except BrokerError as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    signal.signal(signal.SIGHUP, lambda *_: broker.reload())  # re-read passwords and ACL
    print(
        f"broker: mosquitto (pid {broker.process.pid}) on {broker.url}", file=sys.stderr, flush=True
    )
    try:
        while not done.wait(0.5):
            if not broker.running():
                print("broker: mosquitto exited", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
