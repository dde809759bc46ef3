"""Issue 11, the broker's part: the REAL daemon (`edge-slider run --simulate` as a subprocess)
against a real Mosquitto, attacked the way a broker or another client can.

* a retained command waiting on the broker before the daemon starts: it must not run (nothing is
  deleted), it gets one refusal reply and one log line, and the device keeps obeying live orders;
* a second client with the device's client id: ONE clear warning, not a "connection lost" every
  second; and with the example broker config (deploy/mosquitto/mosquitto.conf) the device stays on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.teach.store import ExampleStore
from tests.brokers import USERS, Watcher, anon_broker, example_broker, wait_retained  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parent.parent
TAKEOVER = "another client is using client id"

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


class Daemon:
    """`python -m edge ... run --simulate`, its output in a log file; stopped by its PID."""

    def __init__(self, tmp: Path, name: str, broker, state: Path, extra: str = ""):
        self.log_path = tmp / f"{name}.log"
        conf = tmp / f"{name}.toml"
        conf.write_text(f'[device]\nid = "{name}"\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n{extra}'
                        '[slider]\ndetach_after_s = 0.0\n')
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir", str(state),
                                      "run", "--simulate"], cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None, f"daemon exited: {self.text()[-1500:]}"
            assert time.monotonic() < deadline, f"no {needle!r} in the log within {timeout} s: {self.text()[-1500:]}"
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self._log.close()
        return rc


def _client(broker, client_id: str = "", **auth):
    c = broker.client(client_id, **auth)
    c.reconnect_delay_set(1, 1)
    c.connect(broker.host, broker.port, keepalive=10)
    c.loop_start()
    return c


def _close(c) -> None:
    c.disconnect()
    c.loop_stop()


def test_retained_command_waiting_before_start_is_refused_not_run(tmp_path, anon_broker):
    state = tmp_path / "state"
    subprocess.run([sys.executable, "-m", "edge", "--state-dir", str(state), "demo"], cwd=REPO, check=True,
                   capture_output=True, timeout=120)                 # examples + a model: it listens
    with ExampleStore(state / "examples.sqlite") as store:
        before = store.counts()
    assert before.get("noise", 0) > 0
    base = "edge-slider/ret"
    pub = _client(anon_broker)
    pub.publish(f"{base}/cmd/examples/delete", json.dumps({"label": "noise"}), qos=1, retain=True).wait_for_publish(5)
    w = Watcher(anon_broker, [f"{base}/cmd/result", f"{base}/event"])
    daemon = Daemon(tmp_path, "ret", anon_broker, state)
    try:
        refusal = w.wait_for(f"{base}/cmd/result", lambda p: p["command"] == "examples/delete", timeout=30)
        assert refusal["ok"] is False and "retained" in refusal["error"], refusal
        assert f"mosquitto_pub -r -n -t {base}/cmd/examples/delete" in refusal["error"]
        mark = len(w.messages)
        pub.publish(f"{base}/cmd/threshold", json.dumps({"value": 0.7}), qos=1)
        ok = w.wait_for(f"{base}/cmd/result", lambda p: p["command"] == "threshold", timeout=10, start=mark)
        assert ok == {"command": "threshold", "ok": True, "result": {"threshold": 0.7}}
        w.wait_for(f"{base}/event", lambda p: p["kind"] == "decision", timeout=20, start=mark)   # still listening
        assert daemon.proc.poll() is None
    finally:
        rc = daemon.stop()
        _close(pub)
        w.close()
    assert rc == 0, daemon.text()[-1500:]
    deletes = [p for p in w.on(f"{base}/cmd/result") if p["command"] == "examples/delete"]
    assert len(deletes) == 1, deletes
    assert not [p for p in w.on(f"{base}/event") if p.get("kind") == "deleted"]
    lines = [ln for ln in daemon.text().splitlines() if "retained command" in ln]
    assert len(lines) == 1 and "WARNING" in lines[0] and "mosquitto_pub -r -n -t" in lines[0], lines
    with ExampleStore(state / "examples.sqlite") as store:
        assert store.counts() == before                                   # nothing deleted


def test_second_client_with_the_same_client_id_is_one_warning(tmp_path, anon_broker):
    """No protection on this broker: the intruder (reconnecting every second) and the device knock
    each other off; the device says so once, with the fix, and keeps working."""
    daemon = Daemon(tmp_path, "dev-a", anon_broker, tmp_path / "state")
    intruder = None
    try:
        daemon.wait_log("MQTT: connected", 30)
        intruder = _client(anon_broker, "edge-slider-dev-a")
        daemon.wait_log(TAKEOVER, 20)
        time.sleep(3.0)                                                   # the fight goes on
        assert daemon.proc.poll() is None
    finally:
        if intruder is not None:
            _close(intruder)
        rc = daemon.stop()
    text = daemon.text()
    assert rc == 0, text[-1500:]
    warnings = [ln for ln in text.splitlines() if TAKEOVER in ln]
    assert len(warnings) == 1, warnings
    assert "edge-slider-dev-a" in warnings[0] and "use_username_as_clientid" in warnings[0]
    lost = [ln for ln in text.splitlines() if "connection lost" in ln and "WARNING" in ln]
    assert len(lost) <= 3, f"{len(lost)} 'connection lost' warnings: {lost}"


def test_example_broker_config_keeps_device_a_connected(tmp_path, example_broker):
    """Device B's credentials with device A's client id, two real daemons, the example config:
    the broker makes B's client id its user name, so A is never knocked off."""
    secrets = {}
    for user in ("dev-a", "dev-b"):
        secrets[user] = tmp_path / f"{user}.pw"
        secrets[user].write_text(USERS[user] + "\n")
    admin = {"username": "admin", "password": USERS["admin"]}
    w = Watcher(example_broker, ["edge-slider/dev-a/status", "edge-slider/dev-b/status"], **admin)
    a = Daemon(tmp_path, "dev-a", example_broker, tmp_path / "a",
               f'username = "dev-a"\npassword_file = "{secrets["dev-a"]}"\n')
    b = None
    try:
        w.wait_for("edge-slider/dev-a/status", lambda p: p == "online", timeout=30)
        b = Daemon(tmp_path, "dev-b", example_broker, tmp_path / "b",
                   f'username = "dev-b"\npassword_file = "{secrets["dev-b"]}"\nclient_id = "edge-slider-dev-a"\n')
        w.wait_for("edge-slider/dev-b/status", lambda p: p == "online", timeout=30)
        time.sleep(4.0)                    # without the fix A is knocked off within a second or two
        assert wait_retained(example_broker, "edge-slider/dev-a/status", **admin) == "online"
    finally:
        rcs = [d.stop() for d in (b, a) if d is not None]
        w.close()
    assert rcs == [0, 0], a.text()[-1000:]
    a_status = w.on("edge-slider/dev-a/status")
    assert a_status[0] == "online" and "offline" not in a_status[:-1], a_status  # offline only at the end
    assert "connection lost" not in a.text() and TAKEOVER not in a.text(), a.text()[-1500:]
    assert "connection lost" not in b.text(), b.text()[-1500:]
