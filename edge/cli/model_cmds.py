"""``dataset …``, ``train`` and ``model …``: the examples, the training run, the installed models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.config import Config
from edge.errors import ModelError, UsageError


def register(sub) -> None:
    p = sub.add_parser("dataset", help="the stored examples: stats, export, import, clear")
    dsub = p.add_subparsers(dest="dataset_cmd", metavar="ACTION", required=True)
    q = dsub.add_parser("stats", help="examples per label and per session")
    q.add_argument("--sessions", action="store_true", help="also list collection sessions")
    q.set_defaults(func=cmd_dataset_stats)
    q = dsub.add_parser("export", help="write all examples to a .npz (x, y, labels), or a TF.js "
                        "speech-commands dataset if OUT ends in .bin")
    q.add_argument("out", metavar="OUT.npz|OUT.bin")
    q.set_defaults(func=cmd_dataset_export)
    q = dsub.add_parser("import", help="add examples from a .npz (x [N,3,232] dB, y [N], labels [K]) or a "
                        "TF.js speech-commands dataset (TFJSSCDS .bin, as the browser codelab saves)")
    q.add_argument("inp", metavar="IN.npz|IN.bin")
    q.set_defaults(func=cmd_dataset_import)
    q = dsub.add_parser("clear", help="delete examples (all, one label, or one session)")
    q.add_argument("--label", help="only this label")
    q.add_argument("--session", help="only this collection session (see `dataset stats --sessions`)")
    q.add_argument("--yes", action="store_true", help="do not ask")
    q.set_defaults(func=cmd_dataset_clear)
    q = dsub.add_parser("recover", help="a damaged store: copy every readable example into a new store, keep "
                        "the damaged file as examples.sqlite.damaged-<time> (stop the daemon first)")
    q.set_defaults(func=cmd_dataset_recover)

    p = sub.add_parser("train", help="train on the stored examples and install the int8 model")
    p.add_argument("--preset", choices=("default", "codelab"), default="default",
                   help="codelab = the codelab's recipe (Adam 0.01, batch 16, 10 epochs)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch-size", type=int, help="override train.batch_size")
    p.add_argument("--learning-rate", type=float, help="override train.learning_rate")
    p.add_argument("--validation-split", type=float, help="override train.validation_split")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--gain-jitter-db", type=float, help="override train.gain_jitter_db (0 = off)")
    p.add_argument("--dataset", metavar="X.npz", help="train on this .npz instead of the store")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("model", help="the installed models: info, list, rollback, export, import, evaluate")
    msub = p.add_subparsers(dest="model_cmd", metavar="ACTION", required=True)
    q = msub.add_parser("info", help="the model in service: labels, metrics, size, runtime")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_model_info)
    q = msub.add_parser("list", help="installed versions")
    q.set_defaults(func=cmd_model_list)
    q = msub.add_parser("rollback", help="put the previous version back in service")
    q.set_defaults(func=cmd_model_rollback)
    q = msub.add_parser("export", help="copy the model in service to a file")
    q.add_argument("out", metavar="OUT.tflite")
    q.add_argument("--version", type=int, help="another installed version")
    q.set_defaults(func=cmd_model_export)
    q = msub.add_parser("import", help="install a .tflite (ours, or a foreign one with --labels)")
    q.add_argument("inp", metavar="IN.tflite")
    q.add_argument("--labels", metavar="FILE", help="labels file for a foreign model, one per line in output order")
    q.set_defaults(func=cmd_model_import)
    q = msub.add_parser("evaluate", help="accuracy, precision/recall and confusion on a labelled .npz")
    q.add_argument("--dataset", required=True, metavar="X.npz")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_model_evaluate)


def _store(config: Config):
    from edge.teach.store import ExampleStore
    return ExampleStore(config.state.store)


def _registry(config: Config):
    from edge.model.registry import ModelRegistry
    return ModelRegistry(config.state.models, keep=config.train.keep_models)


def _progress(done: int, total: int) -> None:
    print(f"\r  {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def cmd_dataset_stats(args, config: Config) -> int:
    with _store(config) as store:
        counts = store.counts()
        total = sum(counts.values())
        print(f"{total} examples in {store.path}")
        for label in sorted(set(config.labels) | set(counts)):
            note = "" if label in config.labels else "  (not a configured class: ignored by train)"
            print(f"  {label:<12} {counts.get(label, 0):>6}{note}")
        from edge.model.train import too_few
        if (problem := too_few(counts, config.labels, config.train.min_examples)) is not None:
            print(problem)
        if args.sessions:
            for s in store.sessions():
                print(f"  {s['session']}  {s['label']:<10} {s['count']:>5}  {s['source']}")
    return 0


def cmd_dataset_export(args, config: Config) -> int:
    with _store(config) as store:
        n = store.export_npz(args.out, background=config.background_label)
    print(f"wrote {n} examples to {args.out}")
    return 0


def cmd_dataset_import(args, config: Config) -> int:
    with _store(config) as store:
        added = store.import_npz(args.inp, progress=_progress, background=config.background_label)
        print("imported " + ", ".join(f"{k} {v}" for k, v in added.items()))
        unknown = [lb for lb in added if lb not in config.labels]
        if unknown:
            print(f"note: {', '.join(unknown)} not in the configured classes ({', '.join(config.labels)}); "
                  "add them to [classes] to train on them")
    return 0


def cmd_dataset_clear(args, config: Config) -> int:
    what = " and ".join(x for x in (f"label {args.label!r}" if args.label else "",
                                     f"session {args.session!r}" if args.session else "") if x) or "ALL examples"
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {what} without --yes")
        if input(f"delete {what}? [y/N] ").strip().lower() != "y":
            print("nothing deleted")
            return 1
    with _store(config) as store:
        n = store.delete(label=args.label, session=args.session)
    print(f"deleted {n} examples ({what})")
    return 0


def cmd_dataset_recover(args, config: Config) -> int:
    from edge.teach.store_recovery import recover_store
    report = recover_store(config.state.store)
    print(f"recovered {report['recovered']} examples ("
          + ", ".join(f"{k} {v}" for k, v in sorted(report["labels"].items()))
          + f"); {report['unreadable']} unreadable; the damaged file is kept as {report['kept']}")
    return 0


def cmd_train(args, config: Config) -> int:
    import time
    from edge.model.pipeline import build_model, recipe_from_config
    from edge.model.train import evaluate
    recipe = recipe_from_config(config, args.preset, epochs=args.epochs, batch_size=args.batch_size,
                                learning_rate=args.learning_rate, validation_split=args.validation_split,
                                seed=args.seed, gain_jitter_db=args.gain_jitter_db)
    if recipe.epochs < 1 or recipe.batch_size < 1 or not 0 <= recipe.validation_split < 1 or recipe.learning_rate <= 0:
        raise UsageError("--epochs and --batch-size must be ≥ 1, --validation-split in [0, 1), --learning-rate > 0")
    groups = None
    if args.dataset:
        from edge.teach.npz_dataset import read_npz
        x, y, labels = read_npz(args.dataset)
    else:
        with _store(config) as store:
            x, y, labels, groups = store.load_with_sessions(config.labels)
    print(f"training on {len(y)} examples ({', '.join(f'{lb} {int((y == i).sum())}' for i, lb in enumerate(labels))}); "
          f"{recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.learning_rate}, seed {recipe.seed}, "
          f"gain jitter ±{recipe.gain_jitter_db:g} dB"
          + (f", background bank ×{recipe.bank_ratio:g}" if recipe.bank_ratio > 0 else "")
          + (f"; then {recipe.refit_epochs} more on every example" if recipe.refit_epochs else ""))

    def progress(epoch, epochs, loss, acc, val_loss, val_acc):
        val = f", val_loss {val_loss:.4f}, val_acc {100 * val_acc:.1f}%" if val_loss is not None else ""
        print(f"epoch {epoch:>3}/{epochs}: loss {loss:.4f}, acc {100 * acc:.1f}%{val}", flush=True)

    t0 = time.perf_counter()
    built = build_model(config, x, y, labels, recipe, progress, groups=groups)
    result = built.result
    version = _registry(config).install(built.data, expect_hop=config.frontend.hop)
    report = evaluate(result.params, x, y, len(labels))
    print(f"trained in {result.seconds:.2f} s (total with export {time.perf_counter() - t0:.2f} s); "
          f"training-set accuracy {100 * report['accuracy']:.1f}%"
          + (f", validation {100 * result.val_accuracy:.1f}%" if result.val_accuracy is not None else "")
          + f", int8 agrees with float on {100 * built.agreement:.1f}%")
    if built.heldout is not None:
        what = "held-out holds" if groups is not None else "held-out windows"
        print(f"on {what} ({built.heldout['n']} windows never trained on):")
        _print_confusion(built.heldout["confusion"], labels)
    else:
        _print_confusion(report["confusion"], labels)
    _print_calibration(built.calibration)
    print(f"installed model v{version} ({len(built.data)} bytes)")
    return 0


def _print_calibration(cal) -> None:
    """The post-training report a user reads: what the thresholds are and what they should expect."""
    if cal is None:
        return
    th = ", ".join(f"{lb} {t:.3f}" for lb, t in cal.thresholds.items())
    rec = ", ".join(f"{lb} {'n/a' if r is None else f'{100 * r:.0f}%'}" for lb, r in cal.heldout_recall.items())
    print(f"thresholds for ≤ {cal.budget:g} false moves/min: {th}")
    print(f"  estimated false moves/min on {cal.negative_minutes:.1f} min of sounds never trained on: "
          f"{cal.false_per_min:.2f}{'' if cal.reached else ' (budget NOT reached even at the highest threshold)'}")
    print(f"  sounds of held-out holds (never trained on) found at those thresholds: {rec}")


def _print_confusion(cm, labels) -> None:
    w = max(8, *(len(lb) for lb in labels))
    print("confusion (rows = true, columns = predicted):")
    print(" " * (w + 2) + "".join(f"{lb:>{w}}" for lb in labels))
    for lb, row in zip(labels, cm):
        print(f"  {lb:<{w}}" + "".join(f"{v:>{w}}" for v in row))


def cmd_model_info(args, config: Config) -> int:
    reg = _registry(config)
    clf = reg.load_current(expect_hop=None)
    if clf is None:
        raise ModelError(f"no model installed in {reg.root}: collect examples and run `edge-slider train`")
    info = clf.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"model v{info['version']} ({info['bytes']} bytes, runtime {info['runtime']})")
    print(f"labels: {', '.join(info['labels'])}")
    for key in ("created", "created_by", "hop", "input", "counts", "recipe", "metrics"):
        if key in info:
            print(f"{key}: {json.dumps(info[key]) if isinstance(info[key], dict) else info[key]}")
    if info.get("hop") not in (None, config.frontend.hop):
        print(f"warning: trained with hop {info['hop']} but frontend.hop = {config.frontend.hop}: the daemon will refuse it")
    return 0


def cmd_model_list(args, config: Config) -> int:
    reg = _registry(config)
    versions = reg.versions()
    if not versions:
        print(f"no models in {reg.root}")
        return 0
    try:
        current = reg.current_version()
    except ModelError as exc:
        # NOTE: the list is what a user needs to repair a damaged pointer: show it anyway
        served, _ = reg.load_serving(expect_hop=None)
        current = served.version if served else None
        print(f"warning: {exc}; the daemon serves v{current}" if current else f"warning: {exc}", file=sys.stderr)
    for v in versions:
        try:
            clf = reg.load(v)
            m = clf.metadata.get("metrics", {})
            val = m.get("val_accuracy")
            desc = f"{', '.join(clf.labels)}; {clf.metadata.get('created', 'foreign')}" + \
                (f"; val {100 * val:.1f}%" if val is not None else "")
        except ModelError as exc:
            desc = f"UNUSABLE: {exc}"
        print(f"{'*' if v == current else ' '} v{v:<4} {desc}")
    return 0


def cmd_model_rollback(args, config: Config) -> int:
    version = _registry(config).rollback()
    print(f"model v{version} is in service again (a running daemon picks it up on restart or via MQTT "
          "model/rollback)")
    return 0


def cmd_model_export(args, config: Config) -> int:
    from edge.fileio import atomic_write_bytes
    data = _registry(config).read(args.version)
    try:
        atomic_write_bytes(Path(args.out), data)
    except OSError as exc:
        raise UsageError(f"{args.out}: cannot write ({exc.strerror})") from None
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


IMPORT_HINT = ("a valid file is a .tflite flatbuffer: one `edge-slider train` or `model export` wrote (labels "
               "inside), or a foreign classifier with input [1, 3, 232, 1] given `--labels FILE` (one label per line, "
               "in output order)")


def cmd_model_import(args, config: Config) -> int:
    try:
        data = Path(args.inp).read_bytes()
    except OSError as exc:
        raise ModelError(f"{args.inp}: cannot read ({exc.strerror})") from None
    from edge.model.classifier import check_bytes, read_labels, read_metadata
    labels = read_labels(args.labels) if args.labels else None
    try:
        check_bytes(data, args.inp)
        if read_metadata(data, args.inp) is not None:
            labels = None  # ours: labels come from its metadata
        version = _registry(config).install(data, labels=labels, expect_hop=config.frontend.hop)
    except ModelError as exc:
        if "hop" in str(exc) or "trained for" in str(exc) or "cannot install" in str(exc):
            raise                                # a real model that does not fit: its message has the fix
        raise ModelError(f"{exc}; {IMPORT_HINT}") from None
    print(f"installed {args.inp} as model v{version}")
    return 0


def cmd_model_evaluate(args, config: Config) -> int:
    from edge.model.pipeline import evaluate_classifier
    from edge.teach.npz_dataset import read_npz
    clf = _registry(config).load_current(expect_hop=None)
    if clf is None:
        raise ModelError("no model installed: run `edge-slider train` first")
    x, y, labels = read_npz(args.dataset)
    report = evaluate_classifier(clf, x, y, labels)
    report["model_version"] = clf.version
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"model v{clf.version} on {args.dataset}: accuracy {100 * report['accuracy']:.1f}% ({report['n']} windows)")
    for lb, p, r in zip(report["labels"], report["precision"], report["recall"]):
        print(f"  {lb:<10} precision {100 * p:5.1f}%  recall {100 * r:5.1f}%")
    _print_confusion(report["confusion"], report["labels"])
    return 0
