"""Damaged state the REAL daemon must survive: a garbage model pointer, a truncated or missing newest
model, a read-only state dir, a damaged database header, a corrupt database page.

Each case copies one good state dir (the demo's examples + two installed models), damages it the
way a power cut or a bad SD card does, and runs ``python -m edge run --simulate`` against a real
Mosquitto. Every time it must keep listening (decisions, state mode "listening"), lose nothing (the
good model, every stored row and the damaged file itself are still there) and report the cause
exactly once (one ``error`` event; the retained state names it under ``problems``).

Read-only: we are root here, and root ignores file modes, so the state dir is made a read-only
bind mount of itself (``mount --bind`` + ``remount,ro``): the kernel refuses root's writes too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.model.registry import ModelRegistry
from tests.brokers import Watcher, anon_broker  # noqa: F401 - fixture

pytestmark = pytest.mark.mqtt

DB = "examples.sqlite"


@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> Path:
    """The demo's store (1,512 windows) and model, plus a second install: history is [1, 2]."""
    root = tmp_path_factory.mktemp("good") / "state"
    subprocess.run([sys.executable, "-m", "edge", "--state-dir", str(root), "demo"], check=True,
                   capture_output=True, timeout=180)
    reg = ModelRegistry(root / "models")
    assert reg.install(reg.read(1)) == 2
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path) -> int:
    """Rows countable through the label index (still works on a store with a corrupt table page).
    immutable=1: a read-only mount has no room for SQLite's -shm file."""
    import sqlite3
    try:
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return -1


class Daemon:
    """``edge run --simulate`` against the test broker; records its log; stopped with SIGTERM."""

    def __init__(self, state: Path, broker, device_id: str):
        self.state, self.base = state, f"edge-slider/{device_id}"
        conf = state.parent / f"{device_id}.toml"
        conf.write_text(f'[device]\nid = "{device_id}"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                        "state_interval_s = 1\n")
        self.watch = Watcher(broker, [f"{self.base}/event", f"{self.base}/state", f"{self.base}/cmd/result"])
        self.broker = broker
        self.log_path = state.parent / f"{device_id}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir", str(state),
                                      "run", "--simulate"], stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def command(self, name: str, payload: dict | None = None) -> dict:
        mark = len(self.watch.messages)
        c = self.broker.client()
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        c.publish(f"{self.base}/cmd/{name}", json.dumps(payload or {}), qos=1).wait_for_publish(5)
        try:
            return self.watch.wait_for(f"{self.base}/cmd/result", lambda p: p["command"] == name, timeout=15,
                                       start=mark)
        finally:
            c.loop_stop()
            c.disconnect()

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
            return self.proc.wait(20)
        finally:
            self._log.close()
            self.watch.close()


