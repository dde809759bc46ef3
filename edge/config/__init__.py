"""Configuration: one frozen dataclass per section, loaded file → environment → flags.

Lookup order for the file: ``--config``, ``$EDGE_SLIDER_CONFIG``, ``/etc/edge-slider/config.toml``,
``~/.config/edge-slider/config.toml``; with none of them the built-in defaults apply. Then any
``EDGE_SLIDER_<SECTION>_<KEY>`` environment variable overrides its key (``EDGE_SLIDER_MQTT_HOST=broker``),
then command-line flags. Every problem is collected and reported in one :class:`ConfigError`, each
naming the key, the bad value and what is allowed.

``config/edge-slider.toml`` documents every key; a test checks it matches the defaults here.

The package, module by module: :mod:`~edge.config.fields` (the shared constants and the field
helper), one module per section (:mod:`~edge.config.device`, :mod:`~edge.config.audio`,
:mod:`~edge.config.classes`, :mod:`~edge.config.train`, :mod:`~edge.config.listen`,
:mod:`~edge.config.pins`, :mod:`~edge.config.mqtt`; ``[web]`` lives in :mod:`edge.web.settings`),
:mod:`~edge.config.root` (the whole :class:`Config`), :mod:`~edge.config.build` (one section from raw
values) and :mod:`~edge.config.loader` (file, environment, flags). Import from ``edge.config``.
"""

from __future__ import annotations

from edge.config.audio import AudioSettings, FrontendSettings
from edge.config.classes import DEFAULT_CLASSES, ClassSpec, CollectSettings
from edge.config.device import DeviceSettings, ServiceSettings, default_state_dir
from edge.config.fields import (CONFIG_VERSION, FFT_SIZE, NO_PIN, NUM_BINS, NUM_FRAMES, SAMPLE_RATE, SLIDER_MAX,
                                SLIDER_MIN, VALID_BCM)
from edge.config.listen import ListenSettings
from edge.config.loader import (CONFIG_ENV, ENV_PREFIX, OTHER_ENV, PASSWORD_ENV, SYSTEM_CONFIG, config_from_dict,
                                env_var, field_docs, find_config_file, load_config)
from edge.config.mqtt import MqttSettings
from edge.config.pins import ButtonSettings, SliderSettings
from edge.config.root import SECTION_TYPES, Config
from edge.config.train import TrainSettings
from edge.web.settings import WebSettings

__all__ = [
    "AudioSettings", "ButtonSettings", "CONFIG_ENV", "CONFIG_VERSION", "ClassSpec", "CollectSettings", "Config",
    "DEFAULT_CLASSES", "DeviceSettings", "ENV_PREFIX", "FFT_SIZE", "FrontendSettings", "ListenSettings",
    "MqttSettings", "NO_PIN", "NUM_BINS", "NUM_FRAMES", "OTHER_ENV", "PASSWORD_ENV", "SAMPLE_RATE", "SECTION_TYPES",
    "SLIDER_MAX", "SLIDER_MIN", "SYSTEM_CONFIG", "ServiceSettings", "SliderSettings", "TrainSettings",
    "VALID_BCM", "WebSettings", "config_from_dict", "default_state_dir", "env_var", "field_docs",
    "find_config_file", "load_config",
]
