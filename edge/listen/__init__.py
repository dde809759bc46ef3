"""Listening: from class probabilities to slider actions, and the memory of the last move.

Knows no pins, no MQTT and no store (tests/test_layout.py checks)."""
