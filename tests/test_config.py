"""Config: the example file is true, valid files load, every invalid case names its key."""

import re
from pathlib import Path

import pytest

from edge.config import Config, config_from_dict, load_config
from edge.errors import ConfigError
from edge.web.settings import WebSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "edge-slider.toml"


def uncommented_example(tmp_path) -> Path:
    """The shipped example with every key uncommented: must equal the built-in defaults."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        m = re.match(r'# (\[[\w.]+\]|\w+ = (?:".*"|true|false|-?[\d.e+-]+))$', line)
        lines.append(m.group(1) if m else line)
    p = tmp_path / "full.toml"
    p.write_text("\n".join(lines))
    return p


def test_example_config_lists_every_key_with_its_default(tmp_path):
    cfg = load_config(str(uncommented_example(tmp_path)), env={})
    defaults = Config(web=WebSettings())  # the product's default console (conftest turns it off in tests)
    assert cfg.redacted() == {**defaults.redacted(), "source_path": cfg.source_path}


def test_valid_file_loads_and_env_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[mqtt]\nhost = "broker"\n[listen]\nthreshold = 0.9\n'
                 '[classes.up]\naction = "step"\nvalue = 1\nbutton = 5\n'
                 '[classes.bg]\nbackground = true\nbutton = 6\n')
    cfg = load_config(str(p), env={"EDGE_SLIDER_MQTT_PORT": "1884", "EDGE_SLIDER_MQTT_PASSWORD": "s3cret"})
    assert cfg.mqtt.host == "broker" and cfg.mqtt.port == 1884
    assert cfg.listen.threshold == 0.9
    assert cfg.labels == ("up", "bg") and cfg.background_label == "bg"
    assert cfg.class_spec("up").value == 1.0
    assert cfg.mqtt.password == "s3cret"
    assert "s3cret" not in repr(cfg.redacted())


def test_lookup_order_env_var_then_defaults(tmp_path, monkeypatch):
    p = tmp_path / "c.toml"
    p.write_text('[device]\nid = "from-env-file"\n')
    assert load_config(None, env={"EDGE_SLIDER_CONFIG": str(p)}).device.id == "from-env-file"
    with pytest.raises(ConfigError, match="EDGE_SLIDER_CONFIG"):
        load_config(None, env={"EDGE_SLIDER_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="--config"):
        load_config(str(tmp_path / "nope.toml"), env={})


@pytest.mark.parametrize("raw, key", [
    ({"mqtt": {"port": 0}}, "mqtt.port"),
    ({"mqtt": {"port": "x"}}, "mqtt.port"),
    ({"mqtt": {"hots": "x"}}, "mqtt.hots"),
    ({"mqtt": {"certfile": "/nonexistent.pem", "keyfile": "/nonexistent.key"}}, "mqtt.certfile"),
    ({"mqtt": {"certfile": "/etc/hostname"}}, "mqtt.keyfile"),
    ({"mqtt": {"base_topic": "a/#"}}, "mqtt.base_topic"),
    ({"listen": {"threshold": 1.5}}, "listen.threshold"),
    ({"listen": {"mode": "sometimes"}}, "listen.mode"),
    ({"listen": {"smooth_k": 4, "smooth_n": 3}}, "listen.smooth_k"),
    ({"frontend": {"hop": 256}}, "frontend.hop"),
    ({"audio": {"source": "wav"}}, "audio.wav"),
    ({"audio": {"ring_seconds": float("nan")}}, "audio.ring_seconds"),
    ({"slider": {"pin": 17}}, "slider.pin"),
    ({"slider": {"min_pulse_width": 0.003}}, "slider.min_pulse_width"),
    ({"buttons": {"train": 40}}, "buttons.train"),
    ({"device": {"id": "a/b"}}, "device.id"),
    ({"classes": {"only": {"action": "step"}}}, "classes"),
    ({"classes": {"a": {"action": "jump"}, "b": {"background": True}}}, "classes.a.action"),
    ({"widgets": {}}, "[widgets]"),
    ({"train": {"epochs": True}}, "train.epochs"),
])
def test_invalid_config_names_its_key(raw, key):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"mqtt": {"port": -1}, "listen": {"threshold": 2}, "train": {"epochs": 0}})
    assert len(err.value.problems) == 3


def test_bad_toml_is_one_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[mqtt\nhost=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(p), env={})


def test_bad_env_value_names_the_variable_as_it_is_spelled():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({}, env={"EDGE_SLIDER_LISTEN_THRESHOLD": "high"})
    assert str(exc.value) == "EDGE_SLIDER_LISTEN_THRESHOLD = 'high': expected float"


def test_misspelled_env_override_is_an_error_naming_the_closest_key():
    """A typo'd override was ignored silently: the device ran with the old threshold."""
    with pytest.raises(ConfigError) as exc:
        config_from_dict({}, env={"EDGE_SLIDER_LISTEN_THRESHLOD": "0.9"})
    msg = str(exc.value)
    assert "EDGE_SLIDER_LISTEN_THRESHLOD" in msg and "did you mean EDGE_SLIDER_LISTEN_THRESHOLD" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="EDGE_SLIDER_MQTT_HOTS.*EDGE_SLIDER_MQTT_HOST"):
        config_from_dict({}, env={"EDGE_SLIDER_MQTT_HOTS": "broker"})


def test_env_variables_that_are_not_keys_are_still_allowed():
    env = {"EDGE_SLIDER_CONFIG": "", "EDGE_SLIDER_BENCH_DIR": "/x", "EDGE_SLIDER_STATE": "/y",
           "EDGE_SLIDER_MQTT_PASSWORD": "pw", "EDGE_SLIDER_LISTEN_THRESHOLD": "0.9", "OTHER_LISTEN_X": "1"}
    cfg = config_from_dict({}, env=env)
    assert cfg.listen.threshold == 0.9 and cfg.mqtt.password == "pw"


def test_state_dir_from_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "sd"))
    assert Config().state_path == tmp_path / "sd"
    assert config_from_dict({}, overrides={"device": {"state_dir": str(tmp_path / "x")}}).state_path == tmp_path / "x"
