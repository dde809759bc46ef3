"""The ``[mqtt]`` section: the broker, credentials, TLS, topics and rates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.config.fields import _doc


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = _doc("Connect to an MQTT broker.", default=True)
    host: str = _doc("Broker host name or address.", default="localhost")
    port: int = _doc("Broker port (1883 plain, 8883 TLS).", default=1883, min=1, max=65535)
    client_id: str = _doc("MQTT client id; '' = edge-slider-<device.id>.", default="")
    keepalive: int = _doc("Keepalive, seconds.", default=30, min=5, max=3600)
    protocol: str = _doc("MQTT protocol version.", default="5", choices=("5", "3.1.1"))
    username: str = _doc("Username; '' = anonymous.", default="")
    password: str = _doc("Password; better set $EDGE_SLIDER_MQTT_PASSWORD or password_file. Never logged.",
                         default="", secret=True)
    password_file: str = _doc("File whose first line is the password.", default="")
    tls: bool = _doc("Use TLS.", default=False)
    ca_file: str = _doc("CA certificate (PEM) to verify the broker; '' = system CAs.", default="")
    certfile: str = _doc("Client certificate (PEM) for mutual TLS.", default="")
    keyfile: str = _doc("Client key (PEM) for mutual TLS.", default="")
    tls_insecure_skip_verify: bool = _doc("TESTING ONLY: do not verify the broker's certificate or host name.",
                                          default=False)
    base_topic: str = _doc("Topic prefix; {device_id} is replaced.", default="edge-slider/{device_id}")
    discovery: bool = _doc("Publish Home Assistant MQTT discovery.", default=True)
    discovery_prefix: str = _doc("Home Assistant discovery prefix.", default="homeassistant")
    prediction_interval_s: float = _doc("Fewest seconds between two prediction messages (a changed label is "
                                        "sent at once); 0 = every hop.", default=0.1, min=0.0, max=3600.0)
    state_interval_s: float = _doc("Re-publish the state at least this often, seconds.", default=10.0,
                                   min=1.0, max=3600.0)
    max_payload_bytes: int = _doc("Largest command payload accepted, bytes.", default=4096, min=64, max=1_000_000)
    queue_size: int = _doc("Outgoing messages buffered while the broker is away (predictions are dropped first).",
                           default=500, min=10, max=100_000)

    def validate(self) -> list[str]:
        problems = []
        if (self.certfile == "") != (self.keyfile == ""):
            problems.append("mqtt.certfile and mqtt.keyfile: set both or neither")
        for key in ("ca_file", "certfile", "keyfile", "password_file"):
            value = getattr(self, key)
            if value and not Path(value).expanduser().is_file():
                problems.append(f"mqtt.{key} = {value!r}: no such file")
        if "#" in self.base_topic or "+" in self.base_topic:
            problems.append(f"mqtt.base_topic = {self.base_topic!r}: wildcards # and + are not allowed")
        return problems

    def resolved_password(self) -> str:
        """The password: password_file's first line, else the key (or $EDGE_SLIDER_MQTT_PASSWORD)."""
        if self.password_file:
            lines = Path(self.password_file).expanduser().read_text(encoding="utf-8").splitlines()
            return lines[0] if lines else ""
        return self.password

    def topic(self, device_id: str) -> str:
        return self.base_topic.replace("{device_id}", device_id).rstrip("/")
