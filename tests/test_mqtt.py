"""MQTT telemetry and control against a real Mosquitto (tests/brokers.py), plus fast unit checks.

Broker tests are marked ``mqtt`` (``-m "not mqtt"`` skips them). Scenarios: a simulated device
taught and driven entirely over cmd topics; the last will after kill -9; passwords and the
example ACL (MQTT v5 reason codes); TLS with the right and a wrong CA; a broker restart while the
device listens; and hypothesis fuzzing of every command topic.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.audio import synth
from edge.config import SAMPLE_RATE, Config, MqttSettings
from tests.trained import teach_by_buttons
from edge.tooling.demo import TEST_SCENE, TRAIN_SCENES, feed, press_button, wait_training
from edge.errors import StateError
from edge.events import DecisionMade, ModeChanged, PredictionMade
from edge.service import RunOptions, Service
from edge.telemetry import commands, homeassistant, messages
from edge.telemetry.messages import Topics
from edge.telemetry.mqtt import MqttTelemetry
from edge.telemetry.outqueue import Outgoing, OutQueue
from tests.brokers import *  # noqa: F401,F403 - fixtures

REPO = Path(__file__).resolve().parent.parent
LABELS = ("left", "right", "noise")


# ---------------------------------------------------------------------- helpers
class FakeControl:
    """DeviceControl without a device: records calls, answers at once."""

    labels = LABELS

    def __init__(self, refuse: bool = False):
        self.calls: list[tuple] = []
        self.refuse = refuse
        self._lock = threading.Lock()

    def _rec(self, *call: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(call)
        if self.refuse:
            raise StateError("refused for the test")
        return {"call": call[0]}

    def collect_start(self, label, source="mqtt"):
        return self._rec("collect_start", label)

    def collect_stop(self, label):
        return self._rec("collect_stop", label)

    def collect_for(self, label, seconds, source="mqtt"):
        return self._rec("collect_for", label, seconds)

    def train(self):
        return self._rec("train")

    def set_listening(self, on):
        return self._rec("set_listening", on)

    def set_position(self, value):
        return self._rec("set_position", value)

    def set_threshold(self, value):
        return self._rec("set_threshold", value)

    def delete_examples(self, label=None, session=None):
        return self._rec("delete_examples", label, session)

    def move_session(self, session, label):
        return self._rec("move_session", session, label)

    def rollback_model(self):
        return self._rec("rollback_model")

    def false_move(self, source="mqtt"):
        return self._rec("false_move", source)

    def snapshot(self):
        return {"mode": "idle", "collecting": None, "labels": {lb: 0 for lb in LABELS},
                "model": {"version": None, "val_accuracy": None, "runtime": None}, "position": 5.0,
                "threshold": 0.75, "decision_mode": "per_sound", "last_label": None,
                "audio": {"overruns": 0}, "version": "test"}


def settings_for(broker, **kw) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port, **kw)


def device_config(tmp_path: Path, broker, device_id: str = "dev1", **mqtt_kw) -> Config:
    cfg = Config().replace("device", id=device_id, state_dir=str(tmp_path / "state"))
    cfg = cfg.replace("mqtt", enabled=True, host=broker.host, port=broker.port, **mqtt_kw)
    return cfg.replace("slider", detach_after_s=0.0)


def pump_until(service: Service, cond, timeout: float = 10.0, what: str = "condition") -> Any:
    """Keep the engine's call queue moving (this thread owns the engine) until cond() is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.engine.poll()
        value = cond()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def find(watcher: Watcher, topic: str, pred, start: int = 0) -> Any:
    with watcher._cond:
        for t, p, _ in watcher.messages[start:]:
            if t == topic:
                try:
                    if pred(p):
                        return p
                except Exception:  # noqa: BLE001
                    pass
    return None


def command(service: Service, client: mqtt.Client, watcher: Watcher, name: str, args: dict) -> dict:
    """Publish one command and pump the engine until its reply is on cmd/result."""
    topics = service.telemetry.topics
    start = len(watcher.messages)
    client.publish(topics.cmd(name), json.dumps(args), qos=1)
    return pump_until(service, lambda: find(watcher, topics.cmd_result, lambda p: p["command"] == name, start),
                      what=f"reply to {name}")


def connect(broker, **auth) -> mqtt.Client:
    c = broker.client(**auth)
    c.connect(broker.host, broker.port, keepalive=10)
    c.loop_start()
    return c


def close(*clients: mqtt.Client) -> None:
    for c in clients:
        c.disconnect()
        c.loop_stop()


def connack(broker, **auth) -> int:
    """The CONNACK reason code a v5 client gets."""
    got: list = []
    ev = threading.Event()
    c = broker.client(**auth)
    c.on_connect = lambda cl, u, flags, rc, props: (got.append(rc), ev.set())
    try:
        c.connect(broker.host, broker.port, keepalive=10)
        c.loop_start()
        assert ev.wait(5), "no CONNACK"
    finally:
        close(c)
    return got[0].value


@pytest.fixture(scope="module")
def trained_state(tmp_path_factory) -> Path:
    """A state dir with a trained model (taught with the mock buttons, no MQTT)."""
    return teach_by_buttons(tmp_path_factory.mktemp("trained"))


# ---------------------------------------------------------------------- unit: queue, rate limit, discovery
def test_out_queue_drops_oldest_prediction_first():
    q = OutQueue(4)
    q.put(Outgoing("p", b"p1", qos=0), prediction=True)
    q.put(Outgoing("e", b"e1"))
    q.put(Outgoing("p", b"p2", qos=0), prediction=True)
    q.put(Outgoing("e", b"e2"))
    q.put(Outgoing("e", b"e3"))  # full: p1 goes
    q.put(Outgoing("e", b"e4"))  # full: p2 goes
    q.put(Outgoing("p", b"p3", qos=0), prediction=True)  # full of events: the new prediction is dropped
    assert [q.get().payload for _ in range(4)] == [b"e1", b"e2", b"e3", b"e4"]
    assert q.get() is None and q.dropped_predictions == 3 and q.dropped_other == 0


