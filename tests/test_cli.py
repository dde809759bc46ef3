"""The command line as a user runs it: files in, one-line errors out, exit codes."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.wavfile import write_wav
from edge.cli import main

from edge.tooling.measure import SEED_CLASSES_TOML as SEED_CLASSES


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


def test_python_m_edge_and_help():
    r = subprocess.run([sys.executable, "-m", "edge", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "spectrogram" in r.stdout and "train" in r.stdout


def test_spectrogram_prints_stats_and_draws_png(capsys, tmp_path, state):
    wav = tmp_path / "snap.wav"
    write_wav(wav, synth.render("gap:0.2, snap, gap:0.3", seed=1)[0])
    rc, out, _ = run(capsys, "--state-dir", state, "spectrogram", "--from-wav", str(wav), "--png", str(tmp_path / "s.png"))
    frames = (int(0.75 * 44100) - 2048) // 1024 + 1
    assert rc == 0 and f"frames: {frames} × 232 bins" in out
    from PIL import Image
    img = Image.open(tmp_path / "s.png")
    assert img.size == (frames * 4, 232 * 2)


def test_bad_inputs_are_one_line_errors_with_nonzero_exit(capsys, tmp_path, state):
    (tmp_path / "x.wav").write_text("hello")
    (tmp_path / "bad.toml").write_text("[listen]\nthreshold = 2\n")
    (tmp_path / "m.tflite").write_bytes(b"\0" * 100)
    cases = [
        ("--state-dir", state, "spectrogram", "--from-wav", str(tmp_path / "x.wav")),
        ("--config", str(tmp_path / "bad.toml"), "model", "list"),
        ("--state-dir", state, "model", "import", str(tmp_path / "m.tflite")),
        ("--state-dir", state, "collect", "--label", "sideways", "--from-wav", str(tmp_path / "x.wav")),
        ("--state-dir", state, "dataset", "import", str(tmp_path / "missing.npz")),
        ("--state-dir", state, "train"),
        ("--state-dir", state, "listen", "--from-wav", str(tmp_path / "x.wav")),
    ]
    for argv in cases:
        rc, out, err = run(capsys, *argv)
        assert rc != 0, argv
        lines = [ln for ln in err.splitlines() if ln.strip() and " INFO " not in ln and " WARNING " not in ln]
        assert len(lines) == 1 and lines[0].startswith("edge-slider "), (argv, err)
        assert "Traceback" not in err
    rc, _, err = run(capsys, "--config", str(tmp_path / "bad.toml"), "model", "list")
    assert "listen.threshold" in err


def test_dataset_train_model_evaluate_round_trip(capsys, tmp_path, data_dir, state):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SEED_CLASSES)
    base = ("--config", str(cfg), "--state-dir", state)
    rc, out, _ = run(capsys, *base, "dataset", "import", str(data_dir / "seed-train.npz"))
    assert rc == 0 and "low 150" in out
    rc, out, _ = run(capsys, *base, "dataset", "stats", "--sessions")
    assert rc == 0 and "450 examples" in out
    rc, out, _ = run(capsys, *base, "train", "--epochs", "5")
    # 5 epochs validated on held-out windows, then train.refit_epochs (3) more on every example
    assert rc == 0 and "epoch   5/8" in out and "epoch   8/8" in out and "then 3 more" in out
    assert "installed model v1" in out and "confusion" in out
    rc, out, _ = run(capsys, *base, "train", "--preset", "codelab")
    assert rc == 0 and "epoch  10/10" in out and "lr 0.01" in out and "model v2" in out
    rc, out, _ = run(capsys, *base, "model", "evaluate", "--dataset", str(data_dir / "seed-test.npz"), "--json")
    report = json.loads(out)
    assert rc == 0 and report["n"] == 300 and report["accuracy"] >= 0.9 and report["model_version"] == 2
    rc, out, _ = run(capsys, *base, "model", "list")
    assert "* v2" in out and "  v1" in out
    rc, out, _ = run(capsys, *base, "model", "rollback")
    assert rc == 0 and "v1" in out
    rc, out, _ = run(capsys, *base, "model", "info", "--json")
    assert json.loads(out)["version"] == 1
    rc, _, _ = run(capsys, *base, "model", "export", str(tmp_path / "m.tflite"))
    rc, out, _ = run(capsys, *base, "model", "import", str(tmp_path / "m.tflite"))
    assert rc == 0 and "v3" in out
    rc, _, _ = run(capsys, *base, "dataset", "export", str(tmp_path / "d.npz"))
    assert np.load(tmp_path / "d.npz")["x"].shape == (450, 3, 232)
    rc, out, _ = run(capsys, *base, "dataset", "clear", "--label", "low", "--yes")
    assert rc == 0 and "deleted 150" in out


def test_collect_from_wav_then_listen_writes_events(capsys, tmp_path, state, monkeypatch):
    """`collect` stores what a button hold would; `listen` replays and writes one JSON line per decision."""
    from edge.tooling.demo import TRAIN_SCENES
    # the synthetic scenes' room (see synth.SYNTHETIC_ROOM_TRAINING): no bank
    monkeypatch.setenv("EDGE_SLIDER_TRAIN_BANK", "false")
    base = ("--state-dir", state)
    for i, (label, script) in enumerate(TRAIN_SCENES.items()):
        wav = tmp_path / f"{label}.wav"
        write_wav(wav, synth.render(script, seed=30 + i)[0])
        rc, out, _ = run(capsys, *base, "collect", "--label", label, "--from-wav", str(wav))
        assert rc == 0 and "stored as" in out
    rc, _, _ = run(capsys, *base, "train")
    assert rc == 0
    test = tmp_path / "test.wav"
    write_wav(test, synth.render("gap:0.5, snap, gap:1, whistle, gap:1.5", seed=99)[0])
    events = tmp_path / "events.jsonl"
    rc, out, _ = run(capsys, *base, "listen", "--from-wav", str(test), "--events", str(events))
    lines = [json.loads(ln) for ln in events.read_text().splitlines()]
    assert rc == 0 and [ln["label"] for ln in lines] == ["left", "right"]
    assert set(lines[0]) == {"t", "label", "score", "position"}
    assert lines[0]["position"] == pytest.approx(4.9) and lines[1]["position"] == pytest.approx(5.0)
    assert 0.5 < lines[0]["t"] < 1.2


def test_model_import_of_random_bytes_names_the_fix(capsys, tmp_path, state):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    rc, _, err = run(capsys, "--state-dir", state, "model", "import", str(junk))
    assert rc != 0 and len(err.strip().splitlines()) == 1, err
    assert "--labels" in err and ".tflite" in err, err


def _foreign_store(state):
    from edge.teach.store import ExampleStore
    with ExampleStore(state / "examples.sqlite") as s:
        s.add_many("left", np.zeros((7, 3, 232), np.float32), "button", "mine")


@pytest.mark.parametrize("how", ["--state-dir", "--into"])
def test_demo_never_writes_into_a_store_with_examples_it_did_not_write(capsys, tmp_path, how):
    from pathlib import Path
    from edge.teach.store import ExampleStore
    state = tmp_path / "real"
    _foreign_store(state)
    argv = ("--state-dir", str(state), "demo") if how == "--state-dir" else ("demo", "--into", str(state))
    rc, out, err = run(capsys, *argv)
    assert rc != 0 and "not the demo's" in err and len(err.strip().splitlines()) == 1, (rc, err)
    with ExampleStore(state / "examples.sqlite") as s:
        assert s.counts() == {"left": 7}
    assert not (state / "models").exists()
    assert not Path(state / "position.json").exists()


def test_demo_without_a_dir_uses_a_scratch_dir_and_into_a_demo_dir_can_run_again(capsys, tmp_path, monkeypatch):
    from edge.teach.store import ExampleStore
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    rc, out, _ = run(capsys, "demo")
    assert rc == 0 and not (home / ".local").exists()
    demo = tmp_path / "demo-state"
    for _ in range(2):                           # deploy/dev.sh run, twice
        rc, out, err = run(capsys, "demo", "--into", str(demo))
        assert rc == 0, err
    with ExampleStore(demo / "examples.sqlite") as s:
        n = len(s)
    assert 1000 < n < 2000, n                    # the second run replaced its own examples, did not double them
    assert (demo / "models" / "current").is_file()


def test_damaged_store_cli_says_the_fix_and_dataset_recover_applies_it(capsys, tmp_path, state):
    """`train`/`dataset stats` on a corrupt page died with a DatabaseError traceback."""
    from pathlib import Path
    from edge.teach.store import ExampleStore
    db = Path(state) / "examples.sqlite"
    with ExampleStore(db) as s:
        for k in range(6):
            s.add_many("left" if k % 2 else "noise", np.full((250, 3, 232), k, np.float32), "test", f"s{k}")
    with open(db, "r+b") as f:
        f.seek(4096 * 299)
        f.write(b"\xff" * 16)
    for argv in (("dataset", "stats"), ("train",)):
        rc, _, err = run(capsys, "--state-dir", state, *argv)
        assert rc != 0 and "dataset recover" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    rc, out, err = run(capsys, "--state-dir", state, "dataset", "recover")
    assert rc == 0 and "recovered 14" in out and "damaged-" in out, (out, err)
    assert list(Path(state).glob("examples.sqlite.damaged-*"))
    rc, out, _ = run(capsys, "--state-dir", state, "dataset", "stats")
    assert rc == 0 and "examples in" in out
    rc, _, err = run(capsys, "--state-dir", state, "dataset", "recover")
    assert rc != 0 and "not damaged" in err


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip() and " INFO " not in ln and " WARNING " not in ln
             and not re.fullmatch(r"\s*\d+/\d+", ln)]   # import's progress
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_spectrogram_of_a_non_wav_names_the_file_and_how_to_convert(capsys, tmp_path, state):
    """An .ogg said `cannot read (None)`."""
    ogg = tmp_path / "bell.oga"
    ogg.write_bytes(b"OggS\x00\x02" + bytes(200))
    rc, _, err = run(capsys, "--state-dir", state, "spectrogram", "--from-wav", str(ogg))
    line = _one_error_line(err)
    assert rc != 0 and str(ogg) in line and "not a WAV" in line and "sox " in line and "-r 44100 -c 1 -b 16" in line
    assert "None" not in line


def test_dataset_import_of_a_text_file_names_it_and_the_accepted_formats(capsys, tmp_path, state):
    """A text file showed numpy's message about pickled data."""
    txt = tmp_path / "notes.txt"
    txt.write_text("left,right\n1,2\n")
    rc, _, err = run(capsys, "--state-dir", state, "dataset", "import", str(txt))
    line = _one_error_line(err)
    assert rc != 0 and str(txt) in line and ".npz" in line and "TFJSSCDS" in line
    assert "pickle" not in line


