"""Online stage on mw8 (field): LWD, its ablations (the paper's frozen reference, constant-tau DIVL) and
the baselines (IQL-expectile + QAM, HG-DAgger, RECAP) at an equal robot-hour budget.

Paper Table I shape (algorithms.md sections 6-7). Every method starts from the same per-seed offline
stage (same ``--root``, see ``METHODS``: ``seed{s}/offline_lwd``, ``offline_iql-qam``,
``offline_lwd-const-tau``; written by ``benchmarks/offline_rl.py`` or ``benchmarks/online_benchmark.sh
prep``), runs the real local fleet (16 simulated robots in the field condition, scripted-expert
interventions, coordinator, registry, learner processes) until the same robot-hour budget, and its final published policy is evaluated on held-out field seeds. The learning curve is
the fleet's per-version success rate (training-time episodes, interventions included) against
cumulative robot-hours.

Run (each call resumes: finished methods are skipped), optionally evaluate intermediate versions for
the held-out learning curve, then report:

    .venv/bin/python benchmarks/online_baselines.py run --seeds 0 1
    .venv/bin/python benchmarks/online_baselines.py curve --seeds 0 1 --methods lwd
    .venv/bin/python benchmarks/online_baselines.py report
    .venv/bin/python benchmarks/online_baselines.py generalise --methods hg-dagger --variants _track  # lab, field2

The report writes ``runs/bench/online_baselines.json`` and ``runs/bench/online_*.png`` and prints the
markdown table (SFT and LWD offline columns come from the offline benchmark's evaluations).
A learner variant runs in its own directories with ``--suffix``, e.g. LWD with QAM on every 8th step:

    .venv/bin/python benchmarks/online_baselines.py run --methods lwd --lam 0.01 --policy-every 8 --suffix _pe8
    .venv/bin/python benchmarks/online_baselines.py report --methods lwd --suffix _pe8 --out runs/bench/online_lwd_pe8.json

Learner defaults come from the benchmark preset (BC-trained reference that the policy tracks, 3
reference BC steps per learner step, QAM on every 4th step on 64 rows, lambda 0.01); the paper's frozen
reference is the ``lwd-frozen`` row, the earlier untracked preset ``--no-track-reference
--reference-steps 1 --qam-batch 0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from lwd.configs.eval import EvalConfig
from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.envs.suites import SUITES
from lwd.eval.report import bar_chart, markdown_table
from lwd.eval.runner import evaluate, paired_comparison, pooled_summaries
from lwd.eval.stats import mcnemar_exact
from lwd.pipeline.online import run_online
from lwd.utils.io import atomic_write_json, read_json

METHODS = {
    # method: (learner algorithm, offline stage it starts from, learner overrides)
    "lwd": ("lwd", "offline_lwd", {}),
    "lwd-frozen": ("lwd", "offline_lwd", {"reference": "frozen", "track_reference": False, "reference_successes": False,
                                          "reference_contrast_weight": 0.0}),  # the paper's frozen pi_ref and critic (ablation)
    "lwd-const-tau": ("lwd-const-tau", "offline_lwd-const-tau", {}),  # DIVL with constant tau (alpha 0)
    "iql-qam": ("iql-qam", "offline_iql-qam", {}),
    "hg-dagger": ("hg-dagger", "offline_lwd", {}),
    "recap": ("recap", "offline_lwd", {}),
}
"""Online methods at one budget: LWD (the preset's learner), its ablations and the baselines."""
MIN_CURVE_EPISODES = 20
"""Versions with fewer fleet episodes are left out of the learning curve (their robot time counts)."""


def online_config(args, method: str, seed: int):
    base = ONLINE["benchmark"]
    algo, _, overrides = METHODS[method]
    learner = dataclasses.replace(
        base.learner, algorithm=algo, seed=seed, lam=args.lam, policy_lr=args.policy_lr, policy_every=args.policy_every,
        reference=args.reference, reference_lr=args.reference_lr, contrast_weight=args.contrast_weight,
        track_reference=args.track_reference, qam_batch=args.qam_batch, reference_steps=args.reference_steps,
        reference_successes=args.reference_successes, imitation_online_fraction=args.imitation_online_fraction,
        reference_contrast_weight=args.reference_contrast_weight, batch_size=args.batch,
        publish_every=args.publish_every, checkpoint_every=args.publish_every,
        min_online_transitions=2000,
    )  # fmt: skip
    learner = dataclasses.replace(learner, **overrides)
    budget = Budget(
        robot_hours=args.robot_hours, max_learner_steps=args.max_learner_steps, max_wall_s=args.max_wall_s
    )
    return dataclasses.replace(base, learner=learner, budget=budget, seed=seed, robot_processes=2, suite=args.suite)


def cmd_run(args) -> None:
    for seed in args.seeds:
        sd = args.root / f"seed{seed}"
        for algo in args.methods:
            run_dir = sd / f"online_{algo}{args.suffix}"
            init = sd / METHODS[algo][1]
            summary_file = run_dir / "online" / "summary.json"
            if not summary_file.is_file():  # else finished; a re-run resumes an interrupted stage
                t0 = time.monotonic()
                summary = run_online(online_config(args, algo, seed), run_dir, args.root / "offline_data", init,
                                     display=False)  # fmt: skip
                summary["wall_s"] = time.monotonic() - t0
                atomic_write_json(run_dir / "bench_summary.json", summary)
            out = sd / "eval" / f"online_{algo}{args.suffix}_field"
            if not (out / "results.json").is_file():
                evaluate(EvalConfig(suite=args.suite, checkpoint=run_dir / "online" / "policy", shift="field",
                                    episodes_per_task=args.episodes, seeds=(0,), workers=args.workers, out=out,
                                    name=f"online-{algo}-seed{seed}"), progress=False)  # fmt: skip
            print(seed, algo, read_json(out / "results.json")["average_success"], flush=True)


def learning_curve(run_dir: Path) -> list[dict]:
    """Per version (in version order): cumulative robot-hours of the versions up to it, its fleet success
    (task mean, interventions included), intervention rate and episodes. With canary rollout several
    versions run at once, so the x axis is robot time spent on versions up to this one, not wall time."""
    versions = read_json(run_dir / "online" / "learner" / "versions.json")
    hz = read_json(run_dir / "online" / "summary.json").get("control_hz", 80.0)
    hours, out = 0.0, []
    for v in sorted(versions, key=int):
        rec = versions[v]
        hours += rec.get("env_steps", 0) / hz / 3600.0
        rates = list(rec["success_rate"].values())
        if rec["episodes"] < MIN_CURVE_EPISODES:  # too few episodes to plot (e.g. a short canary)
            continue
        out.append({"version": int(v), "robot_hours": hours, "episodes": rec["episodes"],
                    "success": sum(rates) / max(len(rates), 1), "intervention_rate": rec["intervention_rate"]})  # fmt: skip
    return out


def cmd_curve(args) -> None:
    """Held-out field success of intermediate policy versions against the robot-hours spent before each
    was published (the paper's headline figure). Per run, ``--curve-points`` versions evenly spaced in
    robot time are materialised from the run's registry and evaluated on ``--curve-episodes`` held-out
    episodes per task; the start (the offline stage) and the final policy come from the main evaluations."""
    from lwd.fleet.registry.registry import PolicyRegistry
    from lwd.fleet.registry.versions import materialize_version

    for seed in args.seeds:
        sd = args.root / f"seed{seed}"
        for m in args.methods:
            rd = sd / f"online_{m}{args.suffix}"
            if not (rd / "online" / "summary.json").is_file():
                continue
            pts = version_hours(rd)
            total = pts[-1][1] if pts else 0.0
            for k in range(1, args.curve_points + 1):
                want = total * k / (args.curve_points + 1)
                v, before = min(pts, key=lambda p: abs(p[1] - want))
                out = sd / "eval" / f"curve_{m}{args.suffix}_v{v}"
                if not (out / "results.json").is_file():
                    reg = PolicyRegistry(str(rd / "online" / "fleet" / "registry"))
                    ckpt = materialize_version(reg, v, rd / "curve" / f"v{v}")
                    evaluate(EvalConfig(suite=args.suite, checkpoint=ckpt, shift="field", episodes_per_task=args.curve_episodes,
                                        seeds=(0,), workers=args.workers, out=out, name=f"{m}-v{v}-seed{seed}"),
                             progress=False)  # fmt: skip
                atomic_write_json(out / "curve_point.json", {"version": v, "robot_hours": before})
                print(seed, m, v, round(before, 3), read_json(out / "results.json")["average_success"], flush=True)


def version_hours(run_dir: Path) -> list[tuple[int, float]]:
    """(version, robot-hours the fleet spent on earlier versions), in version order."""
    versions = read_json(run_dir / "online" / "learner" / "versions.json")
    hz = read_json(run_dir / "online" / "summary.json").get("control_hz", 80.0)
    hours, out = 0.0, []
    for v in sorted(versions, key=int):
        out.append((int(v), hours))
        hours += versions[v].get("env_steps", 0) / hz / 3600.0
    return out


def held_out_curves(root: Path, seeds: list[int], methods: list[str], suffix: str) -> dict[str, list[dict]]:
    """Per method (seeds averaged where a point exists for each): held-out success vs robot-hours,
    starting at the offline stage (0 h) and ending at the final policy (the run's robot-hours)."""
    curves = {}
    for m in methods:
        per_seed = []
        for s in seeds:
            sd = root / f"seed{s}"
            rd = sd / f"online_{m}{suffix}"
            final, start = sd / "eval" / f"online_{m}{suffix}_field", sd / "eval" / ("lwd_field")
            if not (final / "results.json").is_file() or not (rd / "bench_summary.json").is_file():
                continue
            pts = [(0.0, read_json(start / "results.json")["average_success"])] if (start / "results.json").is_file() else []
            for d in sorted(sd.glob(f"eval/curve_{m}{suffix}_v*")):
                if (d / "curve_point.json").is_file() and (d / "results.json").is_file():
                    pts.append((read_json(d / "curve_point.json")["robot_hours"], read_json(d / "results.json")["average_success"]))
            pts.append((read_json(rd / "bench_summary.json")["robot_hours"], read_json(final / "results.json")["average_success"]))
            per_seed.append(sorted(pts))
        if per_seed and len({len(p) for p in per_seed}) == 1:
            curves[f"{m}{suffix}"] = [{"robot_hours": sum(p[i][0] for p in per_seed) / len(per_seed),
                          "success": sum(p[i][1] for p in per_seed) / len(per_seed)} for i in range(len(per_seed[0]))]  # fmt: skip
    return curves


def plot_held_out(held_out: dict[str, list[dict]], fleet: dict[str, list[dict]], png: Path) -> None:
    """Left: held-out field success vs robot-hours (seed mean); right: the fleet's intervention rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, pts in held_out.items():
        axes[0].plot([p["robot_hours"] for p in pts], [p["success"] for p in pts], marker="o", label=name)
    for name, pts in fleet.items():
        axes[1].plot([p["robot_hours"] for p in pts], [p["intervention_rate"] for p in pts], marker=".", label=name)
    axes[0].set_ylabel("held-out field success (seed mean)")
    axes[1].set_ylabel("fleet intervention rate per version")
    for ax in axes:
        ax.set_xlabel("robot-hours")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_learning_curves(curves: dict[str, list[dict]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, pts in curves.items():
        x = [p["robot_hours"] for p in pts]
        axes[0].plot(x, [p["success"] for p in pts], marker=".", label=name)
        axes[1].plot(x, [p["intervention_rate"] for p in pts], marker=".", label=name)
    axes[0].set_ylabel("fleet success per version (task mean)")
    axes[1].set_ylabel("intervention rate per version")
    for ax in axes:
        ax.set_xlabel("robot-hours")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def pooled_pair(root: Path, seeds: list[int], sub_a: str, sub_b: str) -> dict:
    """A vs B on the same held-out episodes, discordant counts summed over seeds, one exact McNemar."""
    a_only = b_only = n = 0
    for s in seeds:
        da, db = root / f"seed{s}" / "eval" / sub_a, root / f"seed{s}" / "eval" / sub_b
        if (da / "results.json").is_file() and (db / "results.json").is_file():
            c = paired_comparison(da, db)
            a_only, b_only, n = a_only + c["a_only"], b_only + c["b_only"], n + c["episodes"]
    return {"episodes": n, "a_only": a_only, "b_only": b_only, "p_value": mcnemar_exact(a_only, b_only)}


def pooled_substep_pair(root: Path, seeds: list[int], sub_a: str, sub_b: str, tasks: set[str]) -> dict:
    """A vs B sub-step scores on the same held-out episodes of ``tasks`` (pooled over seeds): mean
    difference and a two-sided Wilcoxon signed-rank test (:func:`lwd.eval.stats.paired_signed_rank`)."""
    from lwd.eval.stats import paired_signed_rank

    def scores(d: Path) -> dict:
        rows = (json.loads(line) for line in (d / "episodes.jsonl").read_text().splitlines())
        return {(r["task_id"], r["seed"]): r["substep"] for r in rows if r["task_id"] in tasks and r.get("substep") is not None}

    a_all, b_all = [], []
    for s in seeds:
        da, db = root / f"seed{s}" / "eval" / sub_a, root / f"seed{s}" / "eval" / sub_b
        if (da / "episodes.jsonl").is_file() and (db / "episodes.jsonl").is_file():
            a, b = scores(da), scores(db)
            keys = sorted(a.keys() & b.keys())
            a_all += [a[k] for k in keys]
            b_all += [b[k] for k in keys]
    if not a_all:
        return {"episodes": 0, "diff": None, "p_value": None}
    return {"episodes": len(a_all), "diff": (sum(a_all) - sum(b_all)) / len(a_all),
            "p_value": paired_signed_rank(a_all, b_all)}  # fmt: skip


def paired_table(root: Path, seeds: list[int], names: list[tuple[str, str]], ours: set[str] = frozenset(),
                 against: tuple[str, ...] = (), suite: str = "mw8") -> str:
    """Markdown: per policy, short / long task averages and paired tests against SFT, against the
    best other policy that is neither the default online LWD nor one of ``ours`` (its variants): the
    best baseline, and against each row named in ``against``."""
    kinds = {t.task_id: t.kind for t in SUITES[suite].tasks}
    rows, avg = {}, {}
    for name, sub in names:
        res = [read_json(root / f"seed{s}" / "eval" / sub / "results.json") for s in seeds
               if (root / f"seed{s}" / "eval" / sub / "results.json").is_file()]  # fmt: skip
        if not res:
            continue
        rate = {t: sum(r["tasks"][t]["success_rate"] for r in res) / len(res) for t in kinds}
        split = {k: sum(v for t, v in rate.items() if kinds[t] == k) / sum(kinds[t] == k for t in rate)
                 for k in ("short", "long")}  # fmt: skip
        long_subs = [r["tasks"][t].get("mean_substep") for r in res for t in kinds if kinds[t] == "long"]
        rows[name] = (sub, split, sum(long_subs) / len(long_subs) if None not in long_subs else None)
        avg[name] = sum(rate.values()) / len(rate)
    baselines = [n for n in rows if n != "lwd online" and n not in ours]
    best = max(baselines, key=avg.get) if baselines else None
    unknown = [a for a in against if a not in rows]
    if unknown:
        print(f"error: --against {unknown}: not a row of this report (rows: {list(rows)})", file=sys.stderr)
        raise SystemExit(2)
    extra = "".join(f" vs {a} (only / only, p) |" for a in against)
    staged = any(r[2] is not None for r in rows.values())  # chained tasks: their mean sub-step score
    lines = [f"| policy | short | long |{' long sub-step |' * staged} avg | vs SFT (only / only SFT, p) | vs best "
             f"baseline {best} (only / only, p) |" + extra
             + (f" long sub-step vs SFT (diff, Wilcoxon p) | long sub-step vs {best} (diff, p) |" if staged else ""),
             "|---|---|---|---|---|---|" + "---|" * (len(against) + staged + 2 * staged)]  # fmt: skip
    for name, (sub, split, substep) in rows.items():
        cells = []
        for other in ("SFT", best, *against):
            if other is None or other == name or other not in rows:
                cells.append("-")
                continue
            c = pooled_pair(root, seeds, sub, rows[other][0])
            cells.append(f"{c['a_only']} / {c['b_only']}, {c['p_value']:.2g} ({c['episodes']} ep.)")
        mid = (f" {substep:.3f} |" if substep is not None else " - |") if staged else ""
        if staged:  # the long tasks' sub-step scores, paired with SFT and with the best baseline
            for other in ("SFT", best):
                if other is None or other == name or other not in rows:
                    cells.append("-")
                    continue
                c = pooled_substep_pair(root, seeds, sub, rows[other][0], {t for t in kinds if kinds[t] == "long"})
                cells.append("-" if c["diff"] is None else f"{c['diff']:+.3f}, {c['p_value']:.2g} ({c['episodes']} ep.)")
        lines.append(f"| {name} | {split['short']:.3f} | {split['long']:.3f} |{mid} {avg[name]:.3f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def lwd_run(variant: str) -> str:
    """Run name of an LWD ``--variants`` entry: a suffix (``_track`` -> ``lwd_track``) or a full name
    starting with ``lwd`` (``lwd-const-tau_track_r3``, an ablation of ours)."""
    return variant if variant.startswith("lwd") else f"lwd{variant}"


def variant_runs(args) -> list[str]:
    """Run names (``online_<name>`` directories): ``--methods`` (with ``--suffix``), then the LWD
    ``--variants`` (``lwd<suffix>``), then ``--baseline-variants`` (full names, e.g. ``hg-dagger_uncapped``)."""
    return ([f"{m}{args.suffix}" for m in args.methods] + [lwd_run(v) for v in args.variants]
            + list(args.baseline_variants))  # fmt: skip


def policy_dirs(args, seed: int) -> dict[str, Path]:
    """The policies ``generalise`` evaluates: SFT, then ``--methods`` and ``--variants`` final policies."""
    sd = args.root / f"seed{seed}"
    out = {"sft": sd / "sft" / "policy"}
    for m in variant_runs(args):
        out[f"online_{m}"] = sd / f"online_{m}" / "online" / "policy"
    return out


def cmd_generalise(args) -> None:
    """Held-out episodes of conditions no training used (``--shifts``, default lab and field2) for SFT and
    the final online policies; paired McNemar against SFT per condition, pooled over seeds. With
    ``--instructions held_out`` the policies hear paraphrases never used in training (evaluation
    directories ``<policy>_<condition>_heldout``)."""
    for shift in args.shifts:
        tag = f"{shift}_heldout" if args.instructions == "held_out" else shift
        rows = []
        for seed in args.seeds:
            for name, ckpt in policy_dirs(args, seed).items():
                out = args.root / f"seed{seed}" / "eval" / f"{name}_{tag}"
                if not (ckpt / "manifest.json").is_file():
                    continue
                if not (out / "results.json").is_file():
                    evaluate(EvalConfig(suite=args.suite, checkpoint=ckpt, shift=shift, episodes_per_task=args.episodes, seeds=(0,),
                                        workers=args.workers, out=out, name=f"{name}-seed{seed}",
                                        instructions=args.instructions), progress=False)  # fmt: skip
        for name in policy_dirs(args, args.seeds[0]):
            subs = [f"{name}_{tag}"]
            res = [read_json(args.root / f"seed{s}" / "eval" / subs[0] / "results.json")["average_success"]
                   for s in args.seeds if (args.root / f"seed{s}" / "eval" / subs[0] / "results.json").is_file()]  # fmt: skip
            if not res:
                continue
            cell = "-"
            if name != "sft":
                c = pooled_pair(args.root, args.seeds, subs[0], f"sft_{tag}")
                cell = f"{c['a_only']} / {c['b_only']}, p = {c['p_value']:.2g} ({c['episodes']} ep.)"
            # the same policy on the same episode seeds in the field: the shift's effect on it
            f = pooled_pair(args.root, args.seeds, subs[0], f"{name}_field")
            field = f"{f['a_only']} / {f['b_only']}, p = {f['p_value']:.2g} ({f['episodes']} ep.)" if f["episodes"] else "-"
            rows.append(f"| {tag} | {name} | {' / '.join(f'{r:.3f}' for r in res)} | {sum(res) / len(res):.3f} | {cell} "
                        f"| {field} |")  # fmt: skip
        print("| condition | policy | per seed | mean | vs SFT (only / only SFT, p) | vs itself in the field (only here / "
              "only field, p) |\n|---|---|---|---|---|---|")  # fmt: skip
        print("\n".join(rows), flush=True)


def cmd_report(args) -> None:
    seeds = [s for s in args.seeds if (args.root / f"seed{s}" / "eval").is_dir()]
    cols, per_seed, runs = {}, {}, {}
    names = [("SFT", "sft_field"), ("LWD offline", "lwd_field")]
    names += [(f"{m}{args.suffix} online", f"online_{m}{args.suffix}_field") for m in args.methods]
    names += [(f"{m} online", f"online_{m}_field") for m in variant_runs(args)[len(args.methods):]]
    for name, sub in names:
        paths = [args.root / f"seed{s}" / "eval" / sub for s in seeds]
        paths = [p for p in paths if (p / "results.json").is_file()]
        if paths:
            cols[f"{name} ({len(paths)} seeds)"] = pooled_summaries(paths)
            per_seed[name] = {
                p.parent.parent.name: read_json(p / "results.json")["average_success"] for p in paths
            }
    curves = {}
    for m in variant_runs(args):
        for s in seeds:
            rd = args.root / f"seed{s}" / f"online_{m}"
            if (rd / "bench_summary.json").is_file():
                bs = read_json(rd / "bench_summary.json")
                runs[f"{m}/seed{s}"] = {k: bs.get(k) for k in ("stop_reason", "learner_step", "robot_hours",
                                                               "episodes", "final_version", "wall_s")}  # fmt: skip
                curves[f"{m} seed{s}"] = learning_curve(rd)
    note = (f"field condition, {args.episodes} held-out episodes per task per seed; cells pool the seeds; "
            f"online budget {args.robot_hours} robot-hours per run")  # fmt: skip
    table = markdown_table(cols, episodes_note=note)
    paired = paired_table(args.root, seeds, names, ours={f"{lwd_run(v)} online" for v in args.variants},
                          against=tuple(args.against), suite=args.suite)
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    bar_chart(cols, out_dir / f"online_field{args.suffix}.png", title=f"online stage on {args.suite} (field)")
    plot_learning_curves(curves, out_dir / f"online_learning_curves{args.suffix}.png")
    held_out = held_out_curves(args.root, seeds, args.methods, args.suffix)
    for v in args.variants:
        held_out.update(held_out_curves(args.root, seeds, [lwd_run(v)], ""))
    for run in args.baseline_variants:
        held_out.update(held_out_curves(args.root, seeds, [run], ""))
    plot_held_out(held_out, curves, out_dir / f"online_heldout_curve{args.suffix}.png")
    atomic_write_json(args.out, {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "seeds": seeds, "settings": {k: str(v) for k, v in vars(args).items()},
        "per_seed_average": per_seed, "runs": runs, "learning_curves": curves, "held_out_curves": held_out,
        "pooled": {c: {t: dataclasses.asdict(s) for t, s in v.items()} for c, v in cols.items()},
        "table": table, "paired": paired,
    })  # fmt: skip
    print(table)
    print(paired)
    print(json.dumps(runs, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "curve", "report", "generalise"])
    ap.add_argument("--root", type=Path, default=Path("runs/benchmark"))
    ap.add_argument("--suite", default="mw8", help="task suite of every run and evaluation (mw8, scene8, ...)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--robot-hours", type=float, default=0.75, help="online budget per run (equal for all)")
    ap.add_argument("--max-learner-steps", type=int, default=2000)
    ap.add_argument("--max-wall-s", type=float, default=1500.0, help="safety stop per run")
    preset = ONLINE["benchmark"].learner  # defaults: the benchmark preset's learner
    ap.add_argument("--lam", type=float, default=preset.lam)
    ap.add_argument("--policy-lr", type=float, default=preset.policy_lr)
    ap.add_argument(
        "--policy-every",
        type=int,
        default=preset.policy_every,
        help="QAM on every k-th learner step (lwd, iql-qam)",
    )
    ap.add_argument(
        "--reference",
        choices=["frozen", "bc"],
        default=preset.reference,
        help="QAM's reference (lwd, iql-qam): bc (the preset) or frozen (the paper; use --suffix)",
    )
    ap.add_argument("--reference-lr", type=float, default=preset.reference_lr)
    ap.add_argument("--track-reference", action=argparse.BooleanOptionalAction, default=preset.track_reference,
                    help="the policy follows the BC reference's moves (lwd, iql-qam with --reference bc)")
    ap.add_argument("--reference-steps", type=int, default=preset.reference_steps,
                    help="BC steps of the reference per learner step (lwd, iql-qam with --reference bc)")
    ap.add_argument("--reference-successes", action=argparse.BooleanOptionalAction,
                    default=preset.reference_successes,
                    help="the BC reference also clones the field episodes the policy solved alone (lwd, iql-qam)")
    ap.add_argument("--imitation-online-fraction", type=float, default=preset.imitation_online_fraction,
                    help="share of the human's field corrections (vs offline demos) in imitation batches")
    ap.add_argument("--qam-batch", type=int, default=preset.qam_batch, help="rows per QAM step (0: all)")
    ap.add_argument("--contrast-weight", type=float, default=preset.contrast_weight)
    ap.add_argument("--reference-contrast-weight", type=float, default=preset.reference_contrast_weight,
                    help="critic: a pi_ref sample ranked below the human's chunk at demo/intervention states (lwd, iql-qam)")
    ap.add_argument(
        "--suffix", default="", help="run-directory suffix of a variant (e.g. _pe8): keeps runs apart"
    )
    ap.add_argument("--variants", nargs="*", default=[],
                    help="report: also the LWD runs of these --suffix variants (rows 'lwd<suffix> online'; never a baseline)")
    ap.add_argument("--baseline-variants", nargs="*", default=[],
                    help="report: also these baseline runs by full name (e.g. hg-dagger_uncapped; may be the best baseline)")
    ap.add_argument("--against", nargs="*", default=[],
                    help="report: also a paired column against each of these rows (e.g. 'lwd_track_r3_2h online')")
    ap.add_argument("--shifts", nargs="+", default=["lab", "field2"], help="generalise: conditions to evaluate")
    ap.add_argument("--instructions", choices=["train", "held_out"], default="train",
                    help="generalise: training paraphrases or held-out ones never used in training")  # fmt: skip
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--publish-every", type=int, default=25)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--curve-points", type=int, default=2, help="curve: intermediate versions per run")
    ap.add_argument("--curve-episodes", type=int, default=10, help="curve: held-out episodes per task per point")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/online_baselines.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"run": cmd_run, "curve": cmd_curve, "report": cmd_report, "generalise": cmd_generalise}[args.mode](args)


if __name__ == "__main__":
    main()
