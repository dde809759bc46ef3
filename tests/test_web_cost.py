"""What a page on the web console costs the audio loop (issue 16): predictions are rate-limited
before they reach a page, and `bench --web` measures with a real page reading the event stream."""

import shutil
import time

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.spectrogram import FrameStream
from edge.config import Config
from edge.service import RunOptions, Service
from edge.tooling.demo import TEST_SCENE
from edge.tooling.web_cost import PageReader, measure_web_cost
from edge.web.server import PREDICTION_INTERVAL_S
from tests.trained import FAST_TRAIN, teach_by_buttons


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return teach_by_buttons(tmp_path_factory.mktemp("web-cost"), fast=True)


def _config(tmp_path, trained):
    shutil.copytree(trained, tmp_path / "state")
    return (Config().replace("device", state_dir=str(tmp_path / "state")).replace("mqtt", enabled=False)
            .replace("train", **FAST_TRAIN))


def test_a_page_gets_predictions_at_most_10_a_second_and_every_decision(tmp_path, trained):
    cfg = _config(tmp_path, trained).replace("web", listen="127.0.0.1:0")
    scene, _ = synth.render(TEST_SCENE, seed=4242, gain_db=-4.0)
    with Service(cfg, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as svc:
        assert svc.web is not None
        svc.web.start()
        svc.engine.set_listening(True)
        decisions = []
        svc.bus.subscribe(lambda e: decisions.append(e) if e.kind == "decision" else None)
        with PageReader(f"http://127.0.0.1:{svc.web.port}") as page:
            t0 = time.monotonic()
            hops = 0
            for i in range(0, scene.shape[0] - 1024 + 1, 1024):   # as fast as it goes: ~40 hops per 0.1 s
                svc.engine.process(scene[i:i + 1024])
                hops += 1
            elapsed = time.monotonic() - t0
            end = time.monotonic() + 5
            while page.kinds["decision"] < len(decisions) and time.monotonic() < end:
                time.sleep(0.05)
    assert decisions, "the test scene made no decision: nothing to check"
    assert page.kinds["decision"] == len(decisions), page.kinds   # decisions are never dropped
    # the live spectrogram: the exact front-end frames (rounded to whole dB), none lost, in order
    # (the tap gets each window's newest frame: the first window completes at frame 2)
    frames = FrameStream(cfg.frontend.hop, cfg.frontend.db_floor).push(scene[:hops * 1024])[2:]
    got = np.array(page.frames)
    assert page.kinds["frames"] >= 2 and got.shape[1] == 232 and len(got) > len(frames) // 2, (got.shape, len(frames))
    assert np.array_equal(got, np.rint(frames[:len(got)]).astype(int))
    assert 1 <= page.kinds["prediction"] <= elapsed / PREDICTION_INTERVAL_S + 2 < hops, (page.kinds, elapsed, hops)


def test_bench_web_measures_with_a_page_reading_the_stream(tmp_path, trained):
    figures = measure_web_cost(_config(tmp_path, trained), seconds=2.0, blocks=1)
    assert figures["web_events_read_by_page"] > 0
    for key in ("no_console", "console_no_page", "console_page_open"):
        assert figures[f"web_pipeline_us_median_paced_{key}"] > 0
