"""Shared fixtures: data files, a real PulseAudio server with a null sink."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, scope="session")
def no_console_by_default():
    """Services built from a default ``Config()`` serve no web console in tests.

    NOTE: the product's default is a console on 127.0.0.1:8080. Tests that build a Service from the
    default config took that port while they ran, and a daemon started beside them (the README's
    ``dev.sh run``) came up without its console (measured in a fresh clone, stop 26). The web tests
    set ``web.listen`` themselves (port 0)."""
    from edge.config import Config
    from edge.web.settings import WebSettings
    off = WebSettings(listen="")
    saved = Config.__init__.__defaults__
    Config.__init__.__defaults__ = tuple(off if isinstance(d, WebSettings) else d for d in saved or ())
    assert Config().web.listen == "", "conftest: Config's web default moved; update no_console_by_default"
    yield
    Config.__init__.__defaults__ = saved


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def seed_data():
    import numpy as np
    train, test = np.load(DATA / "seed-train.npz"), np.load(DATA / "seed-test.npz")
    labels = tuple(str(s) for s in train["labels"])
    return train["x"], train["y"], test["x"], test["y"], labels


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A private PulseAudio daemon with a 44.1 kHz mono null sink; its monitor is the default source.

    Recipe from shared/PLATFORM.md. Yields the environment to play into it (``paplay``).
    """
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not installed: deploy/dev.sh installs pulseaudio and pulseaudio-utils")
    runtime = tmp_path_factory.mktemp("pulse-runtime")
    os.chmod(runtime, 0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime), "PULSE_RUNTIME_PATH": str(runtime / "pulse")}
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH")}
    subprocess.run(["pulseaudio", "-D", "-n", "--system=false", "--exit-idle-time=-1", "--disallow-exit",
                    "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=test_sink rate=44100 channels=1"],
                   env=env, check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail("PulseAudio did not come up")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-source", "test_sink.monitor"], env=env, check=True)
    os.environ.update({"XDG_RUNTIME_DIR": env["XDG_RUNTIME_DIR"], "PULSE_RUNTIME_PATH": env["PULSE_RUNTIME_PATH"]})
    yield env
    subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