def test_predictions_rate_limited_but_label_changes_go_out():
    tel = MqttTelemetry(MqttSettings(prediction_interval_s=10.0), "d", FakeControl(), "t")
    for label in ("left", "left", "left", "right", "right", "left"):
        tel.on_event(PredictionMade(0.0, label, 0.9, {"left": 0.9}, -20.0))
    tel.on_event(ModeChanged("listening"))
    topics = [q.topic for q in iter(tel.out.get, None)]
    assert topics.count(tel.topics.prediction) == 3 and tel.topics.event in topics


def test_device_discovery_config_is_what_current_home_assistant_wants():
    topics = Topics("edge-slider/dev1", "homeassistant")
    assert homeassistant.discovery_topic(topics, "dev1") == "homeassistant/device/dev1/config"
    cfg = homeassistant.device_config(topics, "dev1", "1.0", LABELS)
    assert cfg["origin"] == {"name": "edge-slider", "sw_version": "1.0"}
    assert cfg["device"]["identifiers"] == ["edge-slider-dev1"] and cfg["device"]["name"] == "Edge slider dev1"
    assert cfg["availability_topic"] == "edge-slider/dev1/status" and cfg["state_topic"] == "edge-slider/dev1/state"
    cmps = cfg["cmps"]
    pos = cmps["position"]
    assert (pos["p"], pos["min"], pos["max"], pos["step"], pos["mode"]) == ("number", 0, 10, 0.1, "slider")
    assert pos["command_topic"] == "edge-slider/dev1/cmd/position"
    assert pos["command_template"] == '{"value": {{ value }}}'
    for cid, c in cmps.items():
        assert "object_id" not in c, cid                      # deprecated in HA 2025.10, gone in 2026.4
        assert c["default_entity_id"] == f"{c['p']}.edge_slider_dev1_{cid}"
        assert c["icon"].startswith("mdi:"), cid
        assert not c["name"].lower().startswith(("edge", "slider")), c["name"]  # has_entity_name: no stutter
    assert len({c["unique_id"] for c in cmps.values()}) == len(cmps)
    # listening is a switch (training is a mode, not "listening off"), read from the snapshot's key
    assert cmps["listening"]["p"] == "switch" and "listening" in cmps["listening"]["value_template"]
    assert cmps["mode"]["device_class"] == "enum" and cmps["mode"]["options"] == list(homeassistant.MODES)
    assert cmps["last_label"]["options"] == [*LABELS, "none"]
    assert cmps["val_accuracy"]["unit_of_measurement"] == "%"
    assert cmps["sound"]["p"] == "event" and cmps["sound"]["state_topic"] == "edge-slider/dev1/event"
    assert cmps["sound"]["event_types"] == [*LABELS, "refused", "error"]
    for cid in ("val_accuracy", "false_moves", "model_version", "audio_level", "audio_overruns", "uptime",
                *(f"examples_{lb}" for lb in LABELS)):
        assert cmps[cid]["entity_category"] == "diagnostic", cid
    assert {"button", "number", "switch", "sensor", "event"} == {c["p"] for c in cmps.values()}
    # the default id gives no "Edge slider edge-slider"
    assert homeassistant.device_name("edge-slider") == "Edge slider"
    assert homeassistant.device_config(topics, "edge-slider", "1", LABELS)["cmps"]["position"]["default_entity_id"] \
        == "number.edge_slider_position"
    # a removed component is sent as its platform only, HA's way to delete it
    gone = homeassistant.device_config(topics, "dev1", "1.0", LABELS, removed={"examples_old": "sensor"})
    assert gone["cmps"]["examples_old"] == {"p": "sensor"}


def _render(template: str, value_json: Any) -> str:
    """Render an HA value_template with plain Jinja2 (HA's own filters are not needed by ours)."""
    import jinja2
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.tests["number"] = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    return env.from_string(template).render(value_json=value_json)


def test_ha_templates_render_for_every_event_kind_and_state():
    topics = Topics("edge-slider/dev1", "homeassistant")
    cmps = homeassistant.device_config(topics, "dev1", "1.0", LABELS)["cmps"]
    sound = cmps["sound"]["value_template"]
    assert json.loads(_render(sound, {"kind": "decision", "label": "left", "position": 4.9})) == \
        {"event_type": "left", "position": 4.9}
    refused = json.loads(_render(sound, {"kind": "refused", "request": "listen on", "reason": 'no "model"'}))
    assert refused == {"event_type": "refused", "request": "listen on", "reason": 'no "model"'}
    assert json.loads(_render(sound, {"kind": "error", "where": "audio", "message": "gone"}))["event_type"] == "error"
    assert _render(sound, {"kind": "collected", "label": "left"}) == ""     # HA ignores an empty event payload
    snap = {"mode": "training", "listening": True, "labels": {lb: 3 for lb in LABELS}, "position": 5.0,
            "threshold": 0.7, "last_label": None, "uptime_s": 12.5, "problems": {},
            "model": {"version": 2, "val_accuracy": 0.9234, "false_per_min_estimate": 0.1},
            "audio": {"level_dbfs": -30.0, "overruns": 0}}
    assert _render(cmps["listening"]["value_template"], snap) == "ON"
    assert _render(cmps["val_accuracy"]["value_template"], snap) == "92.3"
    assert _render(cmps["last_label"]["value_template"], snap) == "none"
    assert _render(cmps["problem"]["value_template"], snap) == "none"
    assert _render(cmps["problem"]["value_template"], {**snap, "problems": {"mic": "no audio for 5 s"}}) \
        == "no audio for 5 s"
    snap["model"] = {"version": None, "val_accuracy": None, "false_per_min_estimate": None}
    assert _render(cmps["val_accuracy"]["value_template"], snap) == "None"   # HA: unknown
    assert _render(cmps["model_version"]["value_template"], snap) == "None"


