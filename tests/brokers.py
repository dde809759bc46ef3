"""Real Mosquitto brokers for tests: anonymous, password + the example ACL, and TLS.

Use with ``from tests.brokers import *``. Each broker runs ``mosquitto -c CONF`` on a free
127.0.0.1 port and is stopped by its PID. Files live in a mkdtemp dir chmod 755 with files 644:
started as root, mosquitto drops to user ``mosquitto`` and must still read them (pytest's
tmp_path is 700). Logs go to stderr (a file in a temp dir would not be writable after the drop).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.tooling.broker import free_port, wait_listening

REPO = Path(__file__).resolve().parent.parent
ACL_EXAMPLE = REPO / "deploy" / "mosquitto" / "acl"
CONF_EXAMPLE = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
#: Options of the example config that name the install (ports, paths, logging, persistence):
#: the example_broker fixture replaces them with its own; every other line is used as written.
LOCAL_OPTIONS = ("listener", "persistence", "persistence_location", "password_file", "acl_file", "log_dest",
                 "log_type", "cafile", "certfile", "keyfile", "tls_version")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

#: Users of the password broker: two devices (user name = device id, as the ACL expects) and admin.
USERS = {"dev-a": "pass-a", "dev-b": "pass-b", "admin": "admin-pass"}

__all__ = ["Broker", "Watcher", "USERS", "free_port", "make_dir", "wait_retained", "anon_broker", "auth_broker",
           "tls_broker", "tls_files", "mosquitto_available", "example_broker", "example_conf_lines"]


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).exists()


def make_dir(prefix: str = "mosq-") -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def _readable(path: Path) -> Path:
    path.chmod(0o644)
    return path


@dataclass
class Broker:
    """One mosquitto process; :meth:`stop` / :meth:`start` again on the same port (restart tests)."""

    dir: Path
    conf_lines: list[str]
    port: int = field(default_factory=free_port)
    tls: bool = False
    proc: subprocess.Popen | None = None
    host: str = "127.0.0.1"

    @property
    def conf(self) -> Path:
        return self.dir / "mosquitto.conf"

    def start(self, timeout: float = 5.0) -> "Broker":
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr", "log_type error", "log_type warning",
                 "persistence false", *self.conf_lines]
        return self._spawn(lines, timeout)

    def _spawn(self, lines: list[str], timeout: float) -> "Broker":
        self.conf.write_text("\n".join(lines) + "\n")
        _readable(self.conf)
        # NOTE: stderr to a file opened by us (not a pipe nobody drains, which could stall the broker).
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_listening(self.proc, self.host, self.port, timeout, self.log_text)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_text(self) -> str:
        try:
            return (self.dir / "stderr.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def client(self, client_id: str = "", *, username: str | None = None, password: str | None = None,
               v5: bool = True, ca: Path | None = None) -> mqtt.Client:
        """A paho client for this broker (not connected)."""
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{time.monotonic_ns()}",
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        if username is not None:
            c.username_pw_set(username, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca))
        return c


# ---------------------------------------------------------------------- a subscriber that records
class Watcher:
    """Subscribes to topics and records every message; ``wait_for`` blocks until one matches."""

    def __init__(self, broker: Broker, topics: list[str], **auth: Any):
        self.messages: list[tuple[str, Any, Any]] = []
        self._cond = threading.Condition()
        self.client = broker.client(**auth)
        self.client.on_message = self._on_message
        self._topics = topics
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            payload = json.loads(msg.payload.decode())
        except ValueError:
            payload = msg.payload.decode(errors="replace")
        with self._cond:
            self.messages.append((msg.topic, payload, msg))
            self._cond.notify_all()

    def wait_for(self, topic: str, pred: Callable[[Any], bool] = lambda p: True, timeout: float = 10.0,
                 start: int = 0) -> Any:
        """The first message (from index ``start``) on ``topic`` whose payload satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, p, _ in self.messages[start:]:
                    if t == topic and _safe(pred, p):
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(t, p) for t, p, _ in self.messages[-5:]]
                    raise AssertionError(f"no matching message on {topic} within {timeout} s; last: {seen}")
                self._cond.wait(left)

    def on(self, topic: str) -> list[Any]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _safe(pred: Callable[[Any], bool], payload: Any) -> bool:
    try:
        return bool(pred(payload))
    except Exception:  # noqa: BLE001 - a predicate on a payload of another shape is just "no"
        return False


