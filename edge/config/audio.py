"""The ``[audio]`` and ``[frontend]`` sections: where audio comes from and how it becomes frames."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.fields import _doc


@dataclass(frozen=True)
class AudioSettings:
    source: str = _doc("Where audio comes from: pyaudio (a microphone), wav (replay a file), "
                       "synthetic (scripted demo sounds).", default="pyaudio", choices=("pyaudio", "wav", "synthetic"))
    device: str = _doc("PyAudio input device: an index, or a substring of its name; '' = the default input.",
                       default="")
    wav: str = _doc("WAV file for source = wav.", default="")
    loop: bool = _doc("source = wav/synthetic: start again at the end instead of stopping.", default=True)
    realtime: bool = _doc("source = wav/synthetic: deliver audio at real-time pace (false = as fast as possible).",
                          default=True)
    ring_seconds: float = _doc("Ring buffer capacity in seconds: how long the loop may stall before audio is "
                               "lost (overruns).", default=4.0, min=1.0, max=120.0)
    buffer_frames: int = _doc("Samples per PortAudio callback (1024 = one hop).", default=1024, min=64, max=16384)
    gain_db: float = _doc("Software gain applied to every sample, dB (0 = none).", default=0.0, min=-40.0, max=40.0)

    def validate(self) -> list[str]:
        if self.source == "wav" and not self.wav:
            return ["audio.wav is empty but audio.source = 'wav': set audio.wav to a .wav file"]
        return []


@dataclass(frozen=True)
class FrontendSettings:
    hop: int = _doc("Samples between frames: 1024 as the browser (23.2 ms), or 512 for half the latency "
                    "at twice the CPU (a model trained at one hop works at the other only approximately).",
                    default=1024, choices=(1024, 512))
    db_floor: float = _doc("dB value that replaces -inf (digital silence) and anything below it.",
                           default=-160.0, min=-400.0, max=-60.0)