@pytest.mark.parametrize("name,payload,needle", [
    ("position", b'{"value": true}', "'value' must be a number"),
    ("position", b'{"value": 11}', "out of range"),
    ("position", b'{"value": NaN}', "NaN is not allowed"),
    ("threshold", b'{"value": -0.1}', "out of range"),
    ("listen", b'{"on": 1}', "'on' must be true or false"),
    ("collect", b'{"label": "up", "action": "start"}', "unknown label"),
    ("collect", b'{"label": "left"}', "exactly one of 'action' or 'seconds'"),
    ("collect", b'{"label": "left", "seconds": 0}', "out of range"),
    ("collect", b'{"label": "left", "action": "go"}', "'action' must be"),
    ("train", b'{"now": 1}', "unknown field \"now\""),
    ("examples/delete", b'{}', "exactly one of 'label' or 'session'"),
    ("fly", b"{}", "unknown command"),
    ("train", b"[1]", "must be a JSON object"),
    ("train", b"\xff", "not UTF-8"),
    ("train", b"{" * 10, "not valid JSON"),
    ("train", b" " * 5000, "the limit is 4096"),
    # a lone surrogate is valid JSON but not text: SQLite could not store it ("internal error" + traceback)
    ("examples/delete", b'{"session": "\\udc80"}', "field 'session' is not valid text"),
])
def test_command_validation_errors_name_the_problem(name, payload, needle):
    control = FakeControl()
    reply = commands.handle(name, payload, control, 4096)
    assert reply["ok"] is False and needle in reply["error"], reply
    assert "\n" not in reply["error"] and control.calls == []


def test_absurd_nesting_is_an_error_not_a_crash():
    reply = commands.handle("train", b"[" * 200_000, FakeControl(), 1_000_000)
    assert reply["ok"] is False and "not valid JSON" in reply["error"]


def test_valid_commands_dispatch():
    control = FakeControl()
    cases = [("collect", {"label": "left", "action": "start"}, ("collect_start", "left")),
             ("collect", {"label": "left", "action": "stop"}, ("collect_stop", "left")),
             ("collect", {"label": "right", "seconds": 2}, ("collect_for", "right", 2.0)),
             ("train", {}, ("train",)), ("listen", {"on": False}, ("set_listening", False)),
             ("position", {"value": 10}, ("set_position", 10.0)), ("threshold", {"value": 0}, ("set_threshold", 0.0)),
             ("examples/delete", {"session": "s1"}, ("delete_examples", None, "s1")),
             ("examples/move", {"session": "s1", "label": "right"}, ("move_session", "s1", "right")),
             ("model/rollback", {}, ("rollback_model",)), ("false_move", {}, ("false_move", "mqtt"))]
    for name, args, call in cases:
        reply = commands.handle(name, json.dumps(args).encode(), control, 4096)
        assert reply["ok"] is True and control.calls[-1] == call, (name, reply)
    assert commands.handle("train", b"", control, 4096)["ok"]  # empty payload = {}
    refused = commands.handle("train", b"{}", FakeControl(refuse=True), 4096)
    assert refused == {"command": "train", "ok": False, "error": "refused for the test"}


# ---------------------------------------------------------------------- fuzz (handler, no broker)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=20), st.sampled_from(LABELS + ("start", "stop", "")))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=10)
KEYS = st.sampled_from(["label", "action", "seconds", "on", "value", "session", "extra", ""])
PLAUSIBLE = st.dictionaries(KEYS, JSON_VALUE, max_size=4)


def _encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # NaN/Infinity appear as bare tokens: must be rejected


PAYLOADS = st.one_of(
    PLAUSIBLE.map(_encode),
    JSON_VALUE.map(_encode),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(0, 6000).map(lambda n: b'{"value": ' + b"1" * n + b"}"),
)
UNKNOWN_NAMES = st.text(max_size=20)
FUZZ_COUNT = {"payloads": 0}
BATCH = 5
#: Every generated payload is sent to every command (and to one generated unknown name), so
#: generation cost (hypothesis' ~1 ms per value) is shared by 8 handler calls.
TOPIC_NAMES = list(commands.COMMANDS)


def _check_reply(reply: dict) -> None:
    assert set(reply) == ({"command", "ok", "result"} if reply["ok"] else {"command", "ok", "error"})
    assert reply["ok"] in (True, False)
    if not reply["ok"]:
        assert reply["error"] and "\n" not in reply["error"]
        assert not reply["error"].startswith("internal error"), reply  # every bad input is foreseen
    messages.dumps(reply)  # always publishable


@settings(max_examples=260, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(PAYLOADS, min_size=BATCH, max_size=BATCH), UNKNOWN_NAMES)
def _fuzz_batch(batch, unknown):
    control = FakeControl()
    for payload in batch:
        for name in TOPIC_NAMES + [unknown]:
            _check_reply(commands.handle(name, payload, control, 4096))
            FUZZ_COUNT["payloads"] += 1


def test_fuzz_command_handler_never_raises():
    _fuzz_batch()
    assert FUZZ_COUNT["payloads"] >= 10_000