def wait_retained(broker: Broker, topic: str, pred: Callable[[Any], bool] = lambda p: True,
                  timeout: float = 10.0, **auth: Any) -> Any:
    """Subscribe afresh (so retained messages arrive) and wait for a matching one on ``topic``."""
    w = Watcher(broker, [topic], **auth)
    try:
        return w.wait_for(topic, pred, timeout)
    finally:
        w.close()


# ---------------------------------------------------------------------- fixtures
def _broker(conf_lines: list[str], prefix: str) -> Iterator[Broker]:
    if not mosquitto_available():
        pytest.fail("mosquitto is not installed: deploy/dev.sh installs it (apt mosquitto)")
    d = make_dir(prefix)
    b = Broker(d, conf_lines).start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def anon_broker() -> Iterator[Broker]:
    """A fresh anonymous broker per test (retained messages never leak between tests)."""
    yield from _broker(["allow_anonymous true"], "mosq-anon-")


def _users_and_acl(d: Path) -> tuple[Path, Path]:
    """A password file for USERS and a copy of deploy/mosquitto/acl, readable by user mosquitto."""
    pw = d / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        args = [MOSQUITTO_PASSWD, "-b"] + (["-c"] if i == 0 else []) + [str(pw), user, password]
        subprocess.run(args, check=True, capture_output=True)
    _readable(pw)
    return pw, _readable(Path(shutil.copy(ACL_EXAMPLE, d / "acl")))


@pytest.fixture(scope="module")
def auth_broker() -> Iterator[Broker]:
    """Passwords for USERS and deploy/mosquitto/acl, anonymous refused."""
    if not mosquitto_available():
        pytest.fail("mosquitto is not installed: deploy/dev.sh installs it (apt mosquitto)")
    d = make_dir("mosq-auth-")
    pw, acl = _users_and_acl(d)
    b = Broker(d, ["allow_anonymous false", f"password_file {pw}", f"acl_file {acl}"]).start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(d, ignore_errors=True)


def example_conf_lines() -> list[str]:
    """deploy/mosquitto/mosquitto.conf without its comments and its LOCAL_OPTIONS."""
    lines = []
    for raw in CONF_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and line.split()[0] not in LOCAL_OPTIONS:
            lines.append(line)
    return lines


@pytest.fixture
def example_broker() -> Iterator[Broker]:
    """deploy/mosquitto/mosquitto.conf as shipped (its security options, ACL and user convention),
    on a free port with this test's password file and no persistence."""
    if not mosquitto_available():
        pytest.fail("mosquitto is not installed: deploy/dev.sh installs it (apt mosquitto)")
    d = make_dir("mosq-example-")
    pw, acl = _users_and_acl(d)
    b = Broker(d, [*example_conf_lines(), f"password_file {pw}", f"acl_file {acl}"]).start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(d, ignore_errors=True)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_files() -> Iterator[dict[str, Path]]:
    """A throwaway CA + server cert (SAN IP:127.0.0.1), and a second, unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    d = make_dir("mosq-tls-")
    for ca in ("ca", "wrong-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=edge-slider test {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    for f in d.iterdir():
        _readable(f)
    try:
        yield {"dir": d, "ca": d / "ca.crt", "wrong_ca": d / "wrong-ca.crt", "cert": d / "server.crt",
               "key": d / "server.key"}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_broker(tls_files) -> Iterator[Broker]:
    """Anonymous, TLS only."""
    yield from _broker(["allow_anonymous true", f"cafile {tls_files['ca']}", f"certfile {tls_files['cert']}",
                        f"keyfile {tls_files['key']}"], "mosq-tls-broker-")
