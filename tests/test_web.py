"""The web console against a real Service on simulated hardware (issue 16)."""

import json
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
    assert load_config(None, env={}).web.listen == ""
    assert load_config(None, env={}, overrides={"web": {"listen": "0.0.0.0:8080", "token": "t"}}).web.token == "t"
