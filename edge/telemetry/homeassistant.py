"""Home Assistant MQTT discovery: one device config with every entity of the device.

Device-based discovery (Home Assistant ≥ 2024.11): ONE retained message on
``<discovery_prefix>/device/<device id>/config`` carries the device, the ``origin`` block, the
shared availability/state topics and the entities under ``cmps`` (component id → config with its
platform ``p``). The example ACL gives a device write (and read) access to
``homeassistant/+/<its id>/#``, which covers this topic and the older per-entity ones.

Upgrades and renames (see :class:`DiscoveryTracker`):

* the per-entity configs of older versions (``<prefix>/<component>/<id>/<object>/config``) are
  cleared with an empty retained message BEFORE the device config goes out: an entity discovered
  on two topics with one discovery id is refused by HA ("conflicting MQTT discovery message");
  ``default_entity_id`` gives the recreated entities stable ids;
* a component the previous device config had and this one lacks (a removed or renamed class) is
  sent once as ``{"p": "<platform>"}``, HA's way to delete one component of a device config.

Names follow HA's ``has_entity_name`` rule: the entity name is shown after the device name, so
it does not repeat it ("Edge slider Position", not "Edge slider edge-slider Slider position").
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable

from edge.config import SLIDER_MAX, SLIDER_MIN
from edge.telemetry.messages import OFFLINE, ONLINE, Topics

#: The engine's modes (edge.engine.core), the options of the ``mode`` enum sensor.
MODES = ("idle", "collecting", "training", "listening")
#: Event types of the ``sound`` event entity besides the class labels.
PROBLEM_EVENTS = ("refused", "error")
ORIGIN_NAME = "edge-slider"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def device_name(device_id: str) -> str:
    """'Edge slider' for the default id 'edge-slider', else 'Edge slider <id>' (no stutter)."""
    rest = re.sub(r"^edge[-_ ]?slider[-_ ]?", "", device_id, flags=re.IGNORECASE)
    rest = re.sub(r"[-_]+", " ", rest).strip()
    return f"Edge slider {rest}" if rest else "Edge slider"


def device_block(device_id: str, version: str) -> dict[str, Any]:
    return {"identifiers": [f"edge-slider-{device_id}"], "name": device_name(device_id),
            "manufacturer": "edge-slider", "model": "Raspberry Pi sound slider", "sw_version": version}


def discovery_topic(topics: Topics, device_id: str) -> str:
    return f"{topics.discovery_prefix}/device/{device_id}/config"


def legacy_filter(topics: Topics, device_id: str) -> str:
    """The per-entity discovery topics of versions before device-based discovery."""
    return f"{topics.discovery_prefix}/+/{device_id}/+/config"


def is_legacy_topic(topics: Topics, device_id: str, topic: str) -> bool:
    parts = topic.split("/")
    prefix = topics.discovery_prefix.split("/")
    n = len(prefix)
    return (len(parts) == n + 4 and parts[:n] == prefix and parts[n] != "device" and parts[n + 1] == device_id
            and parts[n + 3] == "config")


_Item = Callable[..., tuple[str, dict[str, Any]]]


def _item_maker(device_id: str) -> _Item:
    """``item(platform, cid, name, **extra)`` → (component id, its config) for this device."""
    prefix = _slug(device_name(device_id))

    def item(platform: str, cid: str, name: str | None, **extra: Any) -> tuple[str, dict[str, Any]]:
        return cid, {"p": platform, "name": name, "unique_id": f"edge-slider-{device_id}-{cid}",
                     # NOTE: default_entity_id replaced object_id (deprecated in HA 2025.10, gone in 2026.4)
                     "default_entity_id": f"{platform}.{prefix}_{_slug(cid)}", **extra}
    return item


def _controls(item: _Item, topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    """What Home Assistant can change: position, threshold, listening, train, "that was wrong"."""
    return [
        item("number", "position", "Position", command_topic=topics.cmd("position"),
             command_template='{"value": {{ value }}}', value_template="{{ value_json.position }}",
             min=SLIDER_MIN, max=SLIDER_MAX, step=0.1, mode="slider", icon="mdi:tune-vertical"),
        item("number", "threshold", "Detection threshold", command_topic=topics.cmd("threshold"),
             command_template='{"value": {{ value }}}', value_template="{{ value_json.threshold }}",
             min=0, max=1, step=0.01, mode="slider", entity_category="config", icon="mdi:ear-hearing"),
        # A switch that stays ON while a training/collection runs and listening resumes after it:
        # training is a mode, not "listening off" (an automation watching this must not fire).
        item("switch", "listening", "Listening", command_topic=topics.cmd("listen"),
             payload_on='{"on": true}', payload_off='{"on": false}', state_on="ON", state_off="OFF",
             value_template="{{ 'ON' if value_json.listening else 'OFF' }}", icon="mdi:microphone"),
        item("button", "train", "Train", command_topic=topics.cmd("train"), payload_press="{}",
             icon="mdi:school"),
        item("button", "false_move", "That was wrong", command_topic=topics.cmd("false_move"),
             payload_press="{}", icon="mdi:undo"),
    ]


def _status(item: _Item, topics: Topics, labels: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """What the device is doing: its mode, the last label, the sound event."""
    return [
        item("sensor", "mode", "Mode", device_class="enum", options=list(MODES),
             value_template="{{ value_json.mode }}", icon="mdi:state-machine"),
        item("sensor", "last_label", "Last label", device_class="enum", options=[*labels, "none"],
             value_template="{{ value_json.last_label or 'none' }}", icon="mdi:label-outline"),
        item("event", "sound", "Sound", state_topic=topics.event, event_types=[*labels, *PROBLEM_EVENTS],
             # NOTE: other kinds (collected, mode, ...) render empty: HA ignores an empty event payload.
             value_template=(
                 "{% if value_json.kind == 'decision' %}"
                 '{"event_type": {{ value_json.label | tojson }}, "position": {{ value_json.position }}}'
                 "{% elif value_json.kind == 'refused' %}"
                 '{"event_type": "refused", "request": {{ value_json.request | tojson }}, '
                 '"reason": {{ value_json.reason | tojson }}}'
                 "{% elif value_json.kind == 'error' %}"
                 '{"event_type": "error", "where": {{ value_json.where | tojson }}, '
                 '"message": {{ value_json.message | tojson }}}'
                 "{% endif %}"),
             icon="mdi:waveform"),
    ]


def _diagnostics(item: _Item, labels: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The diagnostic sensors: the model, the audio, problems, uptime, examples per class."""
    diag = {"entity_category": "diagnostic"}
    entries = [
        item("sensor", "val_accuracy", "Validation accuracy", unit_of_measurement="%", state_class="measurement",
             suggested_display_precision=1, icon="mdi:bullseye-arrow",
             value_template="{{ (value_json.model.val_accuracy * 100) | round(1) "
                            "if value_json.model.val_accuracy is number else None }}", **diag),
        item("sensor", "false_moves", "False moves estimate", unit_of_measurement="moves/min",
             state_class="measurement", icon="mdi:alert-circle-outline",
             value_template="{{ value_json.model.false_per_min_estimate }}", **diag),
        item("sensor", "model_version", "Model version", icon="mdi:brain",
             value_template="{{ value_json.model.version if value_json.model.version is not none else None }}",
             **diag),
        item("sensor", "audio_level", "Audio level", unit_of_measurement="dBFS", state_class="measurement",
             icon="mdi:volume-high", value_template="{{ value_json.audio.level_dbfs }}", **diag),
        item("sensor", "audio_overruns", "Audio overruns", state_class="total_increasing", icon="mdi:alert",
             value_template="{{ value_json.audio.overruns | default(0) }}", **diag),
        item("sensor", "problem", "Problem", icon="mdi:alert-octagon-outline",
             value_template="{{ (value_json.problems.values() | list | first | default('none'))[:250] }}", **diag),
        item("sensor", "uptime", "Uptime", device_class="duration", unit_of_measurement="s",
             state_class="measurement", icon="mdi:timer-outline", value_template="{{ value_json.uptime_s }}",
             **diag),
    ]
    for label in labels:
        # NOTE: labels are [A-Za-z0-9_-] (config-validated), safe inside a Jinja string literal.
        entries.append(item("sensor", f"examples_{label}", f"Examples {label}", state_class="measurement",
                            unit_of_measurement="examples", icon="mdi:counter",
                            value_template=f"{{{{ value_json.labels['{label}'] | default(0) }}}}", **diag))
    return entries


