"""Developer and benchmark tooling: `bench` (and `--room`, `--soak`), the demo, test sounds, a private
Mosquitto, the bank builder. The daemon never imports it (tests/test_layout.py checks)."""