# ---------------------------------------------------------------------- broker: telemetry with a fake control
@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_status_state_discovery_and_replies(anon_broker, protocol):
    control = FakeControl()
    tel = MqttTelemetry(settings_for(anon_broker, protocol=protocol), "dev1", control, "9.9")
    w = Watcher(anon_broker, ["edge-slider/dev1/#", "homeassistant/#", "replies/#"])
    c = connect(anon_broker)
    try:
        tel.start()
        assert w.wait_for("edge-slider/dev1/status") == "online"
        assert w.wait_for("edge-slider/dev1/state")["mode"] == "idle"
        cfg = w.wait_for("homeassistant/device/dev1/config")
        assert cfg["device"]["sw_version"] == "9.9" and cfg["cmps"]["position"]["p"] == "number"
        # v5 request/response: the reply also goes to the response topic with the correlation data.
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic, props.CorrelationData = "replies/me", b"\x01corr"
        c.publish("edge-slider/dev1/cmd/position", b'{"value": 2.5}', qos=1, properties=props)
        c.publish("edge-slider/dev1/cmd/listen", b'{"on": "yes"}', qos=1)
        ok = w.wait_for("edge-slider/dev1/cmd/result", lambda p: p["command"] == "position")
        assert ok == {"command": "position", "ok": True, "result": {"call": "set_position"}}
        bad = w.wait_for("edge-slider/dev1/cmd/result", lambda p: p["command"] == "listen")
        assert bad["ok"] is False and "'on'" in bad["error"]
        if protocol == "5":
            assert w.wait_for("replies/me") == ok
            msg = next(m for t, _, m in w.messages if t == "replies/me")
            assert msg.properties.CorrelationData == b"\x01corr"
        # HA restarted: discovery again.
        n = len(w.on("homeassistant/device/dev1/config"))
        c.publish("homeassistant/status", b"online", qos=1)
        w.wait_for("homeassistant/device/dev1/config", start=len(w.messages) - 1, timeout=5)
        assert len(w.on("homeassistant/device/dev1/config")) > n
        assert not [t for t, _, _ in w.messages if t.startswith("homeassistant/") and t.count("/") == 4]
        time.sleep(0.2)
        # our own replies on cmd/result were never taken for a command called "result"
        assert all(p["command"] != "result" for p in w.on("edge-slider/dev1/cmd/result"))
        assert control.calls == [("set_position", 2.5)]
    finally:
        tel.stop()
        close(c)
    assert w.wait_for("edge-slider/dev1/status", lambda p: p == "offline", start=1, timeout=5) == "offline"
    w.close()


class SnapshotControl(FakeControl):
    """FakeControl whose threshold command really changes the snapshot, as the engine's does."""

    threshold = 0.75

    def set_threshold(self, value):
        self.threshold = value
        return self._rec("set_threshold", value)

    def snapshot(self):
        return {**super().snapshot(), "threshold": self.threshold}


@pytest.mark.mqtt
def test_threshold_command_publishes_the_state_at_once(anon_broker):
    # state_interval_s 60: only the command itself can bring the new value out within the wait
    tel = MqttTelemetry(settings_for(anon_broker, state_interval_s=60.0), "dev1", SnapshotControl(), "t")
    w = Watcher(anon_broker, ["edge-slider/dev1/#"])
    c = connect(anon_broker)
    try:
        tel.start()
        assert w.wait_for("edge-slider/dev1/state")["threshold"] == 0.75
        t0 = time.monotonic()
        c.publish("edge-slider/dev1/cmd/threshold", b'{"value": 0.6}', qos=1)
        assert w.wait_for("edge-slider/dev1/state", lambda p: p["threshold"] == 0.6, timeout=2)
        assert time.monotonic() - t0 < 2.0
    finally:
        tel.stop()
        close(c)
        w.close()


def _retain(broker, topic: str, payload: bytes) -> None:
    c = connect(broker)
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    close(c)


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_upgrade_clears_old_per_entity_configs_and_deletes_removed_classes(anon_broker, protocol):
    # What an older version (per-entity discovery) and a device config with a class "clap" left behind.
    old_topics = ["homeassistant/select/dev9/listen/config", "homeassistant/sensor/dev9/examples_left/config"]
    for t in old_topics:
        _retain(anon_broker, t, b'{"name": "old", "unique_id": "x", "state_topic": "s"}')
    topics = Topics("edge-slider/dev9", "homeassistant")
    old = homeassistant.device_config(topics, "dev9", "0.9", ("left", "right", "clap"))
    _retain(anon_broker, "homeassistant/device/dev9/config", json.dumps(old).encode())
    tel = MqttTelemetry(settings_for(anon_broker, protocol=protocol), "dev9", FakeControl(), "1.0")
    w = Watcher(anon_broker, ["homeassistant/#"])
    try:
        w.wait_for("homeassistant/device/dev9/config")          # the old retained one
        start = len(w.messages)
        tel.start()
        cfg = w.wait_for("homeassistant/device/dev9/config", start=start)
        cmps = cfg["cmps"]
        assert cmps["examples_clap"] == {"p": "sensor"}            # deleted once, HA's way
        assert cmps["examples_noise"]["p"] == "sensor" and "examples_left" in cmps
        with w._cond:
            order = [(t, p) for t, p, _ in w.messages[start:]]
        device_at = order.index(("homeassistant/device/dev9/config", cfg))
        for t in old_topics:                                         # cleared, and BEFORE the device config
            assert order.index((t, "")) < device_at, order
            with pytest.raises(AssertionError, match="no matching message"):
                wait_retained(anon_broker, t, timeout=0.5)
        # the next device config (HA restarted) no longer carries the deleted component
        n = len(w.messages)
        ha = connect(anon_broker)
        ha.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
        close(ha)
        again = w.wait_for("homeassistant/device/dev9/config", start=n, timeout=5)
        assert "examples_clap" not in again["cmps"]
        time.sleep(0.5)   # and it settles: no loop of republished configs (3.1.1 echoes our own)
        assert len(w.on("homeassistant/device/dev9/config")) <= 4
    finally:
        tel.stop()
        w.close()


@pytest.mark.mqtt
def test_no_broker_start_never_raises_and_stop_is_quick():
    tel = MqttTelemetry(MqttSettings(host="127.0.0.1", port=free_port()), "dev1", FakeControl(), "t")
    tel.start()
    for _ in range(2000):  # the broker is away: events pile up in the bounded queue, nothing blocks
        tel.on_event(ModeChanged("idle"))
    t0 = time.monotonic()
    tel.stop()
    assert not tel.connected and len(tel.out) <= tel.settings.queue_size and time.monotonic() - t0 < 3


