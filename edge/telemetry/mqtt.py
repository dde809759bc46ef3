"""MQTT telemetry and remote control (paho-mqtt 2.x; MQTT v5 by default, v3.1.1 selectable).

Threads, and why:

* the audio loop calls :meth:`MqttTelemetry.on_event` for every event: it only appends to a
  bounded in-memory queue (O(1), no lock held for long, no network, no JSON);
* one *publisher* thread turns queued events into JSON and hands them to paho while connected,
  and publishes the retained ``state`` when something changed or every ``state_interval_s``;
* paho's own network thread (``loop_start``) connects, reconnects with backoff (1..4 s) and
  delivers incoming commands, which it only queues;
* one *command* worker runs commands against the device, so a slow command (``train`` waits
  for the audio loop) never stalls paho's keepalive.

The outgoing queue holds ``queue_size`` messages while the broker is away; when full the oldest
*prediction* is dropped first, then the oldest event. Command replies are never dropped: the
command worker waits for room before it runs the next command, so a flood backs up into the
bounded command queue, and what does not fit there is counted and answered by ONE
``{"command": "overloaded", "dropped": N}`` reply — every command gets its reply or is counted.
The state is not queued at all: it is a "dirty" flag, so it is never lost and never sent twice
in a row for one burst of changes.

Stale orders: a *retained* ``cmd/*`` message is refused, never run (a command is an order for now;
a retained one would run again at every start and reconnect). One reply and one log line per
retained message say so and how to clear it.

Client-id takeover: the broker keeps one connection per client id and drops the older one, so two
clients with one id knock each other off every second or so. Repeated disconnects within seconds
of connecting are reported once, with the fix, instead of a "connection lost" line every second.
"""

from __future__ import annotations

import functools
import logging
import queue
import ssl
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config import MqttSettings
from edge.control import DeviceControl
from edge.events import (CollectionStarted, DecisionMade, ErrorOccurred, Event, ExamplesCollected,
                         ExamplesDeleted, ExamplesMoved, FalseMoveMarked, ModeChanged, ModelChanged, PositionChanged, PredictionMade, Refused,
                         TrainingFinished, TrainingProgress)
from edge.telemetry import commands, homeassistant, messages
from edge.telemetry.messages import Topics
from edge.telemetry.outqueue import Outgoing, OutQueue

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 4
"""Capped low on purpose: a device must be back within 5 s of its broker's return (a 30 s cap
measured 15.7 s after a 45 s outage); one TCP connect every 4 s is nothing for a broker."""
COMMAND_QUEUE = 32
"""Commands waiting for the worker; more are dropped and counted in one 'overloaded' reply (a flood
cannot grow memory, nor the replies to it)."""
OVERLOAD_REPORT_S = 1.0
"""During a flood, dropped commands are reported at most this often (one reply for many)."""
REPLY_ROOM_WAIT_S = 10.0
"""The command worker waits this long at most for room in the outgoing queue before it runs the
next command (its reply must not push out another one)."""
TAKEOVER_WINDOW_S = 5.0
TAKEOVER_DROPS = 3
"""This many disconnects in a row, each within TAKEOVER_WINDOW_S of its connect: another client
uses our client id (measured: a takeover fight drops each side 1-2 s after it connects)."""
STABLE_S = 60.0
"""A connection that lasted this long ends a takeover episode: a later one is reported again."""
DISCOVERY_SYNC_S = 2.0
"""At connect, discovery waits for the broker's retained discovery configs (what to clear and delete)
until the SUBACK of a later subscription (the broker sends retained messages in order) or this long."""
STOP_FLUSH_S = 2.0
"""stop(): how long to wait for the queue and the retained 'offline' to reach the broker."""

#: Events that change what the retained state shows.
STATE_EVENTS = (ModeChanged, ModelChanged, PositionChanged, ExamplesCollected, ExamplesDeleted, ExamplesMoved, TrainingFinished)
#: Events published on the ``event`` topic.
EVENT_TOPIC_EVENTS = (ExamplesCollected, ExamplesDeleted, ExamplesMoved, Refused, ErrorOccurred, ModelChanged, ModeChanged,
                      CollectionStarted, DecisionMade, FalseMoveMarked)


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


