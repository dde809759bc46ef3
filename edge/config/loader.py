"""Loading: find the file, read TOML, merge file → environment → flags, validate, report every problem.

Lookup order for the file: ``--config``, ``$EDGE_SLIDER_CONFIG``, ``/etc/edge-slider/config.toml``,
``~/.config/edge-slider/config.toml``; with none of them the built-in defaults apply.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from edge.config.build import build_classes, build_section
from edge.config.classes import DEFAULT_CLASSES
from edge.config.pins import check_pins
from edge.config.root import SECTION_TYPES, Config
from edge.errors import ConfigError

ENV_PREFIX = "EDGE_SLIDER_"
CONFIG_ENV = "EDGE_SLIDER_CONFIG"
PASSWORD_ENV = "EDGE_SLIDER_MQTT_PASSWORD"
SYSTEM_CONFIG = Path("/etc/edge-slider/config.toml")


def _user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edge-slider" / "config.toml"


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, by the documented lookup order; None = built-in defaults."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return p
    if env.get(CONFIG_ENV):
        p = Path(env[CONFIG_ENV]).expanduser()
        if not p.is_file():
            raise ConfigError(f"${CONFIG_ENV} = {env[CONFIG_ENV]}: no such file")
        return p
    for p in (SYSTEM_CONFIG, _user_config()):
        if p.is_file():
            return p
    return None


def load_config(path: str | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Read, merge and validate the configuration; raise ConfigError listing every problem.

    ``overrides`` are command-line values, ``{"device": {"state_dir": "..."}}``.
    """
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read ({exc})") from None
    return config_from_dict(raw, env, overrides, str(file or ""))


def config_from_dict(raw: Mapping[str, Any], env: Mapping[str, str] | None = None,
                     overrides: Mapping[str, Mapping[str, Any]] | None = None, source: str = "") -> Config:
    env = {} if env is None else env
    problems: list[str] = []
    raw = dict(raw)
    raw.pop("config_version", None)
    sections: dict[str, Any] = {}
    for name, cls in SECTION_TYPES.items():
        body = raw.pop(name, {})
        if not isinstance(body, dict):
            problems.append(f"[{name}]: expected a table of keys")
            body = {}
        sections[name] = build_section(cls, body, name, problems)
    classes = build_classes(raw.pop("classes"), problems) if "classes" in raw else DEFAULT_CLASSES
    for extra in raw:
        problems.append(f"[{extra}]: unknown section; valid sections are "
                        f"{', '.join([*SECTION_TYPES, 'classes'])}")
    # Environment: EDGE_SLIDER_<SECTION>_<KEY>
    for name, cls in SECTION_TYPES.items():
        env_raw = {}
        for f in dataclasses.fields(cls):
            var = env_var(name, f.name)
            if var in env:
                env_raw[f.name] = env[var]
        if env_raw:
            sections[name] = build_section(cls, env_raw, name, problems, text=True, base=sections[name],
                                    where_of=functools.partial(env_var, name))
    problems.extend(_unknown_env(env))
    for name, values in (overrides or {}).items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            sections[name] = build_section(SECTION_TYPES[name], values, f"--{name}", problems, base=sections[name])
    cfg = Config(classes=classes, source_path=source, **sections)
    check_pins(cfg.classes, cfg.buttons, cfg.slider, problems)
    if cfg.background_label is None and cfg.collect.gate and cfg.collect.quiet_to_background:
        problems.append("collect.quiet_to_background = true needs a class with background = true "
                        "(or set collect.quiet_to_background = false)")
    if problems:
        raise ConfigError(problems)
    return cfg


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``: ``EDGE_SLIDER_LISTEN_THRESHOLD``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


OTHER_ENV = frozenset({CONFIG_ENV, "EDGE_SLIDER_BENCH_DIR", "EDGE_SLIDER_STATE"})
"""Variables with our prefix that are not config keys (the config file, the bench data, deploy/dev.sh's
state dir)."""


def _unknown_env(env: Mapping[str, str]) -> list[str]:
    """A misspelled override used to be ignored silently (the device ran with the old value): each
    EDGE_SLIDER_* variable that is no key is a problem naming the closest valid one."""
    import difflib
    valid = [env_var(name, f.name) for name, cls in SECTION_TYPES.items() for f in dataclasses.fields(cls)]
    known = set(valid) | OTHER_ENV
    problems = []
    for var in sorted(v for v in env if v.startswith(ENV_PREFIX) and v not in known):
        close = difflib.get_close_matches(var, valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"overrides are named {ENV_PREFIX}<SECTION>_<KEY>"
        problems.append(f"{var}: not a config key ({hint}); fix or unset it")
    return problems


def field_docs() -> dict[str, list[tuple[str, Any, str]]]:
    """Section → [(key, default, doc)], for the example config and its test."""
    out = {}
    for name, cls in SECTION_TYPES.items():
        out[name] = [(f.name, f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]
    return out
