"""``edge-slider bench --soak MINUTES``: the real daemon for a long while, watched from outside.

What runs: ``edge-slider run --simulate`` as its own process (mock pins, a looping real-time
synthetic scene so decisions keep coming), connected to a private Mosquitto, under a fake
systemd: ``$NOTIFY_SOCKET`` is a datagram socket we read, ``$WATCHDOG_USEC`` = 2 s. Every
``train_every_s`` a ``cmd/train`` is sent over MQTT; once, the broker is stopped for
``outage_s`` and started again.

What is measured: RSS every 10 s (growth after the first training, which is the warm-up), ring overruns (from the
retained ``state``), the longest gap between WATCHDOG=1 pings, trainings finished, the time from
the broker's return to ``status = online``, and that the state was re-published after it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edge.tooling.broker import LocalBroker
from edge.memory import rss_mb

log = logging.getLogger(__name__)

WATCHDOG_USEC = 2_000_000


@dataclass
class _Soak:
    """One soak's settings and what its watch loop records."""

    minutes: float
    train_every_s: float
    outage_s: float
    t0: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)
    back_at: float | None = None


class _Notify:
    """A fake systemd's ``$NOTIFY_SOCKET``: a datagram socket read on a thread; WATCHDOG=1 and READY=1 timed."""

    def __init__(self, path: Path):
        self.path = path
        self.pings: list[float] = []
        self.ready: list[float] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.5)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096).decode()
            except socket.timeout:
                continue
            if "WATCHDOG=1" in data:
                self.pings.append(time.monotonic())
            if "READY=1" in data:
                self.ready.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._sock.close()


def run_soak(minutes: float, train_every_s: float = 120.0, outage_s: float = 60.0,
             progress: Callable[[str], None] = print) -> dict[str, Any]:
    from edge.tooling.demo import train_demo_model
    soak = _Soak(minutes, train_every_s, outage_s)
    with tempfile.TemporaryDirectory(prefix="edge-soak-") as tmp:
        work = Path(tmp)
        progress("soak: teaching the demo model ...")
        cfg = train_demo_model(work / "state")
        broker = LocalBroker(work).start()
        conf = work / "config.toml"
        conf.write_text(f'[device]\nid = "soak"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                        '[slider]\ndetach_after_s = 1.0\n')
        notify = _Notify(work / "notify.sock")
        sub, msgs = _watch_mqtt(broker.port)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        daemon = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir",
                                   str(cfg.state_path), "--log-level", "WARNING", "run", "--simulate"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        soak.t0 = time.monotonic()
        try:
            _watch(soak, daemon, broker, sub, notify, progress)
        finally:
            daemon.terminate()
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
            notify.stop()
            sub.loop_stop()
            broker.stop()
            notify.close()
        return _figures(soak, msgs, notify)


def _watch_mqtt(port: int) -> tuple[Any, list[tuple[float, str, Any]]]:
    """A client subscribed to the device's topics; every message is kept as (time, topic, payload)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    msgs: list[tuple[float, str, Any]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-watch")
    sub.on_connect = lambda c, *_: c.subscribe("edge-slider/soak/#", qos=1)

    def on_message(c, u, m):
        try:
            payload = json.loads(m.payload.decode())
        except ValueError:
            payload = m.payload.decode(errors="replace")
        msgs.append((time.monotonic(), m.topic, payload))

    sub.on_message = on_message
    sub.reconnect_delay_set(1, 2)
    sub.connect_async("127.0.0.1", port)
    sub.loop_start()
    return sub, msgs


def _watch(soak: _Soak, daemon: subprocess.Popen, broker: LocalBroker, sub: Any, notify: _Notify,
           progress: Callable[[str], None]) -> None:
    """Every 10 s: the daemon still runs, its RSS, a ``cmd/train`` when due; halfway, the broker outage."""
    t0 = soak.t0
    next_train = t0 + 60
    outage_at = t0 + soak.minutes * 60 / 2
    outage_done = False
    while time.monotonic() - t0 < soak.minutes * 60:
        time.sleep(10)
        now = time.monotonic()
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon died: {daemon.stderr.read()[-500:] if daemon.stderr else ''}")
        mb = rss_mb(daemon.pid)
        soak.rss.append((now - t0, mb))
        if now >= next_train and broker.proc is not None:
            sub.publish("edge-slider/soak/cmd/train", "{}", qos=1)
            next_train = now + soak.train_every_s
        if not outage_done and now >= outage_at:
            progress(f"soak: broker down for {soak.outage_s:.0f} s")
            broker.stop()
            time.sleep(soak.outage_s)
            broker.start()
            soak.back_at = time.monotonic()
            outage_done = True
        progress(f"soak: {(now - t0) / 60:5.1f} min, RSS {mb:.1f} MB, pings {len(notify.pings)}")


def _figures(soak: _Soak, msgs: list[tuple[float, str, Any]], notify: _Notify) -> dict[str, Any]:
    t0, rss, back_at, pings, ready = soak.t0, soak.rss, soak.back_at, notify.pings, notify.ready
    states = [p for _, t, p in msgs if t.endswith("/state") and isinstance(p, dict)]
    # Warm-up ends with the first training: it loads the exporter and grows the heap once.
    first_train = min((ts - t0 for ts, t, p in msgs if t.endswith("/training") and isinstance(p, dict)
                       and p.get("kind") == "training_finished"), default=60.0)
    warm = [m for s, m in rss if s >= first_train + 10] or [m for _, m in rss]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    finished = [p for _, t, p in msgs if t.endswith("/training") and isinstance(p, dict)
                and p.get("kind") == "training_finished"]
    online_after = [ts for ts, t, p in msgs if back_at and ts >= back_at and t.endswith("/status") and p == "online"]
    state_after = [ts for ts, t, p in msgs if back_at and ts >= back_at and t.endswith("/state")]
    return {
        "soak_minutes": soak.minutes,
        "soak_rss_mb_first": rss[0][1] if rss else None,
        "soak_rss_mb_max": max(m for _, m in rss) if rss else None,
        "soak_rss_growth_mb_after_warmup": (max(warm) - warm[0]) if warm else None,
        "soak_overruns": states[-1]["audio"].get("overruns") if states else None,
        "soak_watchdog_pings": len(pings),
        "soak_watchdog_max_gap_s": max(gaps) if gaps else None,
        "soak_watchdog_missed": sum(g > WATCHDOG_USEC / 1e6 for g in gaps),
        "soak_trainings_finished_ok": sum(1 for p in finished if p.get("ok")),
        "soak_trainings_finished": len(finished),
        "soak_broker_return_to_online_s": (online_after[0] - back_at) if online_after and back_at else None,
        "soak_state_republished_after_outage": bool(state_after),
        "soak_decisions": sum(1 for _, t, p in msgs if t.endswith("/event") and isinstance(p, dict)
                              and p.get("kind") == "decision"),
        "soak_ready_s": (ready[0] - t0) if ready else None,
    }