@pytest.mark.mqtt
def test_monitor_once_prints_a_snapshot(anon_broker, tmp_path, capsys):
    from edge.cli import main
    tel = MqttTelemetry(settings_for(anon_broker), "mon1", FakeControl(), "t")
    tel.start()
    try:
        wait_retained(anon_broker, "edge-slider/mon1/state")
        conf = tmp_path / "c.toml"
        conf.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {anon_broker.port}\n')
        assert main(["--config", str(conf), "monitor", "--device", "mon1", "--once"]) == 0
        out = capsys.readouterr().out
        assert "status: online" in out and "mode: idle" in out and "position:" in out
        assert main(["--config", str(conf), "monitor", "--device", "nobody", "--once", "--timeout", "0.5"]) == 1
    finally:
        tel.stop()


# ---------------------------------------------------------------------- (1) round trip with a simulated device
@pytest.mark.mqtt
def test_round_trip_teach_and_listen_over_mqtt(tmp_path, anon_broker):
    config = device_config(tmp_path, anon_broker, "dev1", prediction_interval_s=0.2)
    base = "edge-slider/dev1"
    with Service(config, RunOptions(simulate=True, mqtt=True, script="gap:0.1", loop=False)) as service:
        w = Watcher(anon_broker, [f"{base}/#"])
        c = connect(anon_broker)
        service.telemetry.start()
        w.wait_for(f"{base}/status", lambda p: p == "online")
        assert w.wait_for(f"{base}/state")["mode"] == "idle"

        left = synth.render(TRAIN_SCENES["left"], seed=10)[0]
        assert command(service, c, w, "collect", {"label": "left", "action": "start"})["ok"]
        feed(service, left)
        r = command(service, c, w, "collect", {"label": "left", "action": "stop"})
        assert r["ok"] and r["result"]["stored"] >= 20, r

        right = synth.render(TRAIN_SCENES["right"], seed=11)[0]
        r = command(service, c, w, "collect", {"label": "right", "seconds": right.shape[0] / SAMPLE_RATE - 0.05})
        assert r["ok"], r
        feed(service, right)
        pump_until(service, lambda: find(w, f"{base}/event", lambda p: p["kind"] == "collected"
                                         and p["label"] == "right"), what="right collected")

        noise = synth.render(TRAIN_SCENES["noise"], seed=12)[0]
        assert command(service, c, w, "collect", {"label": "noise", "action": "start"})["ok"]
        feed(service, noise)
        assert command(service, c, w, "collect", {"label": "noise", "action": "stop"})["ok"]
        refused = command(service, c, w, "collect", {"label": "noise", "action": "stop"})
        assert refused == {"command": "collect", "ok": False, "error": "not collecting"}
        state = pump_until(service, lambda: find(w, f"{base}/state", lambda p: min(p["labels"].values()) >= 20),
                           what="state with counts")
        assert state["mode"] == "idle"

        r = command(service, c, w, "train", {})
        assert r["ok"] and r["result"]["started"] is True
        wait_training(service)
        progress = w.wait_for(f"{base}/training", lambda p: p["kind"] == "training_progress")
        assert progress["epochs"] == config.train.epochs + config.train.refit_epochs  # validated, then refit
        done = w.wait_for(f"{base}/training", lambda p: p["kind"] == "training_finished")
        assert done["ok"] is True and done["version"] == 1
        report = done["report"]      # the post-training report reaches MQTT (and HA's sensor through state)
        assert set(report["thresholds"]) == {"left", "right"} and report["max_false_per_min"] == 0.5
        state = w.wait_for(f"{base}/state", lambda p: p["model"]["version"] == 1 and p["mode"] == "listening")
        assert state["model"]["false_per_min_estimate"] == report["estimated_false_per_min"]
        assert set(state["thresholds"]) == {"left", "right"}

        assert command(service, c, w, "listen", {"on": False})["result"] == {"listening": False}
        w.wait_for(f"{base}/state", lambda p: p["mode"] == "idle", start=len(w.messages) - 3)
        assert command(service, c, w, "listen", {"on": True})["result"] == {"listening": True}
        assert command(service, c, w, "threshold", {"value": 0.7})["result"] == {"threshold": 0.7}

        start = len(w.messages)
        feed(service, synth.render(TEST_SCENE, seed=99, gain_db=-4.0)[0])
        pred = w.wait_for(f"{base}/prediction", start=start)
        assert set(pred) == {"t", "label", "score", "probs"} and set(pred["probs"]) == set(LABELS)
        decision = w.wait_for(f"{base}/event", lambda p: p["kind"] == "decision", start=start)
        assert decision["label"] in ("left", "right")
        final = w.wait_for(f"{base}/state", lambda p: p["position"] == round(service.slider.position, 3),
                           start=start)
        assert final["threshold"] == 0.7

        # "that was wrong" over the real broker: the last move is undone, its sound kept as noise
        w.wait_for(f"{base}/event", lambda p: p["kind"] == "decision" and p["position"] == final["position"],
                   start=start)
        moves = [p for p in w.on(f"{base}/event") if p["kind"] == "decision"]
        before_last = round(moves[-1]["position"] - (0.1 if moves[-1]["label"] == "right" else -0.1), 3)
        noise_before = final["labels"]["noise"]
        r = command(service, c, w, "false_move", {})
        assert r["ok"] and r["result"]["label"] == moves[-1]["label"] and r["result"]["stored"] > 20, r
        assert r["result"]["position"] == pytest.approx(before_last)
        marked = w.wait_for(f"{base}/event", lambda p: p["kind"] == "false_move", start=start)
        assert marked["stored"] == r["result"]["stored"]
        w.wait_for(f"{base}/state", lambda p: p["labels"]["noise"] == noise_before + marked["stored"], start=start)
        assert command(service, c, w, "false_move", {})["ok"] is False     # one move, one mark

        assert command(service, c, w, "position", {"value": 7})["result"] == {"position": 7.0}
        r = command(service, c, w, "examples/delete", {"label": "noise"})
        assert r["ok"] and r["result"]["counts"].get("noise", 0) == 0
        assert w.wait_for(f"{base}/event", lambda p: p["kind"] == "deleted")["label"] == "noise"
        close(c)
    # Service.close → telemetry.stop: a clean disconnect publishes offline itself.
    assert w.wait_for(f"{base}/status", lambda p: p == "offline", timeout=5) == "offline"
    w.close()


