"""``run`` (the daemon), ``demo``, and the file replays ``collect`` and ``listen``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path


from edge.audio import synth
from edge.audio.wavfile import open_wav
from edge.cli.audio_cmds import record_seconds
from edge.config import SAMPLE_RATE, Config
from edge.errors import StoreError, UsageError

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("run", help="run the device (the daemon; systemd runs this)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       epilog='web console (off by default): [web] listen = "127.0.0.1:8080" in the config file, '
                       'or EDGE_SLIDER_WEB_LISTEN=127.0.0.1:8080; beyond loopback also set web.token (README "Web console")')
    p.add_argument("--simulate", action="store_true",
                   help="mock GPIO pins (no Pi needed); synthetic audio unless --from-wav or audio.source says else")
    p.add_argument("--from-wav", metavar="F", help="replay this WAV instead of the microphone")
    p.add_argument("--script", metavar="S", help="synthetic sound script, e.g. 'snap, gap:0.5, whistle'")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio (default: run until "
                   "SIGTERM/Ctrl-C)")
    p.add_argument("--no-mqtt", action="store_true", help="do not connect to MQTT even if mqtt.enabled")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="scripted end-to-end story on mock hardware (< 1 min): collect, train, listen")
    p.add_argument("--seed", type=int, default=1, help="random seed of the synthetic sounds")
    p.add_argument("--mqtt", action="store_true", help="also publish to the configured MQTT broker")
    p.add_argument("--into", metavar="DIR", help="keep the demo's examples and model in DIR (empty, or a dir an "
                   "earlier demo wrote; a dir with other examples or models is refused). Default: a scratch dir, "
                   "deleted afterwards")
    p.add_argument("--train-stall", type=float, default=None, metavar="S", help="give up on training when no "
                   "epoch finished for S seconds (default: 120; a slow CPU only needs more when one epoch takes "
                   "longer)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("collect", help="store examples from WAV files or the mic, exactly as holding a button would")
    p.add_argument("--label", required=True, help="class label (one of the configured classes)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-wav", metavar="F", nargs="+", help="WAV file(s); each is one hold")
    src.add_argument("--seconds", type=float, help="record this long from the configured microphone")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("listen", help="run the listening loop on a WAV (or the mic) and print decisions")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-wav", metavar="F", help="WAV file to listen to")
    src.add_argument("--seconds", type=float, help="listen to the microphone this long")
    p.add_argument("--events", metavar="OUT.jsonl", help="also write one JSON line per decision here "
                   "(- = stdout only, where they are printed anyway)")
    p.add_argument("--realtime", action="store_true", help="play the WAV at real-time pace (default: as fast as "
                   "possible)")
    p.add_argument("--threshold", type=float, help="override listen.threshold")
    p.add_argument("--trace", metavar="OUT.npz", help="also save every hop: stream time t, the model's probabilities "
                   "[hops, K], its labels and the window level (to replay the decision policy offline)")
    p.add_argument("--mode", choices=("continuous", "per_sound"), help="override listen.mode")
    p.set_defaults(func=cmd_listen)


def cmd_run(args, config: Config) -> int:
    from edge.service import RunOptions, run_daemon
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    options = RunOptions(simulate=args.simulate, wav=args.from_wav, script=args.script,
                         duration_s=args.duration, mqtt=False if args.no_mqtt else None)
    return run_daemon(config, options)


def cmd_demo(args, config: Config) -> int:
    from edge.tooling.demo import claim_state_dir, mark_state_dir, run_demo
    from edge.service import RunOptions, Service
    tmp = None
    # NOTE: never device.state_dir or the default: the demo's synthetic examples and model would
    # land in the user's real store. An explicit --state-dir (older scripts) counts as --into.
    into = args.into or args.state_dir
    if into:
        config = config.replace("device", state_dir=str(Path(into).expanduser()))
        claim_state_dir(config.state_path)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="edge-slider-demo-")
        config = config.replace("device", state_dir=tmp.name)
    # NOTE: the demo's story is about the codelab defaults; a user's own pins and classes still apply.
    # Its synthetic room has no level changes and only synthetic babble as talk: gain jitter (the
    # device default, for real rooms) made that babble step the servo in 2 of 3 seeded runs.
    # The demo never serves the console (it would hold web.listen's port without answering on it).
    config = config.replace("train", **synth.SYNTHETIC_ROOM_TRAINING).replace("web", listen="")
    options = RunOptions(simulate=True, mqtt=True if args.mqtt else False, script="gap:0.1", loop=False)
    try:
        with Service(config, options) as service:
            if service.telemetry is not None:
                service.telemetry.start()
            stall = {} if args.train_stall is None else {"train_stall_s": args.train_stall}
            return run_demo(service, seed=args.seed, **stall)
    finally:
        if tmp is not None:
            tmp.cleanup()
        else:
            mark_state_dir(config.state_path)


def _open_store(config: Config):
    from edge.teach.store import ExampleStore
    config.state_path.mkdir(parents=True, exist_ok=True)
    return ExampleStore(config.state.store)


def cmd_collect(args, config: Config) -> int:
    from edge.teach.collect import InMemory, collect_file
    spec = config.class_spec(args.label)
    background = config.background_label
    # NOTE: every file's header is checked before anything is stored; the audio is read later, in blocks.
    clips = [(f"wav:{Path(f).name}", open_wav(f)) for f in args.from_wav] if args.from_wav else \
        [("mic", InMemory(record_seconds(config, args.seconds)))]
    limit = config.collect.max_windows_per_collection
    with _open_store(config) as store:
        for source, clip in clips:
            session = f"{time.strftime('%Y%m%dT%H%M%S')}-{source}"
            r = collect_file(store, config.collect, clip, spec.name, not spec.background, background, source,
                             session, config.frontend.hop, config.frontend.db_floor)
            gate = (f"floor {r.floor_db:.1f} dB, gate {r.threshold_db:.1f} dB" if r.gated else
                    "not gated (background class)" if spec.background else "not gated (collect.gate = false)")
            print(f"{source}: {r.windows} windows → {r.stored} stored as {spec.name!r}, {r.background} quiet as "
                  f"{background!r}, {r.dropped} dropped, {r.silent} of digital silence left out; {gate}")
            if r.skipped:
                print(f"{source}: stopped after {r.stored + r.background} windows "
                      f"(collect.max_windows_per_collection = {limit}): the remaining {r.skipped} storable "
                      "windows were skipped; split the file or raise the key to keep more")
        print("examples: " + ", ".join(f"{k} {v}" for k, v in store.counts().items()))
    return 0


def cmd_listen(args, config: Config) -> int:
    from edge.device.slider import NullOutput, Slider
    from edge.engine.core import Engine
    from edge.events import DecisionMade, PredictionMade
    from edge.model.registry import ModelRegistry
    config = _listen_config(args, config)
    registry = ModelRegistry(config.state.models, keep=config.train.keep_models)
    classifier = registry.load_current(expect_hop=config.frontend.hop)
    if classifier is None:
        raise UsageError(f"no model in {config.state_path}: run `edge-slider train` first (or pass --state-dir)")
    from edge.teach.collect import InMemory
    # NOTE: a file is read block by block (a 1-hour WAV read whole peaked at 1.9 GB RSS).
    audio = open_wav(args.from_wav) if args.from_wav else InMemory(record_seconds(config, args.seconds))
    slider = Slider(NullOutput(), config.slider, None)
    with contextlib.closing(_listen_store(config)) as store:
        engine = Engine(config, store=store, registry=registry, slider=slider, classifier=classifier)
        # NOTE: `--events -` is stdout, where every decision is printed anyway.
        out = open(args.events, "w", encoding="utf-8") if args.events and args.events != "-" else None
        decisions = []
        trace: list = []
        reader_gone: list[bool] = []

        def on_event(event):
            if args.trace and isinstance(event, PredictionMade):
                trace.append((event.t, event.level_db, *event.probs.values()))
            if isinstance(event, DecisionMade):
                line = {"t": round(event.t, 4), "label": event.label, "score": round(event.score, 4),
                        "position": round(event.position, 3)}
                decisions.append(line)
                if out:
                    out.write(json.dumps(line) + "\n")
                if reader_gone:
                    return
                try:
                    print(json.dumps(line))
                except BrokenPipeError:
                    # The bus logs a subscriber's exception and goes on: stop the loop below instead.
                    reader_gone.append(True)

        engine.bus.subscribe(on_event)
        engine.set_listening(True)
        try:
            done = _feed(engine, audio, args.realtime, reader_gone)
        finally:
            if out:
                out.close()
            if args.trace:
                _save_trace(args.trace, trace, classifier.labels)
    log.info("%d decisions in %.1f s of audio; final position %.1f", len(decisions), done / SAMPLE_RATE,
             slider.position)
    return 0


def _listen_config(args, config: Config) -> Config:
    """The config with `listen`'s --threshold and --mode applied."""
    listen = config.listen
    if args.threshold is not None:
        if not 0 <= args.threshold <= 1:
            raise UsageError("--threshold must be between 0 and 1")
        listen = dataclasses.replace(listen, threshold=args.threshold)
    if args.mode:
        listen = dataclasses.replace(listen, mode=args.mode)
    return dataclasses.replace(config, listen=listen)


