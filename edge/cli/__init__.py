"""The ``edge-slider`` command line: parse, load config, run one command, map errors to exit codes.

Each command family lives in its own module with a ``register(subparsers)`` function; every
command's handler is ``handler(args, config) -> int``. Expected failures (:class:`EdgeError`)
print one line to stderr and exit non-zero; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# NOTE: before anything imports numpy. Our matrices are tiny (at most 16×920): OpenBLAS threads
# buy nothing (training 0.28 s either way) but each keeps a buffer resident — measured 72.8 MB vs
# 70.0 MB for the daemon after a training. A user's own setting still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from typing import Callable, Sequence

from edge import __version__
from edge.config import Config, load_config
from edge.errors import EdgeError

log = logging.getLogger("edge")

Handler = Callable[[argparse.Namespace, Config], int]


def _command_modules():
    # NOTE: imported here, not at the top, so `edge-slider --help` stays fast and a broken
    # optional dependency in one family cannot stop the others from working.
    from edge.cli import audio_cmds, device_cmds, model_cmds, mqtt_cmds, bench_cmds
    return (audio_cmds, model_cmds, device_cmds, mqtt_cmds, bench_cmds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-slider",
        description="Teach a Raspberry Pi to recognise short sounds and move a servo slider.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-slider {__version__}")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="config file (default: $EDGE_SLIDER_CONFIG, /etc/edge-slider/config.toml, "
                             "~/.config/edge-slider/config.toml, else built-in defaults)")
    parser.add_argument("--state-dir", metavar="DIR", default=None,
                        help="where examples, models and the slider position live (default: device.state_dir, "
                             "$STATE_DIRECTORY under systemd, else ~/.local/state/edge-slider)")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks on errors")
    parser.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="logging level (default: service.log_level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _command_modules():
        module.register(sub)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = {"device": {"state_dir": args.state_dir}} if args.state_dir else None
        config = load_config(args.config, overrides=overrides)
        level = "DEBUG" if args.debug else (args.log_level or config.service.log_level)
        _setup_logging(level)
        rc = int(args.func(args, config) or 0)
        sys.stdout.flush()   # NOTE: here, so a reader gone at exit is caught below, not by the interpreter
        return rc
    except BrokenPipeError:
        return _reader_gone()
    except EdgeError as exc:
        if args.debug:
            log.exception("failed")
        print(f"edge-slider {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


SIGPIPE_EXIT = 141
"""128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away (`… | head`)."""


def _reader_gone() -> int:
    """The output's reader went away (`edge-slider dataset stats | head`): stop quietly, as Unix tools
    do. Python would otherwise print a traceback, and again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return SIGPIPE_EXIT
