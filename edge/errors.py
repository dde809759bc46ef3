"""Every error edge-slider raises on purpose.

Each derives from :class:`EdgeError` (so the CLI can print one line and exit non-zero) and
from the matching built-in (so callers that only know Python's own exceptions still work).
The message of each is written for the user: it names the field and the fix.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every expected edge-slider failure."""

    exit_code = 1


class ConfigError(EdgeError, ValueError):
    """The configuration (file, environment or flags) is invalid."""

    exit_code = 2

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} config problems: " + "; ".join(self.problems)
        super().__init__(msg)


class UsageError(EdgeError, ValueError):
    """A command-line argument is invalid."""

    exit_code = 2


class AudioError(EdgeError, IOError):
    """An audio device or stream failed."""


class WavError(AudioError):
    """A WAV file cannot be read or has a format we cannot convert."""


class ModelError(EdgeError, ValueError):
    """A model file is missing, corrupt, or does not match the front end."""


class RuntimeMissing(ModelError, ImportError):
    """Neither ai-edge-litert nor tflite-runtime can be imported."""


class TrainingError(EdgeError, ValueError):
    """Training cannot start or did not produce a usable model."""


class StoreError(EdgeError, IOError):
    """The example store cannot be read or written."""


class StateError(EdgeError, RuntimeError):
    """The request is not allowed in the device's current mode."""


class CommandError(EdgeError, ValueError):
    """A remote (MQTT) command is malformed or not allowed."""


class HardwareError(EdgeError, RuntimeError):
    """GPIO pins or the slider output could not be set up."""


class EdgeWarning(UserWarning):
    """Base class of warnings about degraded operation."""


class ResampleWarning(EdgeWarning):
    """The microphone does not do 44.1 kHz; audio is resampled in software."""


class SimulatedHardwareWarning(EdgeWarning):
    """Mock pins are in use: no physical buttons or servo."""
