"""edge-slider: recognise short sounds on a Raspberry Pi and move a servo slider."""

__version__ = "0.1.0"
