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
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edge.tooling.broker import LocalBroker
from edge.memory import rss_mb

log = logging.getLogger(__name__)

WATCHDOG_USEC = 2_000_000


def run_soak(minutes: float, train_every_s: float = 120.0, outage_s: float = 60.0,
             progress: Callable[[str], None] = print) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from edge.tooling.bench import train_demo_model
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edge-soak-") as tmp:
        work = Path(tmp)
        progress("soak: teaching the demo model ...")
        cfg = train_demo_model(work / "state")
        broker = LocalBroker(work).start()
        conf = work / "config.toml"
        conf.write_text(f'[device]\nid = "soak"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                        '[slider]\ndetach_after_s = 1.0\n')
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(work / "notify.sock"))
        notify.settimeout(0.5)
        pings: list[float] = []
        ready: list[float] = []
        stop = threading.Event()

        def read_notify() -> None:
            while not stop.is_set():
                try:
                    data = notify.recv(4096).decode()
                except socket.timeout:
                    continue
                if "WATCHDOG=1" in data:
                    pings.append(time.monotonic())
                if "READY=1" in data:
                    ready.append(time.monotonic())

        threading.Thread(target=read_notify, daemon=True).start()
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
        sub.connect_async("127.0.0.1", broker.port)
        sub.loop_start()
        env = {**__import__("os").environ, "NOTIFY_SOCKET": str(work / "notify.sock"),
               "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        daemon = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir",
                                   str(cfg.state_path), "--log-level", "WARNING", "run", "--simulate"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        rss: list[tuple[float, float]] = []
        next_train = t0 + 60
        outage_at = t0 + minutes * 60 / 2
        outage_done = False
        back_at: float | None = None
        try:
            while time.monotonic() - t0 < minutes * 60:
                time.sleep(10)
                now = time.monotonic()
                if daemon.poll() is not None:
                    raise RuntimeError(f"the daemon died: {daemon.stderr.read()[-500:] if daemon.stderr else ''}")
                mb = rss_mb(daemon.pid)
                rss.append((now - t0, mb))
                if now >= next_train and broker.proc is not None:
                    sub.publish("edge-slider/soak/cmd/train", "{}", qos=1)
                    next_train = now + train_every_s
                if not outage_done and now >= outage_at:
                    progress(f"soak: broker down for {outage_s:.0f} s")
                    broker.stop()
                    time.sleep(outage_s)
                    broker.start()
                    back_at = time.monotonic()
                    outage_done = True
                progress(f"soak: {(now - t0) / 60:5.1f} min, RSS {mb:.1f} MB, pings {len(pings)}")
        finally:
            daemon.terminate()
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
            stop.set()
            sub.loop_stop()
            broker.stop()
            notify.close()
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
        out.update({
            "soak_minutes": minutes,
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
        })
    return out
