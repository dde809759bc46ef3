"""MQTT telemetry and remote control (paho-mqtt 2.x; MQTT v5 by default, v3.1.1 selectable).

Threads, and why:

* the audio loop calls :meth:`MqttTelemetry.on_event` for every event: it only appends to a
  bounded in-memory queue (O(1), no lock held for long, no network, no JSON);
* one *publisher* thread (:mod:`edge.telemetry.publisher`) turns queued events into JSON and hands
  them to paho while connected, publishes Home Assistant discovery, and the retained ``state`` when
  something changed or every ``state_interval_s``;
* paho's own network thread (``loop_start``) connects, reconnects with backoff (1..4 s) and
  delivers incoming commands, which it only queues (:mod:`edge.telemetry.connection`: the client,
  the subscriptions, the client-id takeover watch);
* one *command* worker (:mod:`edge.telemetry.command_inbox`) runs commands against the device, so a
  slow command (``train`` waits for the audio loop) never stalls paho's keepalive.

The outgoing queue holds ``queue_size`` messages while the broker is away; when full the oldest
*prediction* is dropped first, then the oldest event. Command replies are never dropped (see
:mod:`edge.telemetry.command_inbox`, which also refuses retained commands).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from edge.config import MqttSettings
from edge.control import DeviceControl
from edge.events import (CollectionStarted, DecisionMade, ErrorOccurred, Event, ExamplesCollected,
                         ExamplesDeleted, ExamplesMoved, FalseMoveMarked, ModeChanged, ModelChanged, PositionChanged, PredictionMade, Refused,
                         TrainingFinished, TrainingProgress)
from edge.telemetry import messages
from edge.telemetry.command_inbox import CommandInbox
from edge.telemetry.connection import (LOGGER, RECONNECT_MAX_S, RECONNECT_MIN_S, TakeoverWatch, make_client,
                                       paho_logger, protocol_of, subscribe)
from edge.telemetry.messages import Topics
from edge.telemetry.outqueue import Outgoing, OutQueue
from edge.telemetry.publisher import Publisher

__all__ = ["MqttTelemetry", "make_client", "protocol_of"]

log = logging.getLogger(LOGGER)

STOP_FLUSH_S = 2.0
"""stop(): how long to wait for the queue and the retained 'offline' to reach the broker."""

#: Events that change what the retained state shows.
STATE_EVENTS = (ModeChanged, ModelChanged, PositionChanged, ExamplesCollected, ExamplesDeleted, ExamplesMoved, TrainingFinished)
#: Events published on the ``event`` topic.
EVENT_TOPIC_EVENTS = (ExamplesCollected, ExamplesDeleted, ExamplesMoved, Refused, ErrorOccurred, ModelChanged, ModeChanged,
                      CollectionStarted, DecisionMade, FalseMoveMarked)


# ---------------------------------------------------------------------- the client
class MqttTelemetry:
    """Publishes the device's status, state, predictions and events; executes remote commands."""

    def __init__(self, settings: MqttSettings, device_id: str, control: DeviceControl, version: str,
                 client_factory: Callable[[MqttSettings, str], mqtt.Client] = make_client):
        self.settings = settings
        self.device_id = device_id
        self.control = control
        self.version = version
        self.topics = Topics(settings.topic(device_id), settings.discovery_prefix)
        self.client_id = settings.client_id or f"edge-slider-{device_id}"
        self._client_factory = client_factory
        self._client: mqtt.Client | None = None
        self._v5 = settings.protocol == "5"
        self.out = OutQueue(settings.queue_size)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self.publisher = Publisher(settings, self.topics, device_id, version, control, self.out,
                                   (self._wake, self._stopping, self._connected), lambda: self._client)
        self.discovery = self.publisher.discovery
        self.inbox = CommandInbox(self.topics, control, settings.max_payload_bytes, self._v5, self.out,
                                  self._wake, self._stopping, self.publisher.state_changed)
        self._takeover = TakeoverWatch(self.client_id)
        self._connect_fail_logged = False
        self._last_pred_t = -float("inf")
        self._last_pred_label: str | None = None
        self._threads: list[threading.Thread] = []
        self.connects = 0
        """Successful connections so far (tests and the state report use it)."""
        self.last_connect_at: float | None = None
        """time.monotonic() of the last successful CONNACK."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background. Never raises: a missing broker only means retries and a log line."""
        if self._client is not None:
            return
        s = self.settings
        try:
            client = self._client_factory(s, self.client_id)
            client.will_set(self.topics.status, messages.status_payload(False), qos=1, retain=True)
            client.max_queued_messages_set(s.queue_size)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_connect_fail = self._on_connect_fail
            client.on_message = self._on_message
            client.on_subscribe = self._on_subscribe
            client.enable_logger(paho_logger())
            client.connect_async(s.host, s.port, keepalive=s.keepalive)
            self._client = client
        except Exception as exc:  # noqa: BLE001 - bad TLS files etc.: the device works without MQTT
            log.error("MQTT disabled: cannot set up the client for %s:%d: %s", s.host, s.port, exc)
            return
        log.info("MQTT: connecting to %s:%d as %s (MQTT %s%s), base topic %s", s.host, s.port,
                 s.username or "anonymous", s.protocol, ", TLS" if s.tls else "", self.topics.base)
        for target, name in ((self.publisher.run, "mqtt-publish"), (self.inbox.run, "mqtt-commands")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        client.loop_start()

    def stop(self) -> None:
        """Flush briefly, publish the retained 'offline' (a clean disconnect sends no will), disconnect."""
        client, self._client = self._client, None
        if client is None:
            return
        if self._connected.is_set():
            deadline = time.monotonic() + STOP_FLUSH_S / 2
            while len(self.out) and self._connected.is_set() and time.monotonic() < deadline:
                self._wake.set()
                time.sleep(0.01)
        self._stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=STOP_FLUSH_S)
        self._threads.clear()
        if self._connected.is_set():
            try:
                info = client.publish(self.topics.status, messages.status_payload(False), qos=1, retain=True)
                info.wait_for_publish(timeout=STOP_FLUSH_S)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not publish offline status: %s", exc)
        client.disconnect()
        client.loop_stop()
        self._connected.clear()
        log.info("MQTT: disconnected")

    # ------------------------------------------------------------------ events (audio loop thread)
    def on_event(self, event: Event) -> None:
        """Enqueue only: called on the audio loop thread for every event, so O(1) and never blocking."""
        if isinstance(event, PredictionMade):
            self._on_prediction(event)
            return
        if isinstance(event, STATE_EVENTS):
            self.publisher.state_dirty = True
        if isinstance(event, (TrainingProgress, TrainingFinished)):
            self.out.put(Outgoing(self.topics.training, functools.partial(messages.training_payload, event)))
        elif isinstance(event, EVENT_TOPIC_EVENTS):
            self.out.put(Outgoing(self.topics.event, functools.partial(messages.event_payload, event, time.time())))
        self._wake.set()

    def _on_prediction(self, event: PredictionMade) -> None:
        now = time.monotonic()
        changed = event.label != self._last_pred_label
        if not changed and now - self._last_pred_t < self.settings.prediction_interval_s:
            return
        self._last_pred_t, self._last_pred_label = now, event.label
        self.out.put(Outgoing(self.topics.prediction, functools.partial(messages.prediction_payload, event), qos=0),
                     prediction=True)
        self._wake.set()

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("MQTT: broker %s:%d refused the connection: %s", self.settings.host, self.settings.port,
                      reason_code)
            return
        self.connects += 1
        self._connect_fail_logged = False
        self.last_connect_at = time.monotonic()
        log.info("MQTT: connected to %s:%d", self.settings.host, self.settings.port)
        client.publish(self.topics.status, messages.status_payload(True), qos=1, retain=True)
        subscribe(client, self.topics, self.device_id, self._v5, self.settings.discovery)
        self.publisher.on_connect(client)
        self._connected.set()
        self._wake.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        self.publisher.on_subscribe(mid)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if not was or self._stopping.is_set():
            return
        quiet = self._takeover.count_drop(self.last_connect_at)
        log.log(logging.DEBUG if quiet else logging.WARNING,
                "MQTT: connection lost (%s); reconnecting with backoff %d..%d s", reason_code,
                RECONNECT_MIN_S, RECONNECT_MAX_S)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # NOTE: say it once at WARNING (a user wonders why nothing shows up), then quietly retry.
        level = logging.DEBUG if self._connect_fail_logged else logging.WARNING
        self._connect_fail_logged = True
        log.log(level, "MQTT: broker %s:%d not reachable; the device works without it and keeps retrying "
                "(backoff %d..%d s)", self.settings.host, self.settings.port, RECONNECT_MIN_S, RECONNECT_MAX_S)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            return
        if topic == self.topics.ha_status:
            if msg.payload == messages.ONLINE.encode():
                self.publisher.discovery_changed()
            return
        if topic.startswith(self.topics.discovery_prefix + "/") and not topic.startswith(self.topics.base + "/"):
            self.publisher.on_discovery_message(topic, bytes(msg.payload))
            return
        name = self.topics.command_name(topic)
        if name is None:
            return
        self.inbox.offer(topic, name, msg)