# ---------------------------------------------------------------------- (2) last will
@pytest.mark.mqtt
def test_last_will_after_kill_9(tmp_path, anon_broker):
    conf = tmp_path / "config.toml"
    conf.write_text(f'[device]\nid = "willdev"\n[mqtt]\nhost = "127.0.0.1"\nport = {anon_broker.port}\n'
                    f'[slider]\ndetach_after_s = 0.0\n')
    w = Watcher(anon_broker, ["edge-slider/willdev/status"])
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir",
                             str(tmp_path / "state"), "run", "--simulate"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        w.wait_for("edge-slider/willdev/status", lambda p: p == "online", timeout=30)
        start = len(w.messages)  # NOTE: before the kill: the will arrives within milliseconds
        proc.kill()
        proc.wait(5)
        assert w.wait_for("edge-slider/willdev/status", lambda p: p == "offline", start=start, timeout=5)
        # and it is retained: a newcomer sees offline
        assert wait_retained(anon_broker, "edge-slider/willdev/status", timeout=3) == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        w.close()
    assert "password" not in err.lower() or "***" in err


# ---------------------------------------------------------------------- (3) auth and the example ACL
@pytest.mark.mqtt
def test_auth_refused_v5_reason_codes(auth_broker):
    assert connack(auth_broker) == 135  # anonymous: Not authorized
    assert connack(auth_broker, username="dev-a", password="wrong") == 135
    assert connack(auth_broker, username="dev-a", password=USERS["dev-a"]) == 0


@pytest.mark.mqtt
def test_acl_device_confined_to_its_own_topics(auth_broker, caplog):
    caplog.set_level("DEBUG")
    control_b = FakeControl()
    tel_b = MqttTelemetry(settings_for(auth_broker, username="dev-b", password=USERS["dev-b"]), "dev-b",
                          control_b, "t")
    admin = {"username": "admin", "password": USERS["admin"]}
    w = Watcher(auth_broker, ["edge-slider/#", "homeassistant/#"], **admin)
    a = auth_broker.client(username="dev-a", password=USERS["dev-a"])
    acks: dict[int, int] = {}
    a.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
    a.connect(auth_broker.host, auth_broker.port)
    a.loop_start()
    try:
        tel_b.start()
        # the device's own publishes (status, state, HA discovery) pass the ACL
        assert w.wait_for("edge-slider/dev-b/status") == "online"
        w.wait_for("edge-slider/dev-b/state")
        w.wait_for("homeassistant/device/dev-b/config")

        def puback(topic: str) -> int:
            info = a.publish(topic, b'{"value": 1}', qos=1)
            info.wait_for_publish(5)
            deadline = time.monotonic() + 5
            while info.mid not in acks and time.monotonic() < deadline:
                time.sleep(0.01)
            return acks[info.mid]

        assert puback("edge-slider/dev-b/cmd/position") == 135  # A cannot command B
        assert puback("elsewhere/anything") == 135  # nor publish outside its base
        assert puback("homeassistant/number/dev-b/x/config") == 135  # nor B's discovery
        assert puback("edge-slider/dev-a/state") in (0, 16)  # its own base: fine
        # the admin (Home Assistant) may command B
        ad = connect(auth_broker, **admin)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic, props.CorrelationData = "edge-slider/dev-b/reply/admin", b"42"
        ad.publish("edge-slider/dev-b/cmd/position", b'{"value": 4}', qos=1, properties=props)
        reply = w.wait_for("edge-slider/dev-b/cmd/result")
        assert reply["ok"] and control_b.calls == [("set_position", 4.0)]
        assert w.wait_for("edge-slider/dev-b/reply/admin") == reply  # request/response works under the ACL
        close(ad)
    finally:
        tel_b.stop()
        close(a)
        w.close()
    assert "dev-b" in caplog.text and USERS["dev-b"] not in caplog.text  # the password is never logged


# ---------------------------------------------------------------------- (4) TLS
@pytest.mark.mqtt
def test_tls_right_ca_connects_wrong_ca_refused(tls_broker, tls_files):
    good = MqttTelemetry(settings_for(tls_broker, tls=True, ca_file=str(tls_files["ca"])), "tls1", FakeControl(), "t")
    bad = MqttTelemetry(settings_for(tls_broker, tls=True, ca_file=str(tls_files["wrong_ca"]), client_id="bad"),
                        "tls2", FakeControl(), "t")
    try:
        good.start()
        bad.start()  # never raises, keeps retrying in the background
        assert wait_retained(tls_broker, "edge-slider/tls1/status", ca=tls_files["ca"]) == "online"
        time.sleep(0.5)
        assert good.connected and not bad.connected and bad.connects == 0
    finally:
        good.stop()
        bad.stop()
    c = tls_broker.client(ca=tls_files["wrong_ca"])
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect(tls_broker.host, tls_broker.port)


