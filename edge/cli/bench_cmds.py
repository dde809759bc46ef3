"""``edge-slider bench``: every figure in one run, beside its anchor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.config import Config
from edge.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure speed, accuracy and memory against the reference anchors")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, ~1 min)")
    p.add_argument("--data", metavar="DIR", help="folder with seed-train.npz / seed-test.npz "
                   "(default: $EDGE_SLIDER_BENCH_DIR, else the checkout's tests/data, else ../shared/bench)")
    p.add_argument("--soak", type=float, metavar="MIN", help="instead: run the daemon for MIN minutes under a fake "
                   "systemd watchdog with a private broker (trainings, a 60 s broker outage) and report "
                   "memory growth, overruns and watchdog gaps")
    p.add_argument("--instructions", action="store_true", help="instead: count CPU instructions per hop of the "
                   "listening pipeline under valgrind (machine-independent; ~2 min) and estimate a Pi 4 and a "
                   "Pi Zero 2 W from them")
    p.add_argument("--web", action="store_true", help="instead: what the web console costs the audio loop per hop "
                   "(one page open vs. no console, real-time pace) and the daemon's memory with and without it")
    room = p.add_argument_group("room benchmark (issue 12)")
    room.add_argument("--room", action="store_true", help="instead: teach like a user (button holds from Debian "
                      "sounds), then count recall and false servo moves in generated rooms; with --quick: 1 seed, "
                      "short streams")
    room.add_argument("--seeds", default=None, metavar="1,2,3", help="--room: scenario seeds (default 1,2,3; "
                      "--quick: 1)")
    room.add_argument("--scenario", action="append", metavar="NAME", help="--room: only this scenario "
                      "(repeatable): words, everyday, snapwhistle")
    room.add_argument("--work", metavar="DIR", help="--room: cache of decoded and generated sounds (default: "
                      "$XDG_CACHE_HOME/edge-slider/roombench)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args, config: Config) -> int:
    from edge.tooling.bench import default_bench_dir, format_table, run_bench
    if args.room:
        return _room(args, config)
    if args.instructions:
        from edge.tooling.hop_cost import measure_instructions
        try:
            figures = measure_instructions(progress=lambda m: print(m, file=sys.stderr, flush=True))
        except RuntimeError as exc:
            raise UsageError(f"--instructions: {exc}") from None
        print(json.dumps(figures, indent=2, default=str) if args.json else format_table(figures))
        return 0
    if args.web:
        from edge.tooling.web_cost import run_web_bench
        try:
            figures = run_web_bench(quick=args.quick, progress=lambda m: print(m, file=sys.stderr, flush=True))
        except RuntimeError as exc:
            raise UsageError(f"--web: {exc}") from None
        print(json.dumps(figures, indent=2, default=str) if args.json else format_table(figures))
        return 0
    if args.soak is not None:
        if not 1 <= args.soak <= 24 * 60:
            raise UsageError("--soak MIN: between 1 and 1440 minutes")
        from edge.tooling.soak import run_soak
        figures = run_soak(args.soak, outage_s=min(60.0, args.soak * 60 / 4),
                           progress=lambda m: print(m, file=sys.stderr))
        print(json.dumps(figures, indent=2, default=str) if args.json else format_table(figures))
        return 0
    bench_dir = Path(args.data) if args.data else default_bench_dir()
    if args.data and not (Path(args.data) / "seed-train.npz").is_file():
        raise UsageError(f"--data {args.data}: no seed-train.npz there")
    if bench_dir is not None:
        print(f"seed data: {bench_dir}", file=sys.stderr)
    figures = run_bench(bench_dir, quick=args.quick, progress=lambda m: print(m, file=sys.stderr))
    if bench_dir is None:
        print("note: seed-*.npz not found: training/accuracy figures skipped (pass --data)", file=sys.stderr)
    print(json.dumps(figures, indent=2, default=str) if args.json else format_table(figures))
    return 0


def _room(args, config: Config) -> int:
    from edge.tooling.roombench.report import format_room
    from edge.tooling.roombench.run import run_room
    from edge.tooling.roombench.scenarios import SCENARIOS
    try:
        seeds = [int(s) for s in (args.seeds or ("1" if args.quick else "1,2,3")).split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds}: use comma-separated integers, e.g. --seeds 1,2,3") from None
    if not seeds:
        raise UsageError("--seeds: give at least one seed, e.g. --seeds 1")
    names = args.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise UsageError(f"--scenario {unknown[0]}: choose one of {', '.join(SCENARIOS)}")
    figures = run_room(config, args.config, seeds, list(dict.fromkeys(names)), Path(args.work) if args.work else None,
                       args.quick, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(figures, indent=2, default=str) if args.json else format_room(figures))
    return 0
