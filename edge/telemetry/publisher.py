"""The publisher thread: Home Assistant discovery, the retained ``state`` and the outgoing queue.

It turns queued events into JSON and hands them to paho while connected, and publishes the retained
``state`` when something changed or every ``state_interval_s``. The state is not queued at all: it
is a "dirty" flag, so it is never lost and never sent twice in a row for one burst of changes.

Discovery goes out at every connect, once the broker has handed over the retained discovery configs
(what to clear and delete, :class:`~edge.telemetry.homeassistant.DiscoveryTracker`): their end is
the SUBACK of a later subscription, or ``DISCOVERY_SYNC_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from edge.config import MqttSettings
from edge.control import DeviceControl
from edge.telemetry import homeassistant, messages
from edge.telemetry.connection import LOGGER
from edge.telemetry.messages import Topics
from edge.telemetry.outqueue import Outgoing, OutQueue

log = logging.getLogger(LOGGER)

DISCOVERY_SYNC_S = 2.0
"""At connect, discovery waits for the broker's retained discovery configs (what to clear and delete)
until the SUBACK of a later subscription (the broker sends retained messages in order) or this long."""


class Publisher:
    """What is due to go out, and the loop that sends it (``run`` on its own thread)."""

    def __init__(self, settings: MqttSettings, topics: Topics, device_id: str, version: str, control: DeviceControl,
                 out: OutQueue, events: tuple[threading.Event, threading.Event, threading.Event],
                 client_of: Callable[[], mqtt.Client | None]):
        self.settings = settings
        self.topics = topics
        self.device_id = device_id
        self.version = version
        self.control = control
        self.out = out
        self._wake, self._stopping, self._connected = events
        self._client_of = client_of
        self.state_dirty = True
        self.discovery_due = True
        self._discovery_sync: tuple[int, float] | None = None
        """(mid of the sentinel subscription, deadline) while discovery waits for the retained configs."""
        self.discovery = homeassistant.DiscoveryTracker(topics, device_id)
        self._next_state = 0.0

    # ------------------------------------------------------------------ other threads
    def state_changed(self) -> None:
        self.state_dirty = True
        self._wake.set()

    def discovery_changed(self) -> None:
        self.discovery_due = True
        self._wake.set()

    def on_connect(self, client: mqtt.Client) -> None:
        """Inside paho's on_connect: the state and discovery are due (discovery after the retained configs)."""
        self.state_dirty = True
        if self.settings.discovery:
            # The retained discovery configs arrive before the SUBACK of this later subscription
            # (a topic nobody publishes): only then is it known what to clear and delete.
            self.discovery.reset()
            _, mid = client.subscribe(f"{self.topics.discovery_prefix}/device/{self.device_id}/sync", 1)
            # NOTE: paho gives mid None only when not connected; this runs inside on_connect.
            self._discovery_sync = (mid or 0, time.monotonic() + DISCOVERY_SYNC_S)
        self.discovery_due = True

    def on_subscribe(self, mid: int) -> None:
        sync = self._discovery_sync
        if sync is not None and sync[0] == mid:
            self._discovery_sync = None
            self._wake.set()

    def on_discovery_message(self, topic: str, payload: bytes) -> None:
        if self.discovery.on_message(topic, payload):
            self.discovery_changed()

    # ------------------------------------------------------------------ publisher thread
    def run(self) -> None:
        stalled = False
        while not self._stopping.is_set():
            timeout = max(0.05, self._next_state - time.monotonic()) if self._connected.is_set() else 0.5
            # NOTE: paho's own queue full (max_queued_messages): retry soon, not at the next event.
            self._wake.wait(0.02 if stalled else timeout)
            self._wake.clear()
            stalled = False
            if not self._connected.is_set() or self._client_of() is None:
                continue
            try:
                stalled = self.publish_due()
            except Exception:  # noqa: BLE001 - the publisher must survive a bad snapshot or payload
                log.exception("MQTT: publishing failed")
                time.sleep(0.5)

    def publish_due(self) -> bool:
        """Publish what is due; True when paho could not take a message (try again soon)."""
        sync = self._discovery_sync
        if sync is not None and time.monotonic() >= sync[1]:
            log.debug("MQTT: no SUBACK for the discovery sync subscription; publishing discovery anyway")
            self._discovery_sync = sync = None
        if self.discovery_due and self.settings.discovery and sync is None:
            self.discovery_due = False
            self._publish_discovery()
        now = time.monotonic()
        if self.state_dirty or now >= self._next_state:
            self.state_dirty = False
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
        client = self._client_of()
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
