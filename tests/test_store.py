"""The SQLite example store: counts, sessions, npz round trip, and crash safety under SIGKILL."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from edge.errors import StoreError
from edge.teach.npz_dataset import read_npz
from edge.teach.store import ExampleStore


def windows(n, value=0.0):
    return np.full((n, 3, 232), value, dtype=np.float32) + np.arange(n, dtype=np.float32)[:, None, None]


def test_add_count_delete_by_label_and_session(tmp_path):
    with ExampleStore(tmp_path / "ex.sqlite") as s:
        assert s.add_many("left", windows(5), "button", "s1") == 5
        s.add_many("noise", windows(3), "button", "s1")
        s.add_many("left", windows(2), "mqtt", "s2")
        assert s.counts() == {"left": 7, "noise": 3}
        assert s.last_session() == "s2"
        assert s.delete(session="s2") == 2
        assert s.delete(label="noise") == 3
        assert s.counts() == {"left": 5}
        x, y, labels = s.load(["left", "right"])
        assert x.shape == (5, 3, 232) and labels == ("left", "right") and set(y) == {0}
        assert np.array_equal(x[4], windows(5)[4])
        assert {r["session"] for r in s.sessions()} == {"s1"}


def test_relabel_moves_one_session_and_keeps_its_background(tmp_path):
    with ExampleStore(tmp_path / "ex.sqlite") as s:
        s.add_many("left", windows(4), "button", "s1")
        s.add_many("noise", windows(3), "button", "s1")
        s.add_many("left", windows(2), "button", "s2")
        assert s.relabel("s1", "right", keep="noise") == 4
        assert s.counts() == {"left": 2, "right": 4, "noise": 3}
        got = s.session_windows("s1")
        assert [lb for lb, _ in got] == ["right"] * 4 + ["noise"] * 3
        assert np.array_equal(got[2][1], windows(4)[2])
        assert s.relabel("s1", "left") == 7 and s.counts() == {"left": 9}
        assert s.relabel("nope", "left") == 0


def test_bad_window_shape_is_refused_and_nothing_written(tmp_path):
    with ExampleStore(tmp_path / "ex.sqlite") as s:
        with pytest.raises(StoreError, match="shape"):
            s.add_many("left", [np.zeros((3, 232)), np.zeros((2, 232))], "button", "s")
        assert s.counts() == {}


def test_npz_round_trip_in_the_seed_format(tmp_path, data_dir):
    with ExampleStore(tmp_path / "ex.sqlite") as s:
        added = s.import_npz(data_dir / "seed-train.npz")
        assert added == {"low": 150, "mid": 150, "noise": 150}
        assert s.export_npz(tmp_path / "out.npz") == 450
    x, y, labels = read_npz(tmp_path / "out.npz")
    sx, sy, slabels = read_npz(data_dir / "seed-train.npz")
    order = {lb: i for i, lb in enumerate(labels)}
    assert sorted(labels) == sorted(slabels)
    assert np.array_equal(np.sort(x.reshape(450, -1), axis=0), np.sort(sx.reshape(450, -1), axis=0))
    assert sorted(np.bincount([order[slabels[k]] for k in sy]).tolist()) == sorted(np.bincount(y.astype(np.intp)).tolist())


@pytest.mark.parametrize("arrays,needle", [
    ({"x": np.zeros((2, 3, 232), np.float32), "y": np.zeros(2, int)}, "missing key(s) labels"),
    ({"x": np.zeros((2, 3, 100), np.float32), "y": np.zeros(2, int), "labels": np.array(["a"])}, "x has shape"),
    ({"x": np.zeros((2, 3, 232), np.float32), "y": np.array([0, 5]), "labels": np.array(["a"])}, "y holds class 5"),
    ({"x": np.full((1, 3, 232), np.nan, np.float32), "y": np.zeros(1, int), "labels": np.array(["a"])}, "NaN"),
])
def test_bad_npz_names_the_problem(tmp_path, arrays, needle):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(StoreError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_npz(p)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(StoreError, match=r"not a dataset file; accepted: a \.npz"):
        read_npz(tmp_path / "junk.npz")


IMPORTER = r"""
import sys, numpy as np
from edge.teach.store import ExampleStore
s = ExampleStore(sys.argv[1])
x = np.zeros((64, 3, 232), np.float32)
i = 0
while True:
    s.add_many("left", x + i, "import", f"batch-{i}")
    print(i, flush=True)
    i += 1
