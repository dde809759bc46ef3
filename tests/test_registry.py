"""The model registry: numbered versions, atomic install, rollback, pruning, refusing bad files."""

import pytest

from edge.errors import ModelError
from edge.model.quantize import quantize
from edge.model.registry import ModelRegistry
from edge.model.tflite_writer import write_model
from edge.model.train import Recipe, train


@pytest.fixture(scope="module")
def model_bytes(seed_data):
    x, y, _, _, labels = seed_data
    out = []
    for seed in (1, 2):
        r = train(x, y, labels, Recipe(epochs=2, seed=seed))
        meta = {"format": "edge-slider-model", "format_version": 1, "labels": list(labels), "sample_rate": 44100,
                "fft_size": 2048, "hop": 1024, "bins": 232, "frames": 3, "seed": seed}
        out.append(write_model(quantize(r.params, x[:100]), meta))
    return out


def test_install_rollback_and_prune(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models", keep=3)
    assert reg.load_current() is None
    versions = [reg.install(model_bytes[i % 2]) for i in range(5)]
    assert versions == [1, 2, 3, 4, 5]
    assert reg.versions() == [3, 4, 5] and reg.current_version() == 5
    assert reg.load_current().metadata["seed"] == 1
    assert reg.rollback() == 4
    assert reg.load_current().metadata["seed"] == 2
    assert reg.rollback() == 3
    with pytest.raises(ModelError, match="no older model"):
        reg.rollback()
    assert not list((tmp_path / "models").glob(".*tmp"))


def test_corrupt_or_truncated_model_is_refused_and_the_old_one_stays(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models")
    reg.install(model_bytes[0])
    for bad in (model_bytes[1][: len(model_bytes[1]) // 2], b"garbage" * 50, b""):
        with pytest.raises(ModelError):
            reg.install(bad)
    assert reg.versions() == [1] and reg.current_version() == 1
    assert reg.load_current().version == 1


def test_damaged_file_on_disk_is_reported_not_crashed(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models")
    reg.install(model_bytes[0])
    reg.install(model_bytes[1])
    (tmp_path / "models" / "v0002.tflite").write_bytes(model_bytes[1][:300])
    with pytest.raises(ModelError) as e:
        reg.load_current()
    assert "\n" not in str(e.value)
    assert reg.rollback() == 1 and reg.load_current().version == 1
    (tmp_path / "models" / "current").write_text("banana")
    with pytest.raises(ModelError, match="not a version number"):
        reg.current_version()


def test_install_sweeps_temp_files_a_killed_writer_left(tmp_path, model_bytes):
    """kill -9 between mkstemp and rename leaves `.v0002.tflite.XXXX.tmp`; months of that fill the card."""
    import os
    import time
    reg = ModelRegistry(tmp_path / "models")
    reg.install(model_bytes[0])
    stale = tmp_path / "models" / ".v0002.tflite.abcd.tmp"
    fresh = tmp_path / "models" / ".v0002.tflite.efgh.tmp"      # another writer, still busy
    stale.write_bytes(model_bytes[1][:100])
    fresh.write_bytes(model_bytes[1][:100])
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert reg.install(model_bytes[1]) == 2
    assert not stale.exists() and fresh.exists()


def test_rollback_follows_what_served_not_the_numbers(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models", keep=10)
    for i in range(3):
        reg.install(model_bytes[i % 2])
    # a rejected model is not a rollback target: v3 rolled back, v4 trained, rollback → v2
    assert reg.rollback() == 2
    assert reg.install(model_bytes[0]) == 4
    assert reg.rollback() == 2 and reg.rollback() == 1
    with pytest.raises(ModelError, match="no older model"):
        reg.rollback()


def test_a_version_orphaned_by_a_kill_is_never_rolled_back_to(tmp_path, model_bytes):
    """kill -9 after v3's rename, before the pointer moved: v3 is whole but never served."""
    reg = ModelRegistry(tmp_path / "models", keep=10)
    reg.install(model_bytes[0])
    reg.install(model_bytes[1])
    (tmp_path / "models" / "v0003.tflite").write_bytes(model_bytes[0])
    assert reg.install(model_bytes[1]) == 4
    assert reg.rollback() == 2


def test_rollback_survives_a_kill_between_pointer_and_history(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models", keep=10)
    for i in range(3):
        reg.install(model_bytes[i % 2])
    (tmp_path / "models" / "current").write_text("2\n")   # a rollback's pointer write, history not yet
    assert reg.rollback() == 1


def test_registry_from_before_the_history_file_rolls_back_by_number(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models", keep=10)
    for i in range(3):
        reg.install(model_bytes[i % 2])
    (tmp_path / "models" / "history").unlink()
    assert reg.install(model_bytes[0]) == 4
    assert reg.rollback() == 3 and reg.rollback() == 2


def test_non_utf8_pointer_is_a_model_error_not_a_traceback(tmp_path, model_bytes):
    """A power cut can leave any bytes in `current` (here: not even UTF-8)."""
    reg = ModelRegistry(tmp_path / "models")
    reg.install(model_bytes[0])
    (tmp_path / "models" / "current").write_bytes(b"\xff\xfe\x00\x9c")
    with pytest.raises(ModelError, match="current"):
        reg.current_version()


@pytest.mark.parametrize("damage", ["garbage-pointer", "truncated", "missing", "no-pointer"])
def test_serving_falls_back_along_history_to_the_newest_whole_model(tmp_path, model_bytes, damage):
    reg = ModelRegistry(tmp_path / "models", keep=10)
    for i in range(3):
        reg.install(model_bytes[i % 2])
    reg.rollback()                                     # history 1, 2; v3 was rejected
    m = tmp_path / "models"
    if damage == "garbage-pointer":
        (m / "current").write_bytes(b"\xff\xfe\x00\x9c")
    elif damage == "truncated":
        (m / "v0002.tflite").write_bytes(model_bytes[1][:500])
    elif damage == "missing":
        (m / "v0002.tflite").unlink()
    else:
        (m / "current").unlink()
    clf, problem = reg.load_serving()
    want = 2 if damage in ("garbage-pointer", "no-pointer") else 1
    assert clf.version == want, (damage, problem)
    assert problem and "\n" not in problem and f"v{want}" in problem
    assert reg.versions() == [1, 2, 3] or damage == "missing"        # nothing deleted
    if damage == "garbage-pointer":
        assert (m / "current").read_bytes() == b"\xff\xfe\x00\x9c"   # kept as evidence


def test_serving_a_healthy_registry_reports_no_problem(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models")
    assert reg.load_serving() == (None, None)
    reg.install(model_bytes[0])
    clf, problem = reg.load_serving()
    assert clf.version == 1 and problem is None


def test_rollback_repairs_a_damaged_pointer_to_what_the_daemon_serves(tmp_path, model_bytes):
    reg = ModelRegistry(tmp_path / "models", keep=10)
    for i in range(3):
        reg.install(model_bytes[i % 2])
    (tmp_path / "models" / "current").write_bytes(b"\xff\x00")
    served, _ = reg.load_serving()
    assert reg.rollback() == served.version == 3 and reg.current_version() == 3