def test_importing_the_same_file_twice_is_refused_until_its_session_is_cleared(capsys, tmp_path, data_dir, state):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SEED_CLASSES)
    base = ("--config", str(cfg), "--state-dir", state)
    copy = tmp_path / "again.npz"
    copy.write_bytes((data_dir / "seed-test.npz").read_bytes())
    rc, out, _ = run(capsys, *base, "dataset", "import", str(data_dir / "seed-test.npz"))
    assert rc == 0
    rc, out, err = run(capsys, *base, "dataset", "import", str(copy))   # same content, another name
    line = _one_error_line(err)
    assert rc != 0 and "already imported on " in line and "dataset clear --session " in line
    session = line.split("as session ")[1].split(";")[0]
    rc, out, _ = run(capsys, *base, "dataset", "stats")
    assert "300 examples" in out
    rc, out, _ = run(capsys, *base, "dataset", "clear", "--session", session, "--yes")
    assert rc == 0 and "deleted 300" in out
    rc, out, _ = run(capsys, *base, "dataset", "import", str(copy))
    assert rc == 0
    rc, out, _ = run(capsys, *base, "dataset", "stats")
    assert "300 examples" in out


def test_collecting_the_background_class_says_not_gated_instead_of_a_nan_floor(capsys, tmp_path, state):
    wav = tmp_path / "room.wav"
    write_wav(wav, synth.render("gap:1, babble:1", seed=3)[0])
    rc, out, _ = run(capsys, "--state-dir", state, "collect", "--label", "noise", "--from-wav", str(wav))
    assert rc == 0 and "not gated (background class)" in out and "nan" not in out


