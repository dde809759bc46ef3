"""Incoming ``cmd/*`` messages: queued off paho's network thread, run one at a time on the command
worker, answered on ``cmd/result`` (and the MQTT v5 response topic). Parsing and validation of each
payload is :func:`edge.telemetry.commands.handle`.

Command replies are never dropped: the worker waits for room in the outgoing queue before it runs
the next command, so a flood backs up into the bounded command queue, and what does not fit there is
counted and answered by ONE ``{"command": "overloaded", "dropped": N}`` reply — every command gets
its reply or is counted.

Stale orders: a *retained* ``cmd/*`` message is refused, never run (a command is an order for now;
a retained one would run again at every start and reconnect). One reply and one log line per
retained message say so and how to clear it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.control import DeviceControl
from edge.telemetry import commands, messages
from edge.telemetry.connection import LOGGER
from edge.telemetry.messages import Topics
from edge.telemetry.outqueue import Outgoing, OutQueue

log = logging.getLogger(LOGGER)

COMMAND_QUEUE = 32
"""Commands waiting for the worker; more are dropped and counted in one 'overloaded' reply (a flood
cannot grow memory, nor the replies to it)."""
OVERLOAD_REPORT_S = 1.0
"""During a flood, dropped commands are reported at most this often (one reply for many)."""
REPLY_ROOM_WAIT_S = 10.0
"""The command worker waits this long at most for room in the outgoing queue before it runs the
next command (its reply must not push out another one)."""


class CommandInbox:
    """The command queue, its worker and the replies; ``on_success`` runs after every command that succeeded."""

    def __init__(self, topics: Topics, control: DeviceControl, max_payload_bytes: int, v5: bool, out: OutQueue,
                 wake: threading.Event, stopping: threading.Event, on_success: Callable[[], None]):
        self.topics = topics
        self.control = control
        self.max_payload_bytes = max_payload_bytes
        self._v5 = v5
        self.out = out
        self._wake = wake
        self._stopping = stopping
        self._on_success = on_success
        self._commands: queue.Queue = queue.Queue(maxsize=COMMAND_QUEUE)
        self._dropped_commands = 0
        """Commands that found the command queue full since the last 'overloaded' reply."""
        self._dropped_lock = threading.Lock()
        self._dropped_reported_at = 0.0
        self._refused_retained: set[tuple[str, bytes]] = set()
        """Retained commands already refused (the broker hands them over at every subscription)."""

    # ------------------------------------------------------------------ network thread
    def offer(self, topic: str, name: str, msg: mqtt.MQTTMessage) -> None:
        """Queue the command ``name`` (or refuse a retained one); never blocks."""
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

    # ------------------------------------------------------------------ worker thread
    def run(self) -> None:
        while not self._stopping.is_set():
            self._wait_for_reply_room()
            try:
                item = self._commands.get(timeout=0.2)
            except queue.Empty:
                self._report_dropped()
                continue
            name, payload, response_topic, correlation = item
            reply = commands.handle(name, payload, self.control, self.max_payload_bytes)
            log.info("MQTT command %s: %s", reply["command"], "ok" if reply["ok"] else reply["error"])
            self._reply(reply, response_topic, correlation)
            if reply["ok"]:
                # A command that changes state (threshold, listen during training, ...) may send no
                # state event: publish the state now, or HA's slider snaps back for state_interval_s.
                self._on_success()
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