def components(topics: Topics, device_id: str, labels: Iterable[str]) -> dict[str, dict[str, Any]]:
    """component id → its config (platform ``p``), without what the device config shares."""
    item = _item_maker(device_id)
    labels = tuple(labels)
    return dict([*_controls(item, topics), *_status(item, topics, labels), *_diagnostics(item, labels)])


def device_config(topics: Topics, device_id: str, version: str, labels: Iterable[str],
                  removed: dict[str, str] | None = None) -> dict[str, Any]:
    """The retained device discovery payload; ``removed`` (component id → platform) are deleted."""
    cmps: dict[str, dict[str, Any]] = {cid: {"p": platform} for cid, platform in (removed or {}).items()}
    cmps.update(components(topics, device_id, labels))
    return {
        "device": device_block(device_id, version),
        "origin": {"name": ORIGIN_NAME, "sw_version": version},
        "availability_topic": topics.status,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "state_topic": topics.state,
        "qos": 1,
        "cmps": cmps,
    }


class DiscoveryTracker:
    """What the broker still holds for this device, read from the retained configs at connect.

    Fed by the telemetry client's network thread with every message on the device's own
    discovery topics; the publisher asks it what to clear and what to delete.
    """

    def __init__(self, topics: Topics, device_id: str):
        self.topics = topics
        self.device_id = device_id
        self.stale_topics: set[str] = set()
        """Retained per-entity configs of older versions: cleared before the device config."""
        self.previous: dict[str, str] = {}
        """component id → platform of the retained device config (what HA knows of us)."""
        self.current: set[str] = set()
        """The component ids of the device config this client published last."""

    def reset(self) -> None:
        self.previous = {}

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Record a retained discovery message; True when the device config must go out again."""
        if is_legacy_topic(self.topics, self.device_id, topic):
            if payload:
                self.stale_topics.add(topic)
                return True
            self.stale_topics.discard(topic)
            return False
        if topic != discovery_topic(self.topics, self.device_id) or not payload:
            return False
        try:
            cmps = json.loads(payload).get("cmps", {})
        except (ValueError, AttributeError):
            return False
        if not isinstance(cmps, dict):
            return False
        # NOTE: a component that is only {"p": ...} was deleted already: nothing left to delete.
        self.previous = {cid: c["p"] for cid, c in cmps.items()
                         if isinstance(c, dict) and isinstance(c.get("p"), str) and set(c) - {"p", "platform"}}
        # NOTE: our own config coming back (MQTT 3.1.1 has no no_local) needs nothing more.
        return bool(set(self.previous) - self.current)

    def removed(self, current: Iterable[str]) -> dict[str, str]:
        current = set(current)
        return {cid: p for cid, p in self.previous.items() if cid not in current}
