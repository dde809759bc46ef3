"""``edge-slider monitor``: a live terminal view of one device, from its MQTT topics only.

It subscribes to the device's ``status``, ``state``, ``prediction``, ``training`` and ``event``
topics with the config's [mqtt] connection settings (so it works from any machine that can reach
the broker, and needs no access to the device itself), keeps the latest of each in a
:class:`MonitorView`, and redraws a few times a second. ``--once`` waits for the retained
status and state, prints one snapshot and exits (scripts and tests use it).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from edge.config import SLIDER_MAX, SLIDER_MIN, Config
from edge.errors import CommandError
from edge.telemetry.messages import Topics, decode_json
from edge.telemetry.connection import make_client

log = logging.getLogger(__name__)

BAR_WIDTH = 30
REDRAW_S = 0.25
EVENTS_SHOWN = 6


@dataclass
class MonitorView:
    """The latest known picture of the device; fed by MQTT messages, rendered as text."""

    topics: Topics
    status: str | None = None
    state: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))
    updated: threading.Event = field(default_factory=threading.Event)

    def feed(self, topic: str, payload: bytes) -> None:
        value = decode_json(payload)
        t = self.topics
        if topic == t.status:
            self.status = value if isinstance(value, str) else str(value)
        elif topic == t.state and isinstance(value, dict):
            self.state = value
        elif topic == t.prediction and isinstance(value, dict):
            self.prediction = value
        elif topic == t.training and isinstance(value, dict):
            self.training = value
        elif topic == t.event and isinstance(value, dict):
            self.events.append(value)
        self.updated.set()

    @property
    def complete(self) -> bool:
        """Both retained messages have arrived (what --once waits for)."""
        return self.status is not None and self.state is not None

    def render(self) -> str:
        lines = [f"edge-slider monitor — {self.topics.base}   status: {self.status or '?'}"]
        st = self.state or {}
        if not st:
            lines.append("(no state received yet)")
        else:
            lines += self._state_lines(st)
        lines += self._prediction_lines(st)
        if self.training:
            tr = self.training
            if tr.get("kind") == "training_progress":
                lines.append(f"training: epoch {tr.get('epoch')}/{tr.get('epochs')}  loss {_f(tr.get('loss'))}  "
                             f"acc {_f(tr.get('accuracy'))}  val {_f(tr.get('val_accuracy'))}")
            else:
                lines.append(f"training finished: ok={tr.get('ok')} v{tr.get('version')} "
                             f"val {_f(tr.get('val_accuracy'))} in {_f(tr.get('seconds'), 1)} s"
                             + (f" — {tr.get('error')}" if tr.get("error") else ""))
        if self.events:
            lines.append("recent events:")
            lines += [f"  {_event_line(e)}" for e in self.events]
        return "\n".join(lines)

    @staticmethod
    def _state_lines(st: dict[str, Any]) -> list[str]:
        model = st.get("model") or {}
        audio = st.get("audio") or {}
        mode = st.get("mode", "?") + (f" ({st['collecting']})" if st.get("collecting") else "")
        counts = st.get("labels") or {}
        position = st.get("position")
        lines = [
            f"mode: {mode}   model: v{model.get('version')} val_acc {_f(model.get('val_accuracy'))}   "
            f"threshold {_f(st.get('threshold'), 2)}   decisions: {st.get('decision_mode', '?')}",
            "examples: " + ("  ".join(f"{k} {v}" for k, v in counts.items()) or "none"),
        ]
        if isinstance(position, (int, float)):
            lines.append(f"position: {_bar((position - SLIDER_MIN) / (SLIDER_MAX - SLIDER_MIN))} {position:4.1f}")
        lines.append(f"health: level {_f(audio.get('level_dbfs'), 1)} dBFS  overruns {audio.get('overruns', '?')}  "
                     f"classify {_f(st.get('classify_us'), 0)} µs  cpu {_f(st.get('cpu_percent'), 1)} %  "
                     f"rss {_f(st.get('rss_mb'), 1)} MB  up {_f(st.get('uptime_s'), 0)} s  "
                     f"v{st.get('version', '?')}"
                     + (f"  audio error: {audio['error']}" if audio.get("error") else ""))
        return lines

    def _prediction_lines(self, st: dict[str, Any]) -> list[str]:
        pred = self.prediction
        if not pred:
            return [f"last label: {st.get('last_label') or '—'}"]
        probs = pred.get("probs") or {}
        lines = [f"prediction: {pred.get('label')} ({_f(pred.get('score'), 2)}) at t={_f(pred.get('t'), 2)} s"]
        width = max((len(str(k)) for k in probs), default=0)
        for label, p in probs.items():
            if isinstance(p, (int, float)):
                lines.append(f"  {str(label):<{width}} {_bar(float(p))} {p:5.2f}")
        return lines


def _f(x: Any, nd: int = 3) -> str:
    return f"{x:.{nd}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    n = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * n + "·" * (width - n)


def _event_line(e: dict[str, Any]) -> str:
    kind = e.get("kind", "?")
    details = {k: v for k, v in e.items() if k not in ("kind", "ts", "counts", "probs")}
    stamp = time.strftime("%H:%M:%S", time.localtime(e["ts"])) if isinstance(e.get("ts"), (int, float)) else ""
    return f"{stamp} {kind}: " + ", ".join(f"{k}={v}" for k, v in details.items())


# ---------------------------------------------------------------------- running
def connect_view(config: Config, device_id: str) -> tuple[Any, MonitorView, threading.Event]:
    """Connect and subscribe; returns (client, view, connect_failed flag). Raises CommandError early."""
    s = config.mqtt
    topics = Topics(s.topic(device_id), s.discovery_prefix)
    view = MonitorView(topics)
    refused = threading.Event()
    reason: list[str] = []
    try:
        client = make_client(s, f"edge-slider-monitor-{os.getpid()}")
    except Exception as exc:  # noqa: BLE001 - bad TLS files etc.
        raise CommandError(f"cannot set up the MQTT client: {exc}") from None

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            reason.append(str(reason_code))
            refused.set()
            return
        c.subscribe([(t, 0) for t in (topics.status, topics.state, topics.prediction, topics.training,
                                      topics.event)])

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: view.feed(msg.topic, bytes(msg.payload))
    client.user_data_set(reason)
    try:
        client.connect(s.host, s.port, keepalive=s.keepalive)
    except Exception as exc:  # noqa: BLE001 - OSError, ssl errors: one line for the user
        raise CommandError(f"cannot connect to the broker {s.host}:{s.port}: {exc}") from None
    client.loop_start()
    return client, view, refused


def run_monitor(config: Config, device_id: str, once: bool = False, timeout: float = 5.0,
                out: TextIO | None = None, should_stop: Callable[[], bool] = lambda: False) -> int:
    out = out or sys.stdout
    client, view, refused = connect_view(config, device_id)
    try:
        if once:
            return _once(config, view, refused, client, timeout, out)
        return _live(view, refused, client, out, should_stop)
    finally:
        client.disconnect()
        client.loop_stop()


def _once(config: Config, view: MonitorView, refused: threading.Event, client: Any, timeout: float,
          out: TextIO) -> int:
    deadline = time.monotonic() + timeout
    while not view.complete and time.monotonic() < deadline:
        if refused.is_set():
            raise CommandError(f"the broker refused the connection: {', '.join(client.user_data_get() or [])}")
        view.updated.wait(0.05)
        view.updated.clear()
    if view.status is None and view.state is None:
        raise CommandError(f"no status or state from device {view.topics.base!r} on "
                           f"{config.mqtt.host}:{config.mqtt.port} within {timeout:g} s (wrong --device?)")
    # NOTE: a short grace so a prediction published together with the state shows up too.
    time.sleep(0.1)
    out.write(view.render() + "\n")
    out.flush()
    return 0


def _live(view: MonitorView, refused: threading.Event, client: Any, out: TextIO,
          should_stop: Callable[[], bool]) -> int:
    tty = out.isatty()
    try:
        while not should_stop():
            if refused.is_set():
                raise CommandError(f"the broker refused the connection: {', '.join(client.user_data_get() or [])}")
            changed = view.updated.wait(REDRAW_S)
            view.updated.clear()
            # NOTE: clear + home only on a terminal; piped (`monitor | tee log`) it prints only on news.
            if tty:
                out.write("\x1b[H\x1b[2J" + view.render() + "\n")
            elif changed:
                out.write("\n" + view.render() + "\n")
            out.flush()
            time.sleep(REDRAW_S)
    except KeyboardInterrupt:
        pass
    return 0