@pytest.mark.parametrize("argv", [("dataset", "stats", "--sessions"), ("spectrogram", "--from-wav", "{wav}"),
                                  ("listen", "--from-wav", "{wav}", "--events", "-", "--threshold", "0",
                                   "--mode", "continuous")])
def test_output_into_a_closed_pipe_exits_quietly(tmp_path, data_dir, argv):
    """`edge-slider … | head` printed a BrokenPipeError traceback."""
    state = tmp_path / "state"
    base = [sys.executable, "-m", "edge", "--state-dir", str(state)]
    wav = tmp_path / "x.wav"
    write_wav(wav, synth.render("gap:0.3, snap, gap:0.3", seed=1)[0])
    if argv[0] == "listen":   # needs a model: the seed data's classes
        cfg = tmp_path / "c.toml"
        cfg.write_text(SEED_CLASSES)
        base[3:3] = ["--config", str(cfg)]
        for cmd in (["dataset", "import", str(data_dir / "seed-train.npz")], ["train", "--epochs", "2"]):
            subprocess.run(base + cmd, check=True, capture_output=True, timeout=300)
        # Threshold 0, continuous: it decides (and writes a line) on nearly every hop.
        write_wav(wav, synth.render("gap:0.4, whistle:2, gap:0.4, snap, babble:2", seed=2)[0])
    else:
        subprocess.run(base + ["dataset", "import", str(data_dir / "seed-test.npz")], check=True,
                       capture_output=True, timeout=120)
    p = subprocess.Popen(base + [a.replace("{wav}", str(wav)) for a in argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path)
    p.stdout.close()   # the reader went away before the first line, as `| head -0` does
    _, err = p.communicate(timeout=300)
    err = err.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert p.returncode in (0, 141), (p.returncode, err)
    assert not (tmp_path / "-").exists(), "`--events -` wrote a file named '-'"


def test_demo_training_timeout_says_timed_out_and_the_fix_not_no_model(capsys, tmp_path):
    """A slow CPU (a Pi Zero 2 W, qemu: 43-51 s of demo training) must not read as 'no model'. With
    no patience at all (--train-stall 0) the wait runs out while the trainer still works."""
    rc, out, _ = run(capsys, "demo", "--into", str(tmp_path / "demo-state"), "--train-stall", "0")
    assert rc == 1, out
    assert "training timed out after" in out and "--train-stall" in out, out
    assert "no model" not in out, out