def _paho_logger() -> logging.Logger:
    logger = logging.getLogger(__name__ + ".paho")
    if not logger.filters:
        logger.addFilter(_PahoNoise())
    return logger


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
        self._commands: queue.Queue = queue.Queue(maxsize=COMMAND_QUEUE)
        self._dropped_commands = 0
        """Commands that found the command queue full since the last 'overloaded' reply."""
        self._dropped_lock = threading.Lock()
        self._dropped_reported_at = 0.0
        self._refused_retained: set[tuple[str, bytes]] = set()
        """Retained commands already refused (the broker hands them over at every subscription)."""
        self._quick_drops = 0
        self._takeover_warned = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._connect_fail_logged = False
        self._state_dirty = True
        self._discovery_due = True
        self._discovery_sync: tuple[int, float] | None = None
        """(mid of the sentinel subscription, deadline) while discovery waits for the retained configs."""
        self.discovery = homeassistant.DiscoveryTracker(self.topics, device_id)
        self._next_state = 0.0
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
            client.enable_logger(_paho_logger())
            client.connect_async(s.host, s.port, keepalive=s.keepalive)
            self._client = client
        except Exception as exc:  # noqa: BLE001 - bad TLS files etc.: the device works without MQTT
            log.error("MQTT disabled: cannot set up the client for %s:%d: %s", s.host, s.port, exc)
            return
        log.info("MQTT: connecting to %s:%d as %s (MQTT %s%s), base topic %s", s.host, s.port,
                 s.username or "anonymous", s.protocol, ", TLS" if s.tls else "", self.topics.base)
        for target, name in ((self._publisher, "mqtt-publish"), (self._command_worker, "mqtt-commands")):
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
            self._state_dirty = True
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
        discovery = self.settings.discovery
        ha_topics = ([homeassistant.discovery_topic(self.topics, self.device_id),
                      homeassistant.legacy_filter(self.topics, self.device_id)] if discovery else [])
        if self._v5:
            # NOTE: no_local: we publish our replies under cmd/ too and must not receive them back.
            # retain_as_published: a command published with the retain flag keeps it on a live
            # delivery too, so it is refused now rather than run now and again at every start.
            opts = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True)
            client.subscribe([(self.topics.cmd_filter, opts), (self.topics.ha_status, SubscribeOptions(qos=1)),
                              *((t, opts) for t in ha_topics)])
        else:
            client.subscribe([(self.topics.cmd_filter, 1), (self.topics.ha_status, 1), *((t, 1) for t in ha_topics)])
        self._state_dirty = True
        if discovery:
            # The retained discovery configs arrive before the SUBACK of this later subscription
            # (a topic nobody publishes): only then is it known what to clear and delete.
            self.discovery.reset()
            _, mid = client.subscribe(f"{self.topics.discovery_prefix}/device/{self.device_id}/sync", 1)
            # NOTE: paho gives mid None only when not connected; this runs inside on_connect.
            self._discovery_sync = (mid or 0, time.monotonic() + DISCOVERY_SYNC_S)
        self._discovery_due = True
        self._connected.set()
        self._wake.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        sync = self._discovery_sync
        if sync is not None and sync[0] == mid:
            self._discovery_sync = None
            self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if not was or self._stopping.is_set():
            return
        quiet = self._count_quick_drop()
        log.log(logging.DEBUG if quiet else logging.WARNING,
                "MQTT: connection lost (%s); reconnecting with backoff %d..%d s", reason_code,
                RECONNECT_MIN_S, RECONNECT_MAX_S)

    def _count_quick_drop(self) -> bool:
        """Track disconnects soon after connecting; warn once about a client-id takeover.

        Returns True while a takeover episode is on (the per-disconnect warning is then noise)."""
        up = time.monotonic() - self.last_connect_at if self.last_connect_at is not None else float("inf")
        if up >= STABLE_S:
            self._takeover_warned = False
        self._quick_drops = self._quick_drops + 1 if up < TAKEOVER_WINDOW_S else 0
        if self._quick_drops >= TAKEOVER_DROPS and not self._takeover_warned:
            self._takeover_warned = True
            log.warning("MQTT: another client is using client id %s: the broker drops the older of two "
                        "connections with one id, so they keep knocking each other off (%d disconnects, each "
                        "within %.0f s of connecting). Give every device its own device.id / mqtt.client_id, "
                        "check the daemon is not running twice, and on the broker set use_username_as_clientid "
                        "true with one user per device (deploy/mosquitto/README.md)", self.client_id,
                        self._quick_drops, TAKEOVER_WINDOW_S)
        return self._takeover_warned and self._quick_drops > 0

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
                self._discovery_due = True
                self._wake.set()
            return
        if topic.startswith(self.topics.discovery_prefix + "/") and not topic.startswith(self.topics.base + "/"):
            if self.discovery.on_message(topic, bytes(msg.payload)):
                self._discovery_due = True
                self._wake.set()
            return
        name = self.topics.command_name(topic)
        if name is None:
            return
        response_topic, correlation = self._response_props(msg)
        payload = bytes(msg.payload)
        if msg.retain or (not payload and self._is_clear(topic)):
            self._refuse_retained(topic, name, payload, response_topic, correlation)
            return
        try:
            self._commands.put_nowait((name, bytes(msg.payload), response_topic, correlation))
        except queue.Full:
            # NOTE: no reply each: 1,000 "busy" replies would overflow the outgoing queue in turn.
            # The worker answers once for all of them (see _report_dropped).
            with self._dropped_lock:
                self._dropped_commands += 1

    def _is_clear(self, topic: str) -> bool:
        """An empty message on a topic whose retained command we refused is its clearing
        (``mosquitto_pub -r -n``): MQTT 3.1.1 delivers it without the retain flag, and an empty
        ``cmd/train`` would otherwise train."""
        return any(t == topic for t, _ in self._refused_retained)

    def _refuse_retained(self, topic: str, name: str, payload: bytes, response_topic: str | None,
                         correlation: bytes | None) -> None:
        """A retained command is a stale order (it would run again at every start): refuse it once."""
        if not payload:  # an empty retained message deletes the retained one: nothing to run or answer
            self._refused_retained = {k for k in self._refused_retained if k[0] != topic}
            log.info("MQTT: retained command on %s cleared", topic[:200])
            return
        key = (topic, payload)
        if key in self._refused_retained:
            return
        if len(self._refused_retained) < COMMAND_QUEUE * 8:  # bounded: a flood of retained topics
            self._refused_retained.add(key)
        shown = topic if len(topic) <= 200 else topic[:197] + "..."
        error = (f"refused: a retained command is not run (it would run again at every start). "
                 f"Send commands without -r/retain; clear this one with: mosquitto_pub -r -n -t {shown}")
        log.warning("MQTT: retained command on %s refused, not run: commands are orders for now, a retained "
                    "one would repeat at every start and reconnect. Clear it with: mosquitto_pub -r -n -t %s "
                    "(plus your -h/-u/-P options)", shown, shown)
        self._reply(messages.result_payload(name[:100], False, error=error), response_topic, correlation)

    def _response_props(self, msg: mqtt.MQTTMessage) -> tuple[str | None, bytes | None]:
        props = getattr(msg, "properties", None)
        if not self._v5 or props is None:
            return None, None
        topic = getattr(props, "ResponseTopic", None)
        corr = getattr(props, "CorrelationData", None)
        return (topic or None), (bytes(corr) if corr is not None else None)

    # ------------------------------------------------------------------ commands (worker thread)
    def _command_worker(self) -> None:
        while not self._stopping.is_set():
            self._wait_for_reply_room()
            try:
                item = self._commands.get(timeout=0.2)
            except queue.Empty:
                self._report_dropped()
                continue
            name, payload, response_topic, correlation = item
            reply = commands.handle(name, payload, self.control, self.settings.max_payload_bytes)
            log.info("MQTT command %s: %s", reply["command"], "ok" if reply["ok"] else reply["error"])
            self._reply(reply, response_topic, correlation)
            if reply["ok"]:
                # A command that changes state (threshold, listen during training, ...) may send no
                # state event: publish the state now, or HA's slider snaps back for state_interval_s.
                self._state_dirty = True
                self._wake.set()
            # NOTE: one 'overloaded' reply per burst (when it is over), at most one a second in a flood
            if self._commands.empty() or time.monotonic() - self._dropped_reported_at >= OVERLOAD_REPORT_S:
                self._report_dropped()

    def _wait_for_reply_room(self) -> None:
        """Back-pressure: the next command runs only when its reply has room to wait in."""
        deadline = time.monotonic() + REPLY_ROOM_WAIT_S
        while not self.out.has_room() and not self._stopping.is_set() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def _report_dropped(self) -> None:
        """One reply for every command the full command queue had to drop since the last one."""
        with self._dropped_lock:
            n, self._dropped_commands = self._dropped_commands, 0
        if n == 0:
            return
        self._dropped_reported_at = time.monotonic()
        log.warning("MQTT: overloaded: %d commands dropped unanswered (more than %d waiting)", n, COMMAND_QUEUE)
        reply = messages.result_payload("overloaded", False, error=f"overloaded: {n} commands dropped unanswered "
                                        f"(more than {COMMAND_QUEUE} waiting); send fewer at a time")
        reply["dropped"] = n
        self._reply(reply, None, None)

    def _reply(self, reply: dict[str, Any], response_topic: str | None, correlation: bytes | None) -> None:
        payload = messages.dumps(reply)
        self.out.put(Outgoing(self.topics.cmd_result, payload), reply=True)
        if response_topic:
            props = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                props.CorrelationData = correlation
            self.out.put(Outgoing(response_topic, payload, properties=props), reply=True)
        self._wake.set()

    # ------------------------------------------------------------------ publishing (publisher thread)
    def _publisher(self) -> None:
        stalled = False
        while not self._stopping.is_set():
            timeout = max(0.05, self._next_state - time.monotonic()) if self._connected.is_set() else 0.5
            # NOTE: paho's own queue full (max_queued_messages): retry soon, not at the next event.
            self._wake.wait(0.02 if stalled else timeout)
            self._wake.clear()
            stalled = False
            if not self._connected.is_set() or self._client is None:
                continue
            try:
                stalled = self._publish_due()
            except Exception:  # noqa: BLE001 - the publisher must survive a bad snapshot or payload
                log.exception("MQTT: publishing failed")
                time.sleep(0.5)

    def _publish_due(self) -> bool:
        """Publish what is due; True when paho could not take a message (try again soon)."""
        sync = self._discovery_sync
        if sync is not None and time.monotonic() >= sync[1]:
            log.debug("MQTT: no SUBACK for the discovery sync subscription; publishing discovery anyway")
            self._discovery_sync = sync = None
        if self._discovery_due and self.settings.discovery and sync is None:
            self._discovery_due = False
            self._publish_discovery()
        now = time.monotonic()
        if self._state_dirty or now >= self._next_state:
            self._state_dirty = False
            self._next_state = now + self.settings.state_interval_s
            self._send(Outgoing(self.topics.state, messages.state_payload(self.control.snapshot()), retain=True))
        while self._connected.is_set():
            item = self.out.get()
            if item is None:
                break
            if not self._send(item):
                if item.qos > 0:
                    self.out.push_front(item)
                return True
        return False

    def _publish_discovery(self) -> None:
        """Clear older versions' per-entity configs, then publish the one device config."""
        tracker = self.discovery
        for topic in sorted(tracker.stale_topics):
            # NOTE: first: HA refuses a device-config entity whose discovery id another topic holds.
            if self._send(Outgoing(topic, b"", retain=True)):
                tracker.stale_topics.discard(topic)
                log.info("MQTT: cleared the old per-entity discovery config %s", topic)
        labels = tuple(self.control.labels)
        current = homeassistant.components(self.topics, self.device_id, labels)
        removed = tracker.removed(current)
        if removed:
            log.info("MQTT: removing Home Assistant entities of components this device no longer has: %s",
                     ", ".join(sorted(removed)))
        config = homeassistant.device_config(self.topics, self.device_id, self.version, labels, removed)
        if self._send(Outgoing(homeassistant.discovery_topic(self.topics, self.device_id),
                               messages.dumps(config), retain=True)):
            tracker.previous = {cid: c["p"] for cid, c in current.items()}
            tracker.current = set(current)

    def _send(self, item: Outgoing) -> bool:
        client = self._client
        if client is None:
            return False
        payload = item.payload() if callable(item.payload) else item.payload
        try:
            info = client.publish(item.topic, payload, qos=item.qos, retain=item.retain, properties=item.properties)
        except (ValueError, TypeError) as exc:  # e.g. a response_topic with wildcards
            log.warning("MQTT: not publishing to %r: %s", item.topic[:100], exc)
            return True
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return True
        log.debug("MQTT: publish to %s not accepted (%s)", item.topic, mqtt.error_string(info.rc))
        return False
