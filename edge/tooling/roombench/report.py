"""Formats room-bench figures as a human-readable table."""

from __future__ import annotations


def _f(v, fmt="{:.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def _blame_table(fig: dict, key: str, title: str) -> list[str]:
    """False moves summed over seeds, per scenario and stream, by ``key`` (what was playing, or its package)."""
    counts: dict = {}
    for r in fig["runs"]:
        for part in ("test", "household"):
            for k, n in r[part].get(key, {}).items():
                counts[(r["scenario"], part, k)] = counts.get((r["scenario"], part, k), 0) + n
    if not counts:
        return []
    lines = ["", f"false moves by {title} (all seeds summed):"]
    for name in fig["scenarios"]:
        for part in ("test", "household"):
            row = {k: n for (s, p, k), n in counts.items() if s == name and p == part}
            if row:
                lines.append(f"  {name:<12} {part:<9} " + ", ".join(f"{k} {n}" for k, n in
                                                                    sorted(row.items(), key=lambda kv: -kv[1])))
    return lines


def format_room(fig: dict) -> str:
    lines = [f"room bench (generator v{fig['generator_version']}, seeds {','.join(map(str, fig['seeds']))}"
             f"{', quick' if fig['quick'] else ''}; median over seeds; threshold {fig['listen']['threshold']}, "
             f"mode {fig['listen']['mode']}; config {fig['config'] or '(default lookup)'})", ""]
    head = (f"{'scenario':<12} {'rec L':>6} {'rec R':>6} {'macro':>6} {'false/min':>9} {'cross':>6} "
            f"{'lat med':>7} {'lat p90':>7} {'house/h':>8} {'model B':>8} {'train s':>7}")
    lines += [head, "-" * len(head)]
    for name, s in fig["scenarios"].items():
        lines.append(f"{name:<12} {_f(s['recall']['left']):>6} {_f(s['recall']['right']):>6} "
                     f"{_f(s['macro_recall']):>6} {_f(s['false_per_min']):>9} {_f(s['cross_fire'], '{:.0f}'):>6} "
                     f"{_f(s['latency_median_s']):>7} {_f(s['latency_p90_s']):>7} "
                     f"{_f(s['household_per_hour'], '{:.1f}'):>8} {_f(s['model_bytes'], '{:.0f}'):>8} "
                     f"{_f(s['train_s']):>7}")
    lines += ["", "best macro recall within a false-moves budget (per minute of test background):"]
    budgets = list(next(iter(fig["scenarios"].values()))["best_within"]) if fig["scenarios"] else []
    lines.append(f"{'scenario':<12} " + " ".join(f"{'≤' + b + '/min':>12}" for b in budgets))
    for name, s in fig["scenarios"].items():
        cells = [("–" if v is None else f"{v['macro_recall']:.2f}@{v['threshold']:g}")
                 for v in s["best_within"].values()]
        lines.append(f"{name:<12} " + " ".join(f"{c:>12}" for c in cells))
    for name, s in fig["scenarios"].items():
        lines += ["", f"sweep {name}: threshold  macro  false/min  cross  household/h"]
        for p in s["sweep"]:
            lines.append(f"  {p['threshold']:>6g}  {_f(p['macro_recall']):>6} {_f(p['false_per_min']):>9} "
                         f"{_f(p['cross_fire'], '{:.0f}'):>6} {_f(p['household_per_hour'], '{:.1f}'):>11}")
    for key, title in (("blame", "what was playing"), ("blame_family", "source package")):
        lines += _blame_table(fig, key, title)
    ok = all(s["replay_matches_listen"] for s in fig["scenarios"].values())
    lines += ["", f"replayed policy == listen's decisions (the model's calibrated thresholds): {'yes' if ok else 'NO'}",
              f"bench wall time {fig['wall_s']:.0f} s"]
    return "\n".join(lines)
