"""Hardware on gpiozero's MockFactory (its own test backend): servo slider, buttons, status LED."""

import json
import time

import pytest

from edge.config import Config, SliderSettings
from edge.device.buttons import ButtonPanel, CollectPressed, CollectReleased, DiscardRequested, ListenToggled, \
    TrainRequested
from edge.device.leds import StatusLed
from edge.device.pins import mock_factory
from edge.device.slider import NullOutput, PwmLedOutput, ServoOutput, Slider
from tests.fakes import ManualClock


@pytest.fixture
def factory():
    f = mock_factory()
    yield f
    f.reset()


def test_servo_maps_positions_to_pulse_widths_and_detaches(factory, tmp_path):
    settings = SliderSettings(pin=18, detach_after_s=2.0)
    now = [100.0]
    slider = Slider(ServoOutput(settings, factory), settings, tmp_path / "pos.json", clock=lambda: now[0])
    pin = factory.pin(18)
    slider.set(0.0)
    assert pin.state == pytest.approx(0.05)             # 1 ms of 20 ms
    slider.set(10.0)
    assert pin.state == pytest.approx(0.10)             # 2 ms
    slider.step(-5.0)
    assert pin.state == pytest.approx(0.075) and pin.frequency == pytest.approx(50)
    now[0] += 1.0
    slider.tick()
    assert pin.frequency is not None                    # still driven
    now[0] += 1.5
    slider.tick()
    assert pin.frequency is None                        # detached: no pulses, no hum
    slider.step(0.1)
    assert pin.state == pytest.approx((1 + 5.1 / 10) / 20)
    slider.close()


def test_position_clamps_and_survives_a_restart(factory, tmp_path):
    settings = SliderSettings(pin=18, initial=5.0)
    state = tmp_path / "pos.json"
    slider = Slider(ServoOutput(settings, factory), settings, state, save_interval=3600)
    for _ in range(70):
        slider.step(0.1)
    assert slider.position == 10.0
    slider.step(-0.3)
    assert slider.position == pytest.approx(9.7)
    slider.park()
    slider.close()
    assert json.loads(state.read_text()) == {"position": 9.7}
    again = Slider(NullOutput(), settings, state)
    assert again.position == pytest.approx(9.7)
    state.write_text("{broken")
    assert Slider(NullOutput(), settings, state).position == 5.0


def test_pwm_led_output(factory):
    settings = SliderSettings(output="pwmled", pin=12)
    slider = Slider(PwmLedOutput(settings, factory), settings, None)
    slider.set(2.5)
    assert factory.pin(12).state == pytest.approx(0.25)
    slider.close()


def collect_events(factory, debounce=0.05, discard_hold=3.0, clock=None):
    cfg = Config().replace("buttons", debounce_s=debounce).replace("collect", discard_hold_s=discard_hold)
    events = []
    clock = clock or ManualClock()
    panel = ButtonPanel(cfg, events.append, pin_factory=factory, clock=clock, schedule=clock.schedule)
    return cfg, panel, events


def test_class_buttons_collect_while_held(factory):
    clock = ManualClock()
    cfg, panel, events = collect_events(factory, clock=clock)
    left = factory.pin(cfg.class_spec("left").button)
    left.drive_low()
    clock.advance(0.08)
    left.drive_high()
    assert events == [CollectPressed("left"), CollectReleased("left")]
    panel.close()


def test_bounces_are_ignored_and_a_real_release_inside_the_window_still_counts(factory):
    clock = ManualClock()
    cfg, panel, events = collect_events(factory, debounce=0.1, clock=clock)
    pin = factory.pin(cfg.class_spec("right").button)
    pin.drive_low()
    for _ in range(3):          # contact bounce right after the press
        pin.drive_high()
        pin.drive_low()
    assert events == [CollectPressed("right")]
    pin.drive_high()            # released for real, but inside the debounce window
    assert events == [CollectPressed("right")]
    clock.advance(0.099)
    assert events == [CollectPressed("right")]
    clock.advance(0.002)        # the window closes, the pin is re-read: released
    assert events == [CollectPressed("right"), CollectReleased("right")]
    panel.close()


def test_train_short_press_trains_long_hold_discards(factory):
    clock = ManualClock()
    cfg, panel, events = collect_events(factory, discard_hold=3.0, clock=clock)
    train = factory.pin(cfg.buttons.train)
    train.drive_low(); clock.advance(0.06); train.drive_high()
    clock.advance(1.0)
    train.drive_low(); clock.advance(2.99); train.drive_high()    # just short of the discard hold
    clock.advance(1.0)
    train.drive_low(); clock.advance(3.0); train.drive_high()
    listen = factory.pin(cfg.buttons.listen)
    clock.advance(1.0)
    listen.drive_low(); clock.advance(0.06); listen.drive_high()
    assert events == [TrainRequested(), TrainRequested(), DiscardRequested(), ListenToggled()]
    panel.close()


def test_status_led_patterns(factory):
    led = StatusLed(25, pin_factory=factory)
    pin = factory.pin(25)
    led.show("listening")
    assert pin.state == 1
    led.show("collecting")
    time.sleep(0.5)
    changes = [s.state for s in pin.states[-10:]]
    assert 0 in changes and 1 in changes          # blinking
    led.show("error")
    led.show("idle")
    assert led.mode == "idle"
    led.close()
    StatusLed(-1).show("idle")                    # no LED configured: a no-op


def test_pin_factory_off_a_pi_names_every_factory_it_tried(monkeypatch):
    """Off a Pi (this machine: no lgpio, RPi.GPIO or pigpio module; no Pi revision for native) the
    real chooser must fail with one line naming each factory and the fix, not a gpiozero traceback."""
    from pathlib import Path

    from edge.device.pins import make_pin_factory
    from edge.errors import HardwareError
    if Path("/proc/device-tree/model").exists():
        pytest.fail("this test expects a machine that is not a Raspberry Pi")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(HardwareError, match=r"lgpio: .*rpigpio: .*pigpio: .*native: .*use --simulate"):
        make_pin_factory(False)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "rpio")
    with pytest.raises(HardwareError, match=r"GPIOZERO_PIN_FACTORY='rpio': use one of lgpio, rpigpio"):
        make_pin_factory(False)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "Mock")
    assert type(make_pin_factory(False)).__name__ == "MockFactory"
