"""The run report: markdown + PNG plots assembled from what the stages wrote under ``run_dir``."""

from __future__ import annotations

import json
from pathlib import Path

from lwd.envs.suites import SUITES
from lwd.eval.metrics import TaskSummary
from lwd.eval.report import bar_chart, markdown_table
from lwd.eval.runner import paired_comparison
from lwd.utils.io import atomic_write_text, read_json


def _summaries(results: dict) -> dict[str, TaskSummary]:
    """Per-task summaries of a results.json, in the suite's task order (the JSON keys are sorted)."""
    tasks = results["tasks"]
    order = (
        [t for t in SUITES[results["suite"]].task_ids if t in tasks] if results.get("suite") in SUITES else []
    )
    order += [t for t in tasks if t not in order]
    out = {}
    for t in order:
        s = tasks[t]
        s = dict(s)
        s["ci95"] = tuple(s["ci95"])
        out[t] = TaskSummary(**s)
    return out


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(metrics: list[dict], keys: list[str], path: Path, title: str) -> bool:
    """Plot metric ``keys`` against the learner step; returns False if none of them was logged."""
    present = [k for k in keys if any(k in m for m in metrics)]
    if not present:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(present), figsize=(3.6 * len(present), 3.0), squeeze=False)
    for ax, k in zip(axes[0], present):
        pts = [(m["step"], m[k]) for m in metrics if k in m]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("learner step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_fleet_curve(metrics: list[dict], path: Path) -> bool:
    """The fleet's learning curve (the paper's headline figure): intervention rate and the success of
    the fleet's own episodes (interventions included) against cumulative robot-hours, one point per
    logged window; False if the learner logged none."""
    pts = [(m["fleet/robot_hours"], m["fleet/intervention_rate"], m.get("fleet/success_rate"))
           for m in metrics if "fleet/robot_hours" in m and "fleet/intervention_rate" in m]  # fmt: skip
    if not pts:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], label="intervention rate (share of steps)")
    succ = [(p[0], p[2]) for p in pts if p[2] is not None]
    if succ:
        ax.plot([p[0] for p in succ], [p[1] for p in succ], label="fleet episode success")
    ax.set_xlabel("robot-hours")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("learning while deploying: the fleet", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(run_dir: Path, policies: list[str], conditions: tuple[str, ...]) -> Path:
    run_dir = Path(run_dir)
    lines = [f"# lwd run report: `{run_dir}`", ""]
    cfg = read_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    lines += [f"Suite `{cfg.get('suite', '?')}`, seed {cfg.get('seed', '?')}.", ""]
    stages = run_dir / "stages"
    coll = stages / "collect.json"
    if coll.is_file():
        c = read_json(coll)["result"]
        lines += [
            "## Offline data",
            "",
            f"{c['episodes']} episodes, {c['frames']} frames in `{c['out']}`.",
            "",
            "| task | demo | rollout success | rollout failure | play |",
            "|---|---|---|---|---|",
        ]
        for t, q in c["per_task"].items():
            lines.append(
                f"| {t} | {q['demo']} | {q['rollout_success']} | {q['rollout_failure']} | {q['play']} |"
            )
        lines.append("")
    (run_dir / "plots").mkdir(exist_ok=True)
    sft_metrics = read_metrics(run_dir / "sft" / "metrics.jsonl")
    if plot_curves(sft_metrics, ["policy/bc_loss", "policy/lr"], run_dir / "plots" / "sft.png", "SFT"):
        lines += ["## SFT", "", "![SFT curves](plots/sft.png)", ""]
    off = read_metrics(run_dir / "offline_lwd" / "metrics.jsonl")
    keys = ["critic/td_loss", "value/entropy", "value/tau", "policy/adjoint_loss", "policy/drift"]
    if plot_curves(off, keys, run_dir / "plots" / "offline.png", "offline LWD (DIVL + QAM)"):
        lines += ["## Offline LWD", "", "![offline curves](plots/offline.png)", ""]
    onl = read_metrics(run_dir / "online" / "learner" / "metrics.jsonl")
    keys = [
        "fleet/intervention_rate",
        "value/tau",
        "value/entropy",
        "critic/td_loss",
        "policy/drift",
        "fleet/robot_hours",
    ]
    if plot_curves(onl, keys, run_dir / "plots" / "online.png", "online LWD (learning while deploying)"):
        lines += ["## Online LWD", "", "![online curves](plots/online.png)", ""]
        if plot_fleet_curve(onl, run_dir / "plots" / "fleet_robot_hours.png"):
            lines += ["Fleet success and intervention rate against robot-hours (training-time episodes):", "",
                      "![fleet vs robot-hours](plots/fleet_robot_hours.png)", ""]  # fmt: skip
        summ = run_dir / "online" / "summary.json"
        if summ.is_file():
            s = read_json(summ)
            lines += [
                f"Stopped by `{s['stop_reason']}` after {s['learner_step']} learner steps, {s['episodes']} fleet "
                f"episodes, {s['robot_hours']:.3f} robot-hours; published versions {s['versions']}.",
                "",
                *latency_lines(s.get("latency", {})),
                "| policy version | fleet episodes | intervention rate | success (with interventions) |",
                "|---|---|---|---|",
            ]
            for v, pv in sorted(s["per_version"].items(), key=lambda kv: int(kv[0])):
                sr = pv["success_rate"]
                avg = sum(sr.values()) / len(sr) if sr else float("nan")
                lines.append(f"| {v} | {pv['episodes']} | {pv['intervention_rate']:.3f} | {avg:.3f} |")
            lines.append("")
    for cond in conditions:
        cols = {}
        n_note = ""
        for p in policies:
            res_path = run_dir / "eval" / f"{p}_{cond}" / "results.json"
            if res_path.is_file():
                res = read_json(res_path)
                cols[p] = _summaries(res)
                n_note = (
                    f"{res['episodes_per_task_per_seed']} episodes per task per seed set, "
                    f"seed sets {res['seeds']} (held-out evaluation seeds), condition `{cond}`."
                )
        if cols:
            png = run_dir / "plots" / f"success_{cond}.png"
            bar_chart(cols, png, title=f"success rate ({cond})")
            lines += [
                f"## Success rate: {cond}",
                "",
                markdown_table(cols, episodes_note=n_note),
                f"![{cond}](plots/{png.name})",
                "",
                *paired_lines(run_dir, [p for p in cols if p != "sft"], cond),
            ]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def paired_lines(run_dir: Path, policies: list[str], cond: str) -> list[str]:
    """Each policy against SFT on the same held-out episodes (exact McNemar test), if SFT was evaluated."""
    sft = run_dir / "eval" / f"sft_{cond}"
    if not policies or not (sft / "episodes.jsonl").is_file():
        return []
    lines = [
        f"Paired with SFT on the same episodes ({cond}; exact two-sided McNemar test on the episodes "
        "only one of the two solved):",
        "",
        "| policy | paired episodes | success | SFT success | solved only by it | solved only by SFT | p |",
        "|---|---|---|---|---|---|---|",
    ]
    staged = []
    for p in policies:
        c = paired_comparison(run_dir / "eval" / f"{p}_{cond}", sft)
        lines.append(
            f"| {p} | {c['episodes']} | {c['success_a']:.3f} | {c['success_b']:.3f} | {c['a_only']} | "
            f"{c['b_only']} | {c['p_value']:.3g} |"
        )
        if "substep_episodes" in c:
            staged.append(f"| {p} | {c['substep_episodes']} | {c['substep_a']:.3f} | {c['substep_b']:.3f} | "
                          f"{c['substep_p_value']:.3g} |")  # fmt: skip
    if staged:
        lines += ["", f"Sub-step score paired with SFT ({cond}; episodes of chained tasks; two-sided Wilcoxon "
                  "signed-rank test):", "", "| policy | paired episodes | sub-step score | SFT sub-step score | p |",
                  "|---|---|---|---|---|", *staged]  # fmt: skip
    return [*lines, ""]


def latency_lines(lat: dict) -> list[str]:
    """Markdown lines for the online summary's end-to-end latencies (P50 / P99, seconds)."""
    names = {"episode_to_committed_s": "episode end -> committed in a replay snapshot",
             "episode_to_sampleable_s": "episode end -> in the learner's replay buffer (sampleable)",
             "publish_to_loaded_s": "policy published -> running on a robot (episode-boundary wait included)"}  # fmt: skip
    out = [f"- {label}: P50 {lat[k]['p50']} s, P99 {lat[k]['p99']} s ({lat[k]['n']} samples)"
           for k, label in names.items() if lat.get(k, {}).get("n")]  # fmt: skip
    return out + [""] if out else []
