"""The broker connection: the configured paho client (protocol, credentials, TLS, backoff), what it
subscribes to at every connect, and the client-id takeover watch.

Client-id takeover: the broker keeps one connection per client id and drops the older one, so two
clients with one id knock each other off every second or so. Repeated disconnects within seconds
of connecting are reported once, with the fix, instead of a "connection lost" line every second.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config import MqttSettings
from edge.telemetry import homeassistant
from edge.telemetry.messages import Topics

LOGGER = "edge.telemetry.mqtt"
"""The one logger of the MQTT client, whichever module of it logs (users filter on this name)."""
log = logging.getLogger(LOGGER)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 4
"""Capped low on purpose: a device must be back within 5 s of its broker's return (a 30 s cap
measured 15.7 s after a 45 s outage); one TCP connect every 4 s is nothing for a broker."""
TAKEOVER_WINDOW_S = 5.0
TAKEOVER_DROPS = 3
"""This many disconnects in a row, each within TAKEOVER_WINDOW_S of its connect: another client
uses our client id (measured: a takeover fight drops each side 1-2 s after it connects)."""
STABLE_S = 60.0
"""A connection that lasted this long ends a takeover episode: a later one is reported again."""


def protocol_of(settings: MqttSettings) -> int:
    return mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311


def make_client(settings: MqttSettings, client_id: str) -> mqtt.Client:
    """A configured (not yet connected) paho client: protocol, credentials, TLS, backoff.

    Shared by the daemon and ``edge-slider monitor`` so both honour the same [mqtt] keys.
    """
    proto = protocol_of(settings)
    kwargs: dict[str, Any] = {"client_id": client_id, "protocol": proto}
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = True
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    if settings.username:
        # NOTE: the password is handed to paho only; it is never formatted into a log line.
        client.username_pw_set(settings.username, settings.resolved_password() or None)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file or None, certfile=settings.certfile or None,
                       keyfile=settings.keyfile or None,
                       cert_reqs=ssl.CERT_NONE if settings.tls_insecure_skip_verify else ssl.CERT_REQUIRED)
        if settings.tls_insecure_skip_verify:
            log.warning("mqtt.tls_insecure_skip_verify is on: the broker's certificate is NOT checked")
            client.tls_insecure_set(True)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


class _PahoNoise(logging.Filter):
    """paho 2.2 logs an ERROR when its loop runs once more after our own clean disconnect()."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


def paho_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER + ".paho")
    if not logger.filters:
        logger.addFilter(_PahoNoise())
    return logger


def subscribe(client: mqtt.Client, topics: Topics, device_id: str, v5: bool, discovery: bool) -> None:
    """At every connect: the commands, Home Assistant's status and (with discovery) our retained configs."""
    ha_topics = ([homeassistant.discovery_topic(topics, device_id),
                  homeassistant.legacy_filter(topics, device_id)] if discovery else [])
    if v5:
        # NOTE: no_local: we publish our replies under cmd/ too and must not receive them back.
        # retain_as_published: a command published with the retain flag keeps it on a live
        # delivery too, so it is refused now rather than run now and again at every start.
        opts = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True)
        client.subscribe([(topics.cmd_filter, opts), (topics.ha_status, SubscribeOptions(qos=1)),
                          *((t, opts) for t in ha_topics)])
    else:
        client.subscribe([(topics.cmd_filter, 1), (topics.ha_status, 1), *((t, 1) for t in ha_topics)])


class TakeoverWatch:
    """Counts disconnects soon after connecting; warns once per episode about a client-id takeover."""

    def __init__(self, client_id: str):
        self.client_id = client_id
        self.quick_drops = 0
        self.warned = False

    def count_drop(self, last_connect_at: float | None) -> bool:
        """One disconnect; True while a takeover episode is on (the per-disconnect warning is then noise)."""
        up = time.monotonic() - last_connect_at if last_connect_at is not None else float("inf")
        if up >= STABLE_S:
            self.warned = False
        self.quick_drops = self.quick_drops + 1 if up < TAKEOVER_WINDOW_S else 0
        if self.quick_drops >= TAKEOVER_DROPS and not self.warned:
            self.warned = True
            log.warning("MQTT: another client is using client id %s: the broker drops the older of two "
                        "connections with one id, so they keep knocking each other off (%d disconnects, each "
                        "within %.0f s of connecting). Give every device its own device.id / mqtt.client_id, "
                        "check the daemon is not running twice, and on the broker set use_username_as_clientid "
                        "true with one user per device (deploy/mosquitto/README.md)", self.client_id,
                        self.quick_drops, TAKEOVER_WINDOW_S)
        return self.warned and self.quick_drops > 0