# ---------------------------------------------------------------------- (5) broker restart while listening
@pytest.mark.mqtt
def test_broker_restart_while_listening(tmp_path, anon_broker, trained_state):
    state = tmp_path / "state"
    shutil.copytree(trained_state, state)
    config = device_config(tmp_path, anon_broker, "dev5", state_interval_s=1.0)
    base = "edge-slider/dev5"
    script = "gap:0.4, snap, gap:0.5, whistle:0.4"
    options = RunOptions(simulate=True, mqtt=True, script=script, realtime=True, loop=True)
    with Service(config, options) as service:
        decisions: list[float] = []
        service.bus.subscribe(lambda e: decisions.append(time.monotonic()) if isinstance(e, DecisionMade) else None)
        runner = threading.Thread(target=service.run, name="service-run")
        runner.start()
        try:
            st0 = wait_retained(anon_broker, f"{base}/state", lambda p: p["mode"] == "listening", timeout=10)
            assert st0["model"]["version"] == 1
            anon_broker.stop()
            down_at = time.monotonic()
            time.sleep(2.0)
            back_at = time.monotonic()
            anon_broker.start()
            # persistence is off: only the device's reconnect can bring the retained status back
            assert wait_retained(anon_broker, f"{base}/status", lambda p: p == "online", timeout=10) == "online"
            online_after = time.monotonic() - back_at
            st1 = wait_retained(anon_broker, f"{base}/state", lambda p: p["mode"] == "listening", timeout=5)
            time.sleep(1.5)
        finally:
            service.request_stop()
            runner.join(10)
        assert not runner.is_alive()
        print(f"\nbroker back → status online in {online_after:.2f} s")
        assert online_after < 5.0
        assert st1["model"]["version"] == 1 and st1["audio"]["overruns"] == 0
        assert service.ring.overruns == 0
        assert any(down_at < t < back_at for t in decisions), "no decisions while the broker was away"
        assert any(t > back_at + online_after for t in decisions), "no decisions after the reconnect"
        assert service.telemetry.connects >= 2


def test_listening_switch_stays_on_through_training_when_listening_resumes(tmp_path, trained_state):
    state = tmp_path / "state"
    shutil.copytree(trained_state, state)
    cfg = Config().replace("device", state_dir=str(state)).replace("mqtt", enabled=False)
    cfg = cfg.replace("listen", autostart=False)   # only "listening before" makes it resume
    with Service(cfg, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as service:
        engine = service.engine
        engine._listen(True)
        assert engine.snapshot()["listening"] is True
        press_button(service, cfg.buttons.train)
        assert engine.mode == "training"
        assert engine.snapshot()["listening"] is True        # a mode, not "listening off"
        wait_training(service)
        assert engine.mode == "listening" and engine.snapshot()["listening"] is True
        # switched off while training: OFF at once, and idle after it
        press_button(service, cfg.buttons.train)
        engine._listen(False)
        assert engine.mode == "training" and engine.snapshot()["listening"] is False
        wait_training(service)
        assert engine.mode == "idle" and engine.snapshot()["listening"] is False


# ---------------------------------------------------------------------- (6) fuzz through the real broker
@pytest.mark.mqtt
def test_fuzz_over_the_broker_every_command_answered(anon_broker):
    tel = MqttTelemetry(settings_for(anon_broker), "fz", FakeControl(), "t")
    w = Watcher(anon_broker, ["edge-slider/fz/cmd/result"])
    c = connect(anon_broker)
    sent = {"n": 0}
    names = st.sampled_from(list(commands.COMMANDS) + ["nope", "collect/x", "ünïcode"])

    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(names, PAYLOADS), min_size=40, max_size=40))
    def burst(batch):
        start = len(w.messages)
        for name, payload in batch:
            c.publish(f"edge-slider/fz/cmd/{name}", payload, qos=1)
            sent["n"] += 1
            time.sleep(0.001)  # keep under the command queue's bound; overflow answers "busy", also fine
        deadline = time.monotonic() + 10
        while len(w.messages) - start < len(batch) and time.monotonic() < deadline:
            time.sleep(0.01)
        replies = [p for _, p, _ in w.messages[start:]]
        assert len(replies) == len(batch)
        assert all(isinstance(p, dict) and p["ok"] in (True, False) for p in replies)

    try:
        tel.start()
        wait_retained(anon_broker, "edge-slider/fz/status", lambda p: p == "online")
        burst()
    finally:
        tel.stop()
        close(c)
        w.close()
    assert sent["n"] >= 200


def test_payload_floats_are_rounded_and_strict_json():
    from edge.events import DecisionMade
    from edge.telemetry import messages
    out = json.loads(messages.event_payload(DecisionMade(1.0448979591836736, "left", 0.9921875, 5.0), ts=1.5))
    assert out == {"kind": "decision", "t": 1.0449, "label": "left", "score": 0.9922, "position": 5.0, "ts": 1.5}
    assert messages.dumps({"x": float("nan"), "y": [float("inf")]}) == b'{"x":null,"y":[null]}'



# ---------------------------------------------------------------------- issue 11: stale orders, takeover, floods
def _result_count(w: Watcher, topic: str) -> int:
    return len(w.on(topic))


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_retained_command_is_refused_once_never_run(anon_broker, caplog, protocol):
    """`mosquitto_pub -r -t <base>/cmd/examples/delete` deleted the examples at every start: a
    retained command is refused (one reply, one log line with the fix) and never run; clearing it
    (an empty retained message) runs nothing either."""
    caplog.set_level("INFO", logger="edge.telemetry.mqtt")
    base = "edge-slider/ret1"
    pub = connect(anon_broker)
    pub.publish(f"{base}/cmd/examples/delete", b'{"label": "noise"}', qos=1, retain=True).wait_for_publish(5)
    control = FakeControl()
    tel = MqttTelemetry(settings_for(anon_broker, protocol=protocol), "ret1", control, "t")
    w = Watcher(anon_broker, [f"{base}/cmd/result"])
    try:
        tel.start()
        reply = w.wait_for(f"{base}/cmd/result", lambda p: p["command"] == "examples/delete")
        assert reply["ok"] is False and "retained" in reply["error"], reply
        assert f"mosquitto_pub -r -n -t {base}/cmd/examples/delete" in reply["error"]
        # the broker hands the retained message over again at every (re)subscription: still refused, not re-announced
        msg = mqtt.MQTTMessage(topic=f"{base}/cmd/examples/delete".encode())
        msg.payload, msg.retain, msg.qos = b'{"label": "noise"}', True, 1
        tel._on_message(tel._client, None, msg)
        pub.publish(f"{base}/cmd/examples/delete", b"", qos=1, retain=True)   # the fix the reply suggests
        pub.publish(f"{base}/cmd/threshold", b'{"value": 0.5}', qos=1)   # a live order still works
        w.wait_for(f"{base}/cmd/result", lambda p: p["command"] == "threshold")
        time.sleep(0.3)
    finally:
        tel.stop()
        close(pub)
        w.close()
    assert control.calls == [("set_threshold", 0.5)], control.calls
    assert len([p for p in w.on(f"{base}/cmd/result") if p["command"] == "examples/delete"]) == 1
    lines = [r for r in caplog.records if "retained" in r.getMessage() and r.levelname == "WARNING"]
    assert len(lines) == 1 and "mosquitto_pub -r -n -t" in lines[0].getMessage(), lines
    assert "cleared" in caplog.text


