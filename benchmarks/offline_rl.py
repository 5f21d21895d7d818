"""Offline RL on mw8 (field, held-out seeds): SFT vs LWD offline vs IQL-expectile vs constant-tau DIVL.

Uses the dataset and per-seed SFT policies of ``benchmarks/sft_baseline.py`` (same ``--root``).
Train + evaluate (run one process per seed to use both cores):

    .venv/bin/python benchmarks/offline_rl.py run --seeds 0 --steps 1000
    .venv/bin/python benchmarks/offline_rl.py run --seeds 1 --steps 1000

then aggregate (table, tau/entropy curves, value distributions along a successful and a failed
episode) into ``runs/bench/offline_rl.json`` and ``runs/bench/offline_rl_*.png``:

    .venv/bin/python benchmarks/offline_rl.py report
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
from pathlib import Path

import numpy as np
import torch

from lwd.configs.eval import EvalConfig
from lwd.configs.presets import OFFLINE
from lwd.configs.train import LoopConfig, RLConfig
from lwd.eval.report import bar_chart, markdown_table
from lwd.eval.runner import evaluate, pooled_summaries
from lwd.pipeline.report import plot_curves, read_metrics
from lwd.pipeline.train_offline import build_algorithm, train_offline
from lwd.utils.io import atomic_write_json, read_json
from lwd.utils.state_io import load_state_dir

ALGOS = ("lwd", "iql-qam", "lwd-const-tau")


def rl_config(root: Path, seed: int, algo: str, steps: int, batch: int) -> RLConfig:
    return dataclasses.replace(
        OFFLINE["benchmark"],
        dataset=root / "offline_data",
        init=root / f"seed{seed}" / "sft" / "policy",
        out=root / f"seed{seed}" / f"offline_{algo}",
        algorithm=algo,
        loop=LoopConfig(steps=steps, batch_size=batch, checkpoint_every=max(1, steps // 4), seed=seed),
    )


def cmd_run(args) -> None:
    for seed in args.seeds:
        for algo in args.algorithms:
            cfg = rl_config(args.root, seed, algo, args.steps, args.batch)
            ckpt = train_offline(cfg)
            out = args.root / f"seed{seed}" / "eval" / f"{algo}_field"
            if not (out / "results.json").is_file():
                evaluate(
                    EvalConfig(
                        checkpoint=ckpt,
                        shift="field",
                        episodes_per_task=args.episodes,
                        seeds=(0,),
                        workers=args.workers,
                        out=out,
                        name=f"{algo}-seed{seed}",
                    ),
                    progress=False,
                )


def value_along_episodes(root: Path, seed: int, steps: int, batch: int, out_png: Path) -> dict:
    """Value distributions p(v | s_t) of the final LWD value net along a successful and a failed
    offline episode of the same long task (paper Fig. 6/9)."""
    from lwd.data import LwdDataset
    from lwd.policy.batching import obs_from_arrays

    cfg = rl_config(root, seed, "lwd", steps, batch)
    algo, stats, _ = build_algorithm(cfg)
    latest = read_json(cfg.out / "checkpoints" / "latest.json")
    state, _ = load_state_dir(cfg.out / "checkpoints" / latest["path"])
    algo.load_state_dict(state["algorithm"])
    ds = LwdDataset.open(cfg.dataset, verify_checksums=False)
    task = "assembly"
    ok = next(ds.iter_episodes(task_ids=[task], sources=["rollout"], success=True), None) or next(
        ds.iter_episodes(task_ids=[task], success=True)
    )
    bad = next(ds.iter_episodes(task_ids=[task], sources=["rollout"], success=False), None) or next(
        ds.iter_episodes(task_ids=[task], success=False)
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    summary = {}
    for ax, (label, ep) in zip(axes, (("success", ok), ("failure", bad))):
        emb = algo.text_encoder.encode([ep.instruction] * len(ep.states))
        obs = obs_from_arrays(ep.states, None, emb, stats)
        with torch.no_grad():
            p = algo.value_critic.value_net.probs(obs).numpy()  # [T+1, k]
        atoms = np.linspace(-0.1, 1.1, p.shape[1])
        ax.imshow(p.T, origin="lower", aspect="auto", extent=[0, len(p), atoms[0], atoms[-1]], cmap="viridis")
        ax.set_title(f"{task}: {label} ({ep.source})", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("value atom")
        mean = (p * atoms).sum(1)
        summary[label] = {
            "episode_id": ep.episode_id,
            "mean_value_start": float(mean[0]),
            "mean_value_end": float(mean[-1]),
        }
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return summary


def cmd_report(args) -> None:
    seeds = [int(p.name[4:]) for p in sorted(args.root.glob("seed*")) if (p / "eval" / "sft_field").is_dir()]
    cols, per_seed = {}, {}
    for name, sub in [("SFT", "sft_field")] + [(a, f"{a}_field") for a in ALGOS]:
        paths = [
            args.root / f"seed{s}" / "eval" / sub
            for s in seeds
            if (args.root / f"seed{s}" / "eval" / sub / "results.json").is_file()
        ]
        if paths:
            cols[f"{name} ({len(paths)} seeds)"] = pooled_summaries(paths)
            per_seed[name] = {
                p.parent.parent.name: read_json(p / "results.json")["average_success"] for p in paths
            }
    note = f"field condition, {args.episodes} held-out episodes per task per training seed; cells pool the seeds."
    table = markdown_table(cols, episodes_note=note)
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    bar_chart(cols, out_dir / "offline_rl_field.png", title="offline RL on mw8 (field)")
    curves = {}
    for algo in ("lwd", "lwd-const-tau"):
        m = read_metrics(args.root / f"seed{seeds[0]}" / f"offline_{algo}" / "metrics.jsonl")
        png = out_dir / f"offline_rl_curves_{algo}.png"
        if plot_curves(
            m, ["value/tau", "value/entropy", "critic/td_loss", "policy/drift"], png, f"offline {algo}"
        ):
            curves[algo] = str(png)
    values = value_along_episodes(
        args.root, seeds[0], args.steps, args.batch, out_dir / "offline_rl_values.png"
    )
    atomic_write_json(
        args.out,
        {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "seeds": seeds,
            "steps": args.steps,
            "batch": args.batch,
            "per_seed_average": per_seed,
            "pooled": {c: {t: dataclasses.asdict(s) for t, s in v.items()} for c, v in cols.items()},
            "curves": curves,
            "value_along_episodes": values,
            "table": table,
        },
    )
    print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "report"])
    ap.add_argument("--root", type=Path, default=Path("runs/benchmark"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--algorithms", nargs="+", default=list(ALGOS))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/offline_rl.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    (cmd_run if args.mode == "run" else cmd_report)(args)


if __name__ == "__main__":
    main()
