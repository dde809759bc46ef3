"""``edge-slider bench --web``: what serving the web console costs the audio loop, and memory.

Issue 16 asks that a page open costs the loop nothing measurable (≤ +10 % per hop). The loop's
share of the console is the bus subscriber (an O(1) put per event into each client's queue); the
JSON and the socket writes happen on the client's thread, but in CPython that thread competes for
the GIL, so the figure that matters is a hop at real-time pace (as a microphone feeds it) with a
page's event stream being read, against the same hops with no console at all.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.audio import synth
from edge.memory import rss_mb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PageReader:
    """One open console page: reads /api/events (SSE) in a thread and counts the events it got."""

    def __init__(self, base: str):
        self.base = base
        self.events = 0
        self.kinds: Counter[str] = Counter()
        """Events by kind (``state`` for the state the server sends beside them)."""
        self.frames: list[list[int]] = []
        """The live spectrogram's frames, in the order they came."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-page", daemon=True)

    def __enter__(self) -> "PageReader":
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.events == 0 and time.monotonic() < deadline:   # the first `state` arrives at once
            time.sleep(0.02)
        if self.events == 0:
            raise RuntimeError(f"no event from {self.base}/api/events within 10 s")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _read(self) -> None:
        try:
            with urllib.request.urlopen(self.base + "/api/state", timeout=10) as r:
                json.loads(r.read())   # what a page does on load
            with urllib.request.urlopen(self.base + "/api/events", timeout=30) as stream:
                name = ""
                for line in stream:
                    if self._stop.is_set():
                        return
                    if line.startswith(b"event:"):
                        name = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        data = json.loads(line[5:])   # a page parses every event it gets
                        kind = data.get("kind", "?") if name == "event" else name
                        self.kinds[kind] += 1
                        if kind == "frames":
                            self.frames += data["frames"]
                        self.events += 1
        except OSError:
            return   # the server went away at the end of the run


class _Conditions:
    """One service, three conditions taken in turn so drift of a shared VM hits each alike:
    the console detached from the loop (no bus subscriber, no frame tap: the loop as without a
    console), attached with no page, and attached with one page reading the event stream."""

    NAMES = ("no_console", "console_no_page", "console_page_open")

    def __init__(self, svc, base: str):
        self.svc, self.base = svc, base
        self.events = 0

    def run(self, measure: Callable[[], list[float]], blocks: int) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {k: [] for k in self.NAMES}
        web, bus, engine = self.svc.web, self.svc.bus, self.svc.engine
        for _ in range(blocks):
            bus.unsubscribe(web.on_event)
            engine.tap = None
            out["no_console"] += measure()
            bus.subscribe(web.on_event)
            engine.tap = web
            out["console_no_page"] += measure()
            with PageReader(self.base) as reader:
                out["console_page_open"] += measure()
                self.events += reader.events
            time.sleep(0.3)   # the server's client thread notices the closed page and unsubscribes
        return out


def _hot(svc, scene: np.ndarray, hops: int = 300) -> Callable[[], list[float]]:
    """As fast as the loop goes (no sleeps between hops: caches stay warm, steadier on a VM)."""
    def measure() -> list[float]:
        times = []
        for n in range(hops):
            i = (n * 1024) % (scene.shape[0] - 1024)
            t0 = time.perf_counter()
            svc.engine.process(scene[i:i + 1024])
            times.append((time.perf_counter() - t0) * 1e6)
        return times[20:]
    return measure


def measure_web_cost(cfg, seconds: float = 40.0, blocks: int = 4) -> dict[str, Any]:
    """Per-hop pipeline: console detached / attached / a page open, at real-time pace and hot."""
    from edge.tooling.bench import paced_hops
    from edge.tooling.demo import TEST_SCENE
    from edge.service import RunOptions, Service
    scene, _ = synth.render(TEST_SCENE, seed=4242, gain_db=-4.0)
    on = cfg.replace("web", listen="127.0.0.1:0", token="")
    figures: dict[str, Any] = {}
    with Service(on, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as svc:
        assert svc.web is not None, "web.listen is set, so Service makes the console"
        svc.web.start()
        svc.engine.set_listening(True)
        cond = _Conditions(svc, f"http://127.0.0.1:{svc.web.port}")
        paced = cond.run(lambda: paced_hops(svc, scene, seconds / (3 * blocks)), blocks)
        hot = cond.run(_hot(svc, scene), 2 * blocks)
    for name, runs in (("paced", paced), ("hot", hot)):
        med = {k: float(np.median(v)) for k, v in runs.items()}
        figures.update({f"web_pipeline_us_median_{name}_{k}": v for k, v in med.items()})
        figures[f"web_{name}_page_open_vs_no_console_pct"] = 100 * (med["console_page_open"] / med["no_console"] - 1)
    figures["web_pipeline_us_p99_paced_page_open"] = float(np.percentile(paced["console_page_open"], 99))
    figures["web_events_read_by_page"] = cond.events
    return figures


def measure_web_rss(cfg, seconds: float = 30.0) -> dict[str, Any]:
    """RSS of real `run --simulate --no-mqtt` processes: no console, console, console with a page open."""
    out: dict[str, Any] = {}
    for name, listen, page in (("no_console", "", False), ("console_page_open", None, True)):
        port = _free_port()
        env = dict(os.environ, EDGE_SLIDER_WEB_LISTEN=listen if listen is not None else f"127.0.0.1:{port}")
        cmd = [sys.executable, "-m", "edge", "--state-dir", str(cfg.state_path), "run", "--simulate", "--no-mqtt",
               "--duration", str(seconds + 10)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[float] = []
        try:
            reader = _open_page(f"http://127.0.0.1:{port}") if page else None
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds and proc.poll() is None:
                time.sleep(1.0)
                samples.append(rss_mb(proc.pid))
            if reader is not None:
                out["web_rss_events_read_by_page"] = reader.events
                reader.__exit__()
        finally:
            proc.terminate()
            proc.wait(10)
        if not samples:
            raise RuntimeError(f"`{' '.join(cmd)}` ended at once (exit {proc.returncode})")
        out[f"web_rss_mb_{name}"] = max(samples)
    out["web_rss_mb_difference"] = out["web_rss_mb_console_page_open"] - out["web_rss_mb_no_console"]
    return out


def _open_page(base: str, wait_s: float = 30.0) -> PageReader:
    """A page on the daemon's console once it listens (the daemon imports and loads its model first)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            urllib.request.urlopen(base + "/api/state", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the console at {base} did not answer within {wait_s:.0f} s") from None
            time.sleep(0.2)
    return PageReader(base).__enter__()


def run_web_bench(quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    from edge.tooling.demo import train_demo_model
    from edge.tooling.machine import machine
    figures: dict[str, Any] = machine()
    with tempfile.TemporaryDirectory(prefix="edge-bench-web-") as tmp:
        progress("teaching the demo model ...")
        cfg = train_demo_model(Path(tmp))
        progress("pipeline per hop at real-time pace: no console / console / a page open ...")
        figures.update(measure_web_cost(cfg, 12.0 if quick else 40.0))
        progress("resident memory of `run --simulate` without and with the console (a page open) ...")
        figures.update(measure_web_rss(cfg, 10.0 if quick else 30.0))
    return figures