class SlowControl(FakeControl):
    """A device whose commands wait for the audio loop (one block, ~23 ms on the Pi; 3 ms here)."""

    def _rec(self, *call):
        time.sleep(0.003)
        return super()._rec(*call)


@pytest.mark.mqtt
def test_burst_of_1000_commands_every_one_answered_or_counted(anon_broker):
    """Measured: 1,000 QoS 1 commands got 722 replies and >= 21 commands ran unanswered (the
    outgoing queue dropped replies). Now every command that ran has its reply, and the ones the
    device could not take are counted in "overloaded" replies."""
    base = "edge-slider/burst"
    control = SlowControl()
    tel = MqttTelemetry(settings_for(anon_broker, queue_size=50), "burst", control, "t")
    w = Watcher(anon_broker, [f"{base}/cmd/result"])
    c = connect(anon_broker)
    try:
        tel.start()
        wait_retained(anon_broker, f"{base}/status", lambda p: p == "online")
        infos = [c.publish(f"{base}/cmd/threshold", json.dumps({"value": i / 1000}), qos=1) for i in range(1000)]
        for info in infos:
            info.wait_for_publish(10)
        deadline, last, stable = time.monotonic() + 30, -1, 0
        while time.monotonic() < deadline and stable < 10:       # until no reply came for 1 s
            n = _result_count(w, f"{base}/cmd/result")
            stable, last = (stable + 1 if n == last else 0), n
            time.sleep(0.1)
    finally:
        tel.stop()
        close(c)
        w.close()
    replies = w.on(f"{base}/cmd/result")
    answered = [r for r in replies if r["command"] == "threshold"]
    overloaded = [r for r in replies if r["command"] == "overloaded"]
    dropped = sum(r["dropped"] for r in overloaded)
    ran = len(control.calls)
    print(f"\n1000 commands: {ran} ran, {len(answered)} answered, {dropped} dropped in {len(overloaded)} "
          f"overloaded replies, {len(replies)} messages")
    accounted = len(answered) + dropped
    assert accounted == 1000, f"{1000 - accounted} of 1000 commands got no reply and were not counted as dropped"
    assert len([r for r in answered if r["ok"]]) == ran, "a command ran without its reply"
    assert 1 <= len(overloaded) <= 3, overloaded      # one per burst, not one per dropped command


TAKEOVER = "another client is using client id"


def _intruder(broker, client_id: str, v5: bool = True, **auth) -> mqtt.Client:
    """A second client with the same client id that reconnects every second when knocked off."""
    c = broker.client(client_id, v5=v5, **auth)
    c.reconnect_delay_set(1, 1)
    c.connect(broker.host, broker.port, keepalive=10)
    c.loop_start()
    return c


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_client_id_takeover_is_one_clear_warning(anon_broker, caplog, protocol):
    """Another client with our client id knocks the device off every second or so: that is said
    ONCE, with the fix, instead of a "connection lost" warning every second."""
    caplog.set_level("INFO", logger="edge.telemetry.mqtt")
    tel = MqttTelemetry(settings_for(anon_broker, protocol=protocol), "dev-a", FakeControl(), "t")
    tel.start()
    intruder = None
    try:
        deadline = time.monotonic() + 5
        while not tel.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        intruder = _intruder(anon_broker, tel.client_id, v5=protocol == "5")
        deadline = time.monotonic() + 15
        while TAKEOVER not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3.0)                   # the fight goes on: still no second warning
    finally:
        if intruder is not None:
            close(intruder)
        tel.stop()
    warnings = [r.getMessage() for r in caplog.records if TAKEOVER in r.getMessage()]
    lost = [r for r in caplog.records if "connection lost" in r.getMessage() and r.levelname == "WARNING"]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "edge-slider-dev-a" in warnings[0] and "use_username_as_clientid" in warnings[0]
    assert len(lost) <= 3, f"{len(lost)} 'connection lost' warnings"


@pytest.mark.mqtt
def test_example_broker_config_stops_a_client_id_takeover(example_broker, caplog):
    """Device B's credentials with device A's client id: with deploy/mosquitto/mosquitto.conf
    (use_username_as_clientid) the broker gives B its user name as client id, so A stays on."""
    caplog.set_level("INFO", logger="edge.telemetry.mqtt")
    a = MqttTelemetry(settings_for(example_broker, username="dev-a", password=USERS["dev-a"]), "dev-a",
                      FakeControl(), "t")
    b = MqttTelemetry(settings_for(example_broker, username="dev-b", password=USERS["dev-b"],
                                   client_id="edge-slider-dev-a"), "dev-b", FakeControl(), "t")
    admin = {"username": "admin", "password": USERS["admin"]}
    w = Watcher(example_broker, ["edge-slider/dev-a/status"], **admin)
    try:
        a.start()
        w.wait_for("edge-slider/dev-a/status", lambda p: p == "online")
        b.start()
        assert wait_retained(example_broker, "edge-slider/dev-b/status", lambda p: p == "online", **admin)
        time.sleep(4.0)                   # a takeover fight knocks A off within a second or two
        assert a.connected and b.connected
        assert a.connects == 1 and b.connects == 1, (a.connects, b.connects)
    finally:
        b.stop()
        a.stop()
        w.close()
    assert [p for p in w.on("edge-slider/dev-a/status")][:1] == ["online"]
    assert "offline" not in w.on("edge-slider/dev-a/status")[:-1], w.on("edge-slider/dev-a/status")
    assert TAKEOVER not in caplog.text and "connection lost" not in caplog.text
