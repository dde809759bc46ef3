"""Home Assistant MQTT discovery: one device with a slider, a threshold, listen on/off, Train, sensors.

Each entity is one retained config message under
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` with ``node_id`` = the device id,
so the example ACL can give a device user write access to ``homeassistant/+/<its id>/#`` only.
Every entity reads the retained ``state`` topic and is unavailable while ``status`` is ``offline``.
Home Assistant publishes ``online`` on ``<discovery_prefix>/status`` when it (re)starts; the
telemetry client then publishes these configs again.
"""

from __future__ import annotations

from typing import Any, Iterator

from edge.config import SLIDER_MAX, SLIDER_MIN
from edge.telemetry.messages import OFFLINE, ONLINE, Topics

Discovery = tuple[str, dict[str, Any]]


def device_block(device_id: str, version: str) -> dict[str, Any]:
    return {"identifiers": [f"edge-slider-{device_id}"], "name": f"Edge slider {device_id}",
            "manufacturer": "edge-slider", "model": "Raspberry Pi sound slider", "sw_version": version}


def _entity(topics: Topics, device_id: str, version: str, object_id: str, name: str,
            **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"edge-slider-{device_id}-{object_id}",
        "object_id": f"edge_slider_{device_id}_{object_id}".replace("-", "_"),
        "device": device_block(device_id, version),
        "availability_topic": topics.status,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "state_topic": topics.state,
        **extra,
    }


def _topic(topics: Topics, component: str, device_id: str, object_id: str) -> str:
    return f"{topics.discovery_prefix}/{component}/{device_id}/{object_id}/config"


def discovery_configs(topics: Topics, device_id: str, version: str, labels: tuple[str, ...]) -> Iterator[Discovery]:
    """(topic, config) for every entity of the device."""
    def item(component: str, object_id: str, name: str, **extra: Any) -> Discovery:
        config = _entity(topics, device_id, version, object_id, name, **extra)
        if component == "button":
            config.pop("state_topic")     # NOTE: a button has no state; HA rejects a state_topic on it.
        return _topic(topics, component, device_id, object_id), config

    yield item("number", "position", "Slider position",
               command_topic=topics.cmd("position"), command_template='{"value": {{ value }}}',
               value_template="{{ value_json.position }}", min=SLIDER_MIN, max=SLIDER_MAX, step=0.1, mode="slider")
    yield item("number", "threshold", "Detection threshold",
               command_topic=topics.cmd("threshold"), command_template='{"value": {{ value }}}',
               value_template="{{ value_json.threshold }}", min=0, max=1, step=0.01, mode="slider",
               entity_category="config")
    yield item("select", "listen", "Listening",
               command_topic=topics.cmd("listen"),
               command_template='{"on": {{ "true" if value == "on" else "false" }}}',
               value_template="{{ 'on' if value_json.mode == 'listening' else 'off' }}", options=["on", "off"])
    yield item("button", "train", "Train", command_topic=topics.cmd("train"), payload_press="{}")
    yield item("sensor", "mode", "Mode", value_template="{{ value_json.mode }}")
    yield item("sensor", "last_label", "Last label", value_template="{{ value_json.last_label or 'none' }}")
    yield item("sensor", "val_accuracy", "Model validation accuracy",
               value_template="{{ value_json.model.val_accuracy }}", state_class="measurement",
               entity_category="diagnostic")
    yield item("sensor", "false_moves", "Estimated false moves per minute",
               value_template="{{ value_json.model.false_per_min_estimate }}", state_class="measurement",
               unit_of_measurement="moves/min", entity_category="diagnostic")
    yield item("button", "false_move", "That was wrong", command_topic=topics.cmd("false_move"),
               payload_press="{}")
    for label in labels:
        # NOTE: labels are [A-Za-z0-9_-] (config-validated), safe inside a Jinja string literal.
        yield item("sensor", f"examples_{label}", f"Examples {label}",
                   value_template=f"{{{{ value_json.labels['{label}'] }}}}", state_class="measurement",
                   unit_of_measurement="examples", entity_category="diagnostic")
