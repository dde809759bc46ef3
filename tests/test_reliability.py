"""Faults the device must survive: kill -9 while training, a full disk, a microphone that vanishes."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from edge.audio import synth
from edge.config import Config
from edge.tooling.demo import TRAIN_SCENES, feed, hold_button, press_button, wait_training
from edge.model.registry import ModelRegistry
from edge.service import RunOptions, Service
from edge.teach.store import ExampleStore
from tests.brokers import anon_broker  # noqa: F401 - fixture

from edge.tooling.measure import SEED_CLASSES_TOML as SEED_CLASSES


@pytest.mark.slow
def test_kill_9_during_training_never_leaves_a_partial_model(tmp_path, data_dir):
    """20 kills at random moments of `edge-slider train` (the same store → train → install path the
    Train button runs): the registry always loads a complete model, the previous or the new one."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(SEED_CLASSES)
    base = [sys.executable, "-m", "edge", "--config", str(cfg), "--state-dir", str(tmp_path)]
    subprocess.run(base + ["dataset", "import", str(data_dir / "seed-train.npz")], check=True, capture_output=True)
    t0 = time.monotonic()
    subprocess.run(base + ["train", "--epochs", "3"], check=True, capture_output=True)
    whole = time.monotonic() - t0              # one full run on this machine, however loaded
    reg = ModelRegistry(tmp_path / "models", keep=50)
    rng = random.Random(7)
    completed = kills = 0

    def kill_once(fraction: float) -> bool:
        """One `train` killed after ``fraction`` of a full run; True when its model got installed."""
        before = reg.current_version()
        proc = subprocess.Popen(base + ["train", "--epochs", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(fraction * whole)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = reg.current_version()
        # the previous model, or the newest file: a kill after the file's rename but before the
        # pointer moved leaves a whole, never-served version behind, so the next install skips
        # its number (v5 in service, v6 orphaned, v7 installed)
        assert after == before or after == max(reg.versions()) > (before or 0), (before, after, reg.versions())
        clf = reg.load_current()                  # never raises: the pointer only moves to a whole file
        assert clf.version == after and clf.labels == ("low", "mid", "noise")
        for v in reg.versions():                 # every numbered file is whole, served or not
            assert reg.load(v).labels == ("low", "mid", "noise")
        return after != before

    for _ in range(20):                           # from mid-start-up to after the install
        completed += kill_once(rng.uniform(0.3, 1.3))
        kills += 1
    # Both outcomes must have happened, so kills really landed before and after the install. The
    # box's load changes between runs (CI measured 0 of 20 installs once, after the debootstrap
    # test's writes): top up with later (or earlier) kills until each outcome was seen.
    for _ in range(10):
        if 0 < completed < kills:
            break
        completed += kill_once(rng.uniform(1.5, 3.0) if completed == 0 else rng.uniform(0.05, 0.3))
        kills += 1
    assert 0 < completed < kills, (completed, kills)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs as the state dir (needs mount privileges: root in CI): room for the demo's
    examples, model and SQLite's write-ahead log, little more."""
    mnt = tmp_path / "state"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here ({r.stderr.strip()}); this test needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path) -> None:
    """Fill the file system to the last page (64 KiB chunks alone left up to 64 KiB free: room
    enough for SQLite to store a short hold)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


@pytest.mark.mqtt
def test_disk_full_refuses_collection_keeps_data_and_keeps_listening(small_disk, anon_broker):
    """The real daemon on a full state dir: a collection is refused with a clear error, nothing
    stored is damaged or lost, and it keeps listening (decisions go on)."""
    from tests.brokers import Watcher
    base_cmd = [sys.executable, "-m", "edge", "--state-dir", str(small_disk)]
    subprocess.run(base_cmd + ["demo"], check=True, capture_output=True, timeout=120)   # a model + examples
    conf = small_disk.parent / "config.toml"
    conf.write_text(f'[device]\nid = "full"\n[mqtt]\nhost = "127.0.0.1"\nport = {anon_broker.port}\n')
    with ExampleStore(small_disk / "examples.sqlite") as store:
        before = store.counts()
    base = "edge-slider/full"
    w = Watcher(anon_broker, [f"{base}/event", f"{base}/cmd/result", f"{base}/state"])
    log = (small_disk.parent / "daemon.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir", str(small_disk),
                             "run", "--simulate"], stdout=log, stderr=subprocess.STDOUT)
    is_decision = lambda p: isinstance(p, dict) and p.get("kind") == "decision"  # noqa: E731
    try:
        w.wait_for(f"{base}/event", is_decision, timeout=30)
        fill(small_disk / "filler")
        mark = len(w.messages)
        c = anon_broker.client()
        c.connect(anon_broker.host, anon_broker.port)
        c.loop_start()
        c.publish(f"{base}/cmd/collect", json.dumps({"label": "left", "seconds": 10}), qos=1)
        err = w.wait_for(f"{base}/event", lambda p: isinstance(p, dict) and p.get("kind") == "error", timeout=20,
                         start=mark)
        assert err["where"] == "store" and "full" in err["message"] and "\n" not in err["message"], err
        after_error = len(w.messages)
        w.wait_for(f"{base}/event", is_decision, timeout=20, start=after_error)      # still listening
        assert w.wait_for(f"{base}/state", timeout=15, start=after_error)["mode"] == "listening"
        assert proc.poll() is None
        c.loop_stop()
        c.disconnect()
    finally:
        proc.terminate()
        rc = proc.wait(15)
        log.close()
        w.close()
    assert rc == 0, (small_disk.parent / "daemon.log").read_text()[-1500:]
    with ExampleStore(small_disk / "examples.sqlite") as store:
        assert store.integrity_ok()
        assert store.counts() == before                # nothing half-written, nothing lost


@pytest.mark.mqtt
def test_microphone_vanishes_and_returns(pulse, tmp_path, anon_broker):
    """The real daemon (`edge-slider run`, gpiozero's mock factory from its own environment
    variables, PortAudio on PulseAudio) while its source is unloaded mid-stream: it stays up,
    reports the failure in the retained state, retries, and audio flows again once the source is back."""
    from tests.brokers import Watcher
    conf = tmp_path / "config.toml"
    conf.write_text(f'[device]\nid = "mic"\n[audio]\nsource = "pyaudio"\ndevice = "pulse"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {anon_broker.port}\nstate_interval_s = 1\n')
    env = {**os.environ, **pulse, "GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
    topic = "edge-slider/mic/state"
    w = Watcher(anon_broker, [topic])
    log = (tmp_path / "daemon.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir", str(tmp_path / "s"),
                             "run"], env=env, stdout=log, stderr=subprocess.STDOUT)

    def audio(pred, timeout, what):
        try:
            return w.wait_for(topic, lambda p: pred(p["audio"]), timeout=timeout, start=len(w.messages))["audio"]
        except AssertionError:
            raise AssertionError(f"{what}; daemon log: {(tmp_path / 'daemon.log').read_text()[-1500:]}") from None

    try:
        flowing = audio(lambda a: a["error"] is None and a["stream_s"] >= 1.0, 30, "no audio from PulseAudio")
        mods = subprocess.run(["pactl", "list", "short", "modules"], env=pulse, capture_output=True, text=True).stdout
        sink_mod = next(line.split()[0] for line in mods.splitlines() if "module-null-sink" in line)
        subprocess.run(["pactl", "unload-module", sink_mod], env=pulse, check=True)
        failed = audio(lambda a: a["error"], 20, "the failure was never reported")
        assert proc.poll() is None, "the daemon died with its microphone"
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=test_sink", "rate=44100",
                        "channels=1"], env=pulse, check=True, capture_output=True)
        subprocess.run(["pactl", "set-default-source", "test_sink.monitor"], env=pulse, check=True)
        back = audio(lambda a: a["error"] is None, 40, "the error never cleared")
        audio(lambda a: a["error"] is None and a["stream_s"] >= back["stream_s"] + 1.0, 20, "audio never resumed")
        assert failed["stream_s"] >= flowing["stream_s"] and proc.poll() is None
    finally:
        proc.terminate()
        rc = proc.wait(15)
        log.close()
        w.close()
    assert rc == 0, (tmp_path / "daemon.log").read_text()[-1500:]


@pytest.mark.mqtt
@pytest.mark.slow
def test_kill_9_during_collection_loses_nothing_reported(tmp_path, anon_broker):
    """The real daemon, driven over MQTT, killed -9 at 20 random moments while collecting:
    every example it reported as stored (MQTT `collected` events) is in the store, whole."""
    from tests.brokers import Watcher
    state = tmp_path / "state"
    conf = tmp_path / "config.toml"
    conf.write_text(f'[device]\nid = "crash"\n[mqtt]\nhost = "127.0.0.1"\nport = {anon_broker.port}\n'
                    '[slider]\ndetach_after_s = 0.0\n[listen]\nautostart = false\n')
    base = "edge-slider/crash"
    w = Watcher(anon_broker, [f"{base}/status", f"{base}/event"])
    cmd = anon_broker.client()
    cmd.connect(anon_broker.host, anon_broker.port)
    cmd.loop_start()
    rng = random.Random(11)
    try:
        for round_ in range(20):
            start = len(w.messages)
            proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(conf), "--state-dir", str(state),
                                     "run", "--simulate"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                w.wait_for(f"{base}/status", lambda p: p == "online", timeout=30, start=start)
                deadline = time.monotonic() + rng.uniform(0.2, 1.5)
                label = ("left", "right")[round_ % 2]
                while time.monotonic() < deadline:
                    cmd.publish(f"{base}/cmd/collect", json.dumps({"label": label, "seconds": 0.3}), qos=1)
                    time.sleep(0.1)
            finally:
                proc.kill()
                proc.wait(10)
        time.sleep(0.5)
    finally:
        cmd.loop_stop()
        cmd.disconnect()
        w.close()
    reported = [p for t, p, _ in w.messages if t == f"{base}/event" and isinstance(p, dict)
                and p.get("kind") == "collected"]
    assert len(reported) >= 5, f"only {len(reported)} collections reported: the test did not exercise much"
    with ExampleStore(state / "examples.sqlite") as store:
        assert store.integrity_ok()
        held = {(r["session"], r["label"]): r["count"] for r in store.sessions()}
    for ev in reported:
        assert held.get((ev["session"], ev["label"]), 0) == ev["stored"], ev
        if ev["background"]:
            assert held.get((ev["session"], "noise"), 0) == ev["background"], ev


def test_a_training_reuses_its_heap_under_the_daemons_malloc_settings():
    """The daemon fixes glibc's mmap threshold at 128 KiB (flat RSS over months); a training's
    quarter-MB mini-batch temporaries were then mapped and page-faulted in on every step (Train took
    2.5× as long). Inside roomy_heap they are reused; after it, the daemon's threshold is back.
    Its own process: malloc settings are process-wide."""
    import subprocess
    import sys
    code = r'''
import resource, numpy as np
from edge.memory import configure_malloc, roomy_heap, release_free_heap
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def churn():
    f = faults()
    for _ in range(300):
        a = np.ones(300_000 // 8); a += 1; del a
    return faults() - f
churn()
default = churn()
configure_malloc()
release_free_heap()      # as the daemon does after start-up: the heap's free top is given back
daemon = churn()
with roomy_heap():
    churn()
    roomy = churn()
release_free_heap()
after = churn()
print(default, daemon, roomy, after)
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    default, daemon, roomy, after = map(int, out.split())
    assert daemon > 300 * 50, out          # ~74 pages faulted in per 300 kB array
    assert roomy < daemon / 10, out
    assert after > daemon / 2, out          # the daemon's setting is back after the training
    assert default < daemon / 10, out       # a CLI process (glibc's dynamic threshold) never churned
