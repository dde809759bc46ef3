"""The one place that chooses an audio backend from the config: WAV, synthetic script or the mic.

It lives apart from :mod:`edge.audio.sources` because the mic backend (:mod:`edge.audio.mic`)
subclasses ``AudioSource``: choosing there made the two modules import each other.
"""

from __future__ import annotations

from edge.audio.ring import Ring
from edge.audio.sources import AudioSource, SyntheticSource, WavSource
from edge.config import AudioSettings


def make_source(settings: AudioSettings, ring: Ring, wav: str | None = None, script: str | None = None,
                realtime: bool | None = None, loop: bool | None = None) -> AudioSource:
    """Build the configured source (the one place that chooses a backend)."""
    realtime = settings.realtime if realtime is None else realtime
    loop = settings.loop if loop is None else loop
    kind = "wav" if wav else ("synthetic" if script else settings.source)
    if kind == "wav":
        return WavSource(ring, wav or settings.wav, realtime=realtime, loop=loop, gain_db=settings.gain_db)
    if kind == "synthetic":
        return SyntheticSource(ring, script or SyntheticSource.DEFAULT_SCRIPT, realtime=realtime, loop=loop,
                               gain_db=settings.gain_db)
    from edge.audio.mic import PyAudioSource  # NOTE: imports pyaudio; only when a mic is wanted
    return PyAudioSource(ring, settings)