"""


def test_sigkill_during_bulk_import_leaves_only_whole_batches(tmp_path):
    db = tmp_path / "ex.sqlite"
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", IMPORTER, str(db)], stdout=subprocess.PIPE, text=True)
        reported = -1
        deadline = time.monotonic() + 0.3 + 0.2 * attempt
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                reported = int(line.split()[0])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(db) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with ExampleStore(db) as s:
            assert s.integrity_ok()
            sessions = {r["session"]: r["count"] for r in s.sessions()}
            # every committed batch is whole (64 rows), every reported batch is there
            assert all(n == 64 for n in sessions.values()), sessions
            assert reported < 0 or f"batch-{reported}" in sessions
            s.delete()


def test_unopenable_store_is_one_line(tmp_path):
    p = tmp_path / "ex.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as e:
        ExampleStore(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_tfjs_speech_commands_dataset_round_trip(tmp_path, data_dir):
    """TFJSSCDS (the browser's serialized examples): export, re-import, and a longer example is windowed."""
    import json
    import struct
    from edge.teach.tfjs_dataset import BACKGROUND_TAG, read_tfjs_dataset
    with ExampleStore(tmp_path / "a.sqlite") as s:
        s.import_npz(data_dir / "seed-test.npz")
        assert s.export_npz(tmp_path / "out.bin", background="noise") == 300
    raw = (tmp_path / "out.bin").read_bytes()
    assert raw[:8] == b"TFJSSCDS"
    mlen = struct.unpack_from("<I", raw, 12)[0]
    manifest = json.loads(raw[16:16 + mlen])
    assert {m["label"] for m in manifest} == {"low", "mid", BACKGROUND_TAG}
    x, y, labels = read_tfjs_dataset(tmp_path / "out.bin", background="noise")
    assert x.shape == (300, 3, 232) and set(labels) == {"low", "mid", "noise"}
    # a browser example of 5 frames with raw audio appended: 3 windows, raw audio skipped
    frames = np.arange(5 * 232, dtype="<f4").reshape(5, 232) - 120
    spec = [{"label": "clap", "spectrogramNumFrames": 5, "spectrogramFrameSize": 232,
             "rawAudioNumSamples": 10, "rawAudioSampleRateHz": 44100}]
    m = json.dumps(spec).encode()
    (tmp_path / "b.bin").write_bytes(b"TFJSSCDS" + struct.pack("<II", 1, len(m)) + m + frames.tobytes()
                                     + np.zeros(10, "<f4").tobytes())
    with ExampleStore(tmp_path / "b.sqlite") as s:
        assert s.import_npz(tmp_path / "b.bin") == {"clap": 3}
        xb, _, _ = s.load()
        assert np.array_equal(xb[2], frames[2:5])
    (tmp_path / "c.bin").write_bytes((tmp_path / "b.bin").read_bytes()[:-100])
    with pytest.raises(StoreError, match="truncated"):
        read_tfjs_dataset(tmp_path / "c.bin", None)


def test_a_hold_and_its_background_are_one_transaction(tmp_path):
    """The sound and the quiet of a hold go in together or not at all (a full disk mid-way must not
    leave the `left` windows without their background)."""
    with ExampleStore(tmp_path / "e.sqlite") as s:
        assert s.add_groups([("left", windows(4)), ("noise", windows(6)), ("right", [])], "button", "s1") == [4, 6, 0]
        # the 2nd group fails inside the transaction (label NOT NULL), after the 1st was inserted
        with pytest.raises(StoreError, match="nothing was written"):
            s.add_groups([("left", windows(3)), (None, windows(2))], "button", "s2")
        assert s.counts() == {"left": 4, "noise": 6}


def _filled(tmp_path, n=1500):
    p = tmp_path / "ex.sqlite"
    with ExampleStore(p) as s:
        for k in range(0, n, 250):
            s.add_many("left" if k % 500 else "noise", windows(250, k), "test", f"s{k}")
    return p


def _corrupt_page(path, page=300):
    with open(path, "r+b") as f:
        f.seek(4096 * (page - 1))
        f.write(b"\xff" * 16)


def test_corrupt_page_is_found_at_open_cheaply_with_the_fix(tmp_path):
    """A corrupt page used to open silently, then `train` died with a DatabaseError traceback."""
    p = _filled(tmp_path)
    with ExampleStore(p):
        pass
    t0 = time.perf_counter()
    with ExampleStore(p):
        pass
    healthy_open_s = time.perf_counter() - t0
    assert healthy_open_s < 0.25, healthy_open_s                   # quick_check on 1,500 windows included
    _corrupt_page(p)
    with pytest.raises(StoreError) as e:
        ExampleStore(p)
    assert "malformed" in str(e.value) and "edge-slider dataset recover" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_store_damaged_after_open_reads_as_one_line_store_errors(tmp_path):
    p = _filled(tmp_path)
    s = ExampleStore(p)
    try:
        _corrupt_page(p)
        with pytest.raises(StoreError, match="dataset recover"):
            s.load(("left", "noise"))
    finally:
        s.close()


def test_damaged_header_names_the_fix(tmp_path):
    p = _filled(tmp_path, 250)
    with open(p, "r+b") as f:
        f.seek(16)
        f.write(bytes(range(200, 250)))
    with pytest.raises(StoreError) as e:
        ExampleStore(p)
    assert "not a database" in str(e.value) and "edge-slider dataset recover" in str(e.value)


@pytest.mark.parametrize("damage", ["page", "header"])
def test_recover_salvages_readable_rows_and_keeps_the_damaged_file(tmp_path, damage):
    from edge.teach.store_recovery import recover_store
    p = _filled(tmp_path)
    if damage == "page":
        _corrupt_page(p)
    else:
        with open(p, "r+b") as f:
            f.seek(16)
            f.write(bytes(range(200, 250)))
    before = p.read_bytes()
    report = recover_store(p)
    kept = report["kept"]
    assert kept.read_bytes() == before and kept.name.startswith("ex.sqlite.damaged-")
    with ExampleStore(p) as s:                    # opens: quick_check passes on the new store
        assert s.integrity_ok()
        n = len(s)
        x, y, labels = s.load(("left", "noise"))
    assert n == report["recovered"] >= 1490, report       # a 16-byte scribble costs a page or two
    assert x.shape == (n, 3, 232) and set(labels) == {"left", "noise"}