def _listen_store(config: Config):
    """The example store, or a stand-in that says why it is unavailable."""
    try:
        return _open_store(config)
    except StoreError as exc:
        # NOTE: listening needs only the model: a read-only or damaged store must not stop it
        from edge.teach.store import UnavailableStore
        log.warning("%s", exc)
        return UnavailableStore(config.state.store, str(exc))


def _feed(engine, audio, realtime: bool, reader_gone: list[bool]) -> int:
    """Every block of ``audio`` through the engine hop by hop (at real-time pace if asked); samples fed."""
    hop = 1024
    t0 = time.monotonic()
    done = 0
    for samples in audio.blocks():
        for i in range(0, samples.shape[0], hop):
            if realtime:
                delay = t0 + (done + hop) / SAMPLE_RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            chunk = samples[i:i + hop]
            engine.process(chunk)
            done += chunk.shape[0]
        if reader_gone:
            raise BrokenPipeError("stdout: the reader went away")
    return done


def _save_trace(path: str, rows: list, labels) -> None:
    import io
    import numpy as np
    from edge.fileio import atomic_write_bytes
    a = np.asarray(rows, dtype=np.float64).reshape(len(rows), 2 + len(labels))
    buf = io.BytesIO()
    np.savez(buf, t=a[:, 0], level_db=a[:, 1], probs=a[:, 2:],
             labels=np.asarray(labels))
    atomic_write_bytes(Path(path), buf.getvalue())
