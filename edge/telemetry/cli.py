"""CLI commands of the telemetry package: ``edge-slider monitor``."""

from __future__ import annotations

import argparse

from edge.config import Config
from edge.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("monitor", help="live terminal view of a device from its MQTT topics",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", metavar="ID", default=None,
                   help="device id to watch (default: device.id of the config)")
    p.add_argument("--once", action="store_true", help="print one snapshot (retained status + state) and exit")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="--once: give up when nothing arrived within S seconds")
    p.set_defaults(func=cmd_monitor)


def cmd_monitor(args: argparse.Namespace, config: Config) -> int:
    from edge.telemetry.monitor import run_monitor
    device = args.device or config.device.id
    if not device or not all(c.isalnum() or c in "-_" for c in device):
        raise UsageError(f"--device {device!r}: use letters, digits, '-' and '_' only")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return run_monitor(config, device, once=args.once, timeout=args.timeout)
