"""Teaching the device: a button hold through the energy gate into the example store, and training.

Knows no pins and no MQTT (tests/test_layout.py checks): the engine and the service join it to them."""