def _keeps_listening(d: Daemon) -> dict:
    """Decisions flow and the retained state says listening; returns that state."""
    is_decision = lambda p: isinstance(p, dict) and p.get("kind") == "decision"  # noqa: E731
    try:
        d.watch.wait_for(f"{d.base}/event", is_decision, timeout=40)
        state = d.watch.wait_for(f"{d.base}/state", lambda p: p["mode"] == "listening", timeout=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- daemon log:\n{d.log()[-3000:]}") from None
    assert d.proc.poll() is None, d.log()[-3000:]
    return state


def _one_error(d: Daemon, where: str, needle: str) -> dict:
    errors = [p for p in d.watch.on(f"{d.base}/event") if isinstance(p, dict) and p.get("kind") == "error"]
    assert len(errors) == 1, (errors, d.log()[-2000:])
    err = errors[0]
    assert err["where"] == where and needle in err["message"] and "\n" not in err["message"], err
    # "say so once": one warning/error line in the log for it, no traceback
    assert d.log().count(needle) >= 1 and "Traceback" not in d.log(), d.log()[-3000:]
    return err


def _run_damaged(tmp_path, good_state, anon_broker, name: str, damage) -> tuple[Daemon, Path]:
    state = tmp_path / "state"
    shutil.copytree(good_state, state)
    damage(state)
    return Daemon(state, anon_broker, name), state


# ---------------------------------------------------------------------- models

@pytest.mark.parametrize("case, expect_version, needle", [
    ("garbage-pointer", 2, "current"),
    ("truncated-newest", 1, "v0002.tflite: damaged"),
    ("missing-newest", 1, "v2 not found"),
])
def test_damaged_model_falls_back_to_the_newest_whole_one(tmp_path, good_state, anon_broker, case, expect_version,
                                                          needle):
    models = good_state / "models"
    v2 = (models / "v0002.tflite").read_bytes()

    def damage(state: Path) -> None:
        m = state / "models"
        if case == "garbage-pointer":
            (m / "current").write_bytes(b"\xff\xfe\x00\x9c\x01")     # what a power cut can leave
        elif case == "truncated-newest":
            (m / "v0002.tflite").write_bytes(v2[:len(v2) // 3])
        else:
            (m / "v0002.tflite").unlink()

    d, state = _run_damaged(tmp_path, good_state, anon_broker, case, damage)
    try:
        st = _keeps_listening(d)
        assert st["model"]["version"] == expect_version, st
        assert "model" in st.get("problems", {}), st
        _one_error(d, "model", needle)
    finally:
        rc = d.stop()
    assert rc == 0, d.log()[-2000:]
    # nothing lost: the good model and the damaged file are still there
    m = state / "models"
    assert (m / "v0001.tflite").read_bytes() == (models / "v0001.tflite").read_bytes()
    if case == "garbage-pointer":
        assert (m / "current").read_bytes() == b"\xff\xfe\x00\x9c\x01"
    elif case == "truncated-newest":
        assert (m / "v0002.tflite").stat().st_size == len(v2) // 3
    assert _rows(state / DB) == _rows(good_state / DB) == 1512


# ---------------------------------------------------------------------- the store

def _damage_header(state: Path) -> None:
    with open(state / DB, "r+b") as f:
        f.seek(16)
        f.write(bytes(range(200, 250)))        # page size, versions, counters: "file is not a database"


def _damage_page(state: Path) -> None:
    with open(state / DB, "r+b") as f:
        f.seek(4096 * 699)                     # a leaf page of the examples table
        f.write(b"\xff" * 16)


@pytest.fixture
def read_only(tmp_path):
    mounted = []

    def make(state: Path) -> None:
        for args in (["mount", "--bind", str(state), str(state)], ["mount", "-o", "remount,bind,ro", str(state)]):
            r = subprocess.run(args, capture_output=True, text=True)
            if r.returncode != 0:
                pytest.fail(f"{' '.join(args)}: {r.stderr.strip()} (this test needs root / CAP_SYS_ADMIN)")
            if not mounted:
                mounted.append(state)
        probe = state / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")              # root cannot write either
    yield make
    for m in mounted:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


@pytest.mark.parametrize("case, needle, fix", [
    ("read-only", "read-only", "remount"),
    ("damaged-header", "not a database", "dataset recover"),
    ("corrupt-page", "malformed", "dataset recover"),
])
def test_damaged_store_keeps_listening_and_refuses_collection_and_training(tmp_path, good_state, anon_broker,
                                                                           read_only, case, needle, fix):
    damage = {"read-only": read_only, "damaged-header": _damage_header, "corrupt-page": _damage_page}[case]
    d, state = _run_damaged(tmp_path, good_state, anon_broker, case, damage)
    before = _digest(state / DB)
    try:
        st = _keeps_listening(d)
        assert st["model"]["version"] == 2, st
        assert needle in st.get("problems", {}).get("store", ""), st
        err = _one_error(d, "store", needle)
        assert fix in err["message"], err
        for cmd, payload in (("collect", {"label": "left", "seconds": 2}), ("train", {})):
            res = d.command(cmd, payload)
            assert res["ok"] is False and needle in res["error"] and fix in res["error"], res
        _keeps_listening(d)
        assert len([p for p in d.watch.on(f"{d.base}/event") if p.get("kind") == "error"]) == 1
    finally:
        rc = d.stop()
    assert rc == 0, d.log()[-2000:]
    # nothing stored is deleted or rewritten: the damaged file is byte for byte what it was
    assert _digest(state / DB) == before
    assert (state / "models" / "v0002.tflite").is_file() and (state / "models" / "v0001.tflite").is_file()
    if case != "damaged-header":
        assert _rows(state / DB) == 1512


def test_read_only_state_dir_logs_the_position_save_failure_once(tmp_path, read_only):
    """Every move tried to save position.json and logged the same error again."""
    import logging
    from edge.config import SliderSettings
    from edge.device.slider import NullOutput, Slider
    state = tmp_path / "state"
    state.mkdir()
    read_only(state)
    s = Slider(NullOutput(), SliderSettings(), state / "position.json", save_interval=0.0)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("edge.device.slider").addHandler(handler)
    try:
        for _ in range(5):
            s.step(0.1)
            s.tick()
    finally:
        logging.getLogger("edge.device.slider").removeHandler(handler)
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Read-only" in errors[0].getMessage(), [r.getMessage() for r in errors]
