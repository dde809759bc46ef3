"""The web console against a real Service on simulated hardware (issue 16)."""

import http.client
import json
import ssl
import subprocess
import shutil
import threading
import time
import urllib.error
import urllib.request

import pytest

from edge.config import Config, load_config
from edge.errors import ConfigError
from edge.service import RunOptions, Service
from tests.trained import FAST_TRAIN, teach_by_buttons


@pytest.fixture(scope="module")
def trained_web_state(tmp_path_factory):
    return teach_by_buttons(tmp_path_factory.mktemp("web-trained"), fast=True)


def _config(tmp_path, token=""):
    return (Config().replace("device", state_dir=str(tmp_path / "state")).replace("mqtt", enabled=False)
            .replace("web", listen="127.0.0.1:0", token=token).replace("train", **FAST_TRAIN)
            .replace("listen", calibrated=False))


class Running:
    def __init__(self, config, script="gap:0.5, snap, gap:0.6, whistle:0.4"):
        self.service = Service(config, RunOptions(simulate=True, mqtt=False, script=script, realtime=True, loop=True))
        self.thread = threading.Thread(target=self.service.run, name="service-run")

    def __enter__(self):
        self.thread.start()
        assert self.service.web is not None
        self.base = f"http://127.0.0.1:{self.service.web.port}"
        return self

    def __exit__(self, *exc):
        self.service.request_stop()
        self.thread.join(10)
        self.service.close()

    def request(self, path, body=None, token=None):
        req = urllib.request.Request(self.base + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _wait(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_page_state_and_bad_request(tmp_path):
    with Running(_config(tmp_path)) as dev:
        status, page = dev.request("/")
        assert status == 200 and b"hold" not in page[:0] and b"<title>edge-slider" in page
        status, body = dev.request("/api/state")
        state = json.loads(body)
        assert status == 200 and set(state["labels"]) == set(dev.service.config.labels)
        assert state["mqtt"] == {"enabled": False, "connected": False} and state["rss_mb"] > 0
        status, body = dev.request("/api/command", {"command": "collect", "label": "nope", "action": "start"})
        err = json.loads(body)
        assert status == 400 and err["ok"] is False and "unknown label" in err["error"] and "\n" not in err["error"]
        status, body = dev.request("/api/command", {"nocommand": 1})
        assert status == 400 and '"command"' in json.loads(body)["error"]
        for bad in ({"command": "fly"}, {"command": "listen", "on": "yes"}, {"command": "position", "value": 99}):
            status, body = dev.request("/api/command", bad)
            err = json.loads(body)
            assert status == 400 and err["ok"] is False and err["error"] and "\n" not in err["error"], bad
        req = urllib.request.Request(dev.base + "/api/command", data=b"{not json")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 400 and "not JSON" in json.loads(exc.value.read())["error"]


def test_collect_through_the_console_counts_rise_then_delete(tmp_path):
    with Running(_config(tmp_path), script="snap, gap:0.2") as dev:
        label = dev.service.config.labels[0]
        before = json.loads(dev.request("/api/state")[1])["labels"][label]
        assert dev.request("/api/command", {"command": "collect", "label": label, "action": "start"})[0] == 200
        time.sleep(1.5)
        status, body = dev.request("/api/command", {"command": "collect", "label": label, "action": "stop"})
        assert status == 200, body
        assert _wait(lambda: json.loads(dev.request("/api/state")[1])["labels"][label] > before)
        status, body = dev.request("/api/command", {"command": "examples/delete", "label": label})
        assert status == 200, body
        assert _wait(lambda: json.loads(dev.request("/api/state")[1])["labels"][label] == 0)


def test_events_stream_and_listen_moves_slider(tmp_path, trained_web_state):
    shutil.copytree(trained_web_state, tmp_path / "state")
    with Running(_config(tmp_path)) as dev:
        stream = urllib.request.urlopen(dev.base + "/api/events", timeout=10)
        assert stream.readline().startswith(b"event: state")
        status, body = dev.request("/api/command", {"command": "listen", "on": True})
        assert status == 200, body
        kinds = set()
        end = time.monotonic() + 20
        while "decision" not in kinds and time.monotonic() < end:
            line = stream.readline()
            if line.startswith(b"data: "):
                kinds.add(json.loads(line[6:]).get("kind"))
        stream.close()
        assert "decision" in kinds, kinds


def test_token_required_when_configured(tmp_path):
    with Running(_config(tmp_path, token="s3cret")) as dev:
        assert dev.request("/")[0] == 200          # the static page: it shows "unauthorized" itself
        assert dev.request("/api/state")[0] == 401
        assert dev.request("/api/events")[0] == 401
        assert dev.request("/api/command", {"command": "train"})[0] == 401
        assert dev.request("/api/state", token="wrong")[0] == 401
        assert dev.request("/api/state", token="s3cret")[0] == 200
        assert dev.request("/api/state?token=s3cret")[0] == 200


def test_beyond_loopback_without_token_is_a_config_error():
    with pytest.raises(ConfigError, match="web.token") as err:
        load_config(None, env={}, overrides={"web": {"listen": "0.0.0.0:8080"}})
    assert "\n" not in str(err.value) and "127.0.0.1" in str(err.value)
    assert load_config(None, env={}).web.listen == "127.0.0.1:8080"
    assert load_config(None, env={}, overrides={"web": {"listen": "0.0.0.0:8080", "token": "t"}}).web.token == "t"


def _hold(dev, label, seconds=1.2):
    status, body = dev.request("/api/command", {"command": "collect", "label": label, "action": "start"})
    assert status == 200, body
    time.sleep(seconds)
    status, reply = dev.request("/api/command", {"command": "collect", "label": label, "action": "stop"})
    assert status == 200, reply
    return json.loads(body)["result"]["session"]


def test_sessions_spectrogram_and_delete_one(tmp_path):
    with Running(_config(tmp_path), script="snap, gap:0.2") as dev:
        label = dev.service.config.labels[0]
        first, second = _hold(dev, label), _hold(dev, label)
        status, body = dev.request("/api/sessions")
        listed = {s["session"]: s for s in json.loads(body)["sessions"]}
        assert status == 200 and {first, second} <= set(listed)
        assert listed[first]["label"] == label and listed[first]["count"] == sum(listed[first]["labels"].values()) > 0
        status, body = dev.request(f"/api/sessions/{first}/spectrogram")
        spec = json.loads(body)
        assert status == 200 and spec["bins"] == 232 and len(spec["frames"]) == listed[first]["count"]
        assert all(len(f) == 232 and all(isinstance(v, int) for v in f) for f in spec["frames"])
        assert len(spec["labels"]) == len(spec["frames"]) and spec["max"] > spec["min"]
        status, body = dev.request("/api/sessions/nope/spectrogram")
        assert status == 404 and "no session 'nope'" in json.loads(body)["error"]
        status, body = dev.request("/api/sessions/x/wave")
        assert status == 400 and "/spectrogram" in json.loads(body)["error"]
        before = json.loads(dev.request("/api/state")[1])["labels"][label]
        assert dev.request("/api/command", {"command": "examples/delete", "session": first})[0] == 200
        listed = {s["session"] for s in json.loads(dev.request("/api/sessions")[1])["sessions"]}
        assert first not in listed and second in listed
        assert json.loads(dev.request("/api/state")[1])["labels"][label] < before


def test_spectrogram_puts_windows_in_time_order():
    from edge.web.curate import _time_order
    import numpy as np
    frames = np.random.default_rng(1).normal(size=(8, 232)).astype(np.float32)
    windows = [frames[i:i + 3] for i in range(6)]
    stored = [windows[i] for i in (2, 3, 4, 0, 1, 5)]      # sound first, then the quiet ones
    assert [stored[i][-1].tobytes() for i in _time_order(stored)] == [w[-1].tobytes() for w in windows]


def test_model_history_and_heldout_report(tmp_path, trained_web_state):
    shutil.copytree(trained_web_state, tmp_path / "state")
    with Running(_config(tmp_path)) as dev:
        status, body = dev.request("/api/model")
        info = json.loads(body)
        assert status == 200 and info["current"] == 1 and info["versions"] == [1]
        labels = info["labels"]
        assert labels and len(info["heldout"]["confusion"]) == len(labels)
        assert all(len(row) == len(labels) for row in info["heldout"]["confusion"])
        assert isinstance(info["false_per_min_estimate"], (int, float))


def test_port_in_use_is_one_warning_and_the_device_runs_on(tmp_path, caplog):
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    listen = f"127.0.0.1:{taken.getsockname()[1]}"
    config = _config(tmp_path).replace("web", listen=listen)
    try:
        with caplog.at_level("WARNING", logger="edge.service"):
            service = Service(config, RunOptions(simulate=True, mqtt=False, script="snap", duration_s=0.5))
        with service:
            assert service.web is None and service.run() == 0
    finally:
        taken.close()
    lines = [r.getMessage() for r in caplog.records if "web.listen" in r.getMessage()]
    assert len(lines) == 1 and listen in lines[0] and "another port, or ''" in lines[0], lines


def _self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_https_with_a_configured_certificate_and_no_plain_http(tmp_path):
    cert, key = _self_signed(tmp_path)
    with Running(_config(tmp_path).replace("web", cert=cert, key=key)) as dev:
        assert dev.service.web.scheme == "https"
        url = dev.base.replace("http://", "https://") + "/api/state"
        with urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context(cafile=cert)) as r:
            assert r.status == 200 and "mode" in json.loads(r.read())
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(dev.base + "/api/state", timeout=5).read()   # plain HTTP gets nothing


def test_tls_settings_errors_name_the_field(tmp_path, caplog):
    cert, key = _self_signed(tmp_path)
    with pytest.raises(ConfigError, match=r"^web.key: needed with web.cert"):
        load_config(None, env={}, overrides={"web": {"cert": cert}})
    with pytest.raises(ConfigError, match=r"web.cert = .*nope.pem.*no readable file"):
        load_config(None, env={}, overrides={"web": {"cert": str(tmp_path / "nope.pem"), "key": key}})
    # a file that is there but is no certificate: one warning, the device runs on without the console
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with caplog.at_level("WARNING", logger="edge.service"):
        service = Service(_config(tmp_path).replace("web", cert=str(bad), key=key),
                          RunOptions(simulate=True, mqtt=False, script="snap", duration_s=0.3))
    with service:
        assert service.web is None and service.run() == 0
    lines = [r.getMessage() for r in caplog.records if "web.cert" in r.getMessage()]
    assert len(lines) == 1 and "runs without the console" in lines[0] and "\n" not in lines[0], lines


def test_a_holds_audio_plays_back_then_goes_with_its_session(tmp_path):
    import io
    import wave
    with Running(_config(tmp_path), script="snap, gap:0.2") as dev:
        label = dev.service.config.labels[0]
        status, body = dev.request("/api/command", {"command": "collect", "label": label, "action": "start"})
        assert status == 200, body
        time.sleep(1.5)
        assert dev.request("/api/command", {"command": "collect", "label": label, "action": "stop"})[0] == 200
        assert _wait(lambda: json.loads(dev.request("/api/sessions")[1])["sessions"])
        session = json.loads(dev.request("/api/sessions")[1])["sessions"][-1]["session"]
        path = f"/api/sessions/{session}/audio.wav"
        assert _wait(lambda: dev.request(path)[0] == 200)
        with wave.open(io.BytesIO(dev.request(path)[1])) as w:
            seconds = w.getnframes() / w.getframerate()
            assert w.getframerate() == 44100 and w.getsampwidth() == 2 and w.getnchannels() == 1
        assert 1.0 <= seconds <= 2.5, seconds          # the 1.5 s the button was held, give or take a block
        status, body = dev.request("/api/command", {"command": "examples/delete", "session": session})
        assert status == 200, body
        assert _wait(lambda: dev.request(path)[0] == 404)
        assert not (tmp_path / "state" / "holds" / f"{session}.wav").exists()
        status, body = dev.request("/api/sessions/..%2Fexamples/audio.wav")
        assert status == 404 and b"\n" not in body.strip()


def test_hold_audio_is_bounded_oldest_first(tmp_path):
    import numpy as np
    from edge.teach.hold_audio import HoldAudioShelf
    shelf = HoldAudioShelf(tmp_path, budget_mb=0.25)       # ~2.9 s of 16-bit mono at 44.1 kHz
    one_s = np.zeros(44100, np.float32)
    for i in range(4):
        assert shelf.save(f"s{i}", one_s) is not None
        time.sleep(0.01)                                  # distinct mtimes
    kept = sorted(p.stem for p in tmp_path.glob("*.wav"))
    assert kept == ["s2", "s3"], kept
    assert shelf.path("s0") is None and shelf.path("../s3") is None and shelf.path("s3") is not None
    assert HoldAudioShelf(tmp_path / "none", 0).save("s9", one_s) is None    # 0 keeps no audio
