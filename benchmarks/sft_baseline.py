"""The SFT baseline row on mw8: lab and field success per task, several training seeds.

Collects one offline dataset (lab condition, seed 0; records collection throughput), trains one
SFT policy per training seed, and evaluates each in the lab and the field on held-out evaluation
seeds. Writes ``runs/bench/sft_baseline.json`` and prints a markdown table.

    .venv/bin/python benchmarks/sft_baseline.py --seeds 0 1 --episodes 50
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

from lwd.configs.eval import EvalConfig
from lwd.configs.presets import COLLECT, SFT
from lwd.eval.report import markdown_table
from lwd.eval.runner import evaluate, pooled_summaries
from lwd.pipeline.collect import collect
from lwd.pipeline.pretrain import pretrain
from lwd.utils.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("runs/benchmark"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    ap.add_argument(
        "--episodes", type=int, default=50, help="evaluation episodes per task per condition per seed"
    )
    ap.add_argument("--episodes-per-task", type=int, default=COLLECT["benchmark"].episodes_per_task)
    ap.add_argument("--sft-steps", type=int, default=SFT["benchmark"].loop.steps)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of SFT (1 avoids oversubscription)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/sft_baseline.json"))
    args = ap.parse_args()

    data = args.root / "offline_data"
    t0 = time.monotonic()
    cs = collect(
        dataclasses.replace(
            COLLECT["benchmark"], out=data, episodes_per_task=args.episodes_per_task, resume=True
        )
    )
    collect_s = time.monotonic() - t0
    runs = {"lab": [], "field": []}
    for seed in args.seeds:
        sft_cfg = dataclasses.replace(
            SFT["benchmark"],
            dataset=data,
            out=args.root / f"seed{seed}" / "sft",
            loop=dataclasses.replace(SFT["benchmark"].loop, seed=seed, steps=args.sft_steps, threads=args.threads),
        )
        ckpt = pretrain(sft_cfg)
        for cond in ("lab", "field"):
            out = args.root / f"seed{seed}" / "eval" / f"sft_{cond}"
            res = evaluate(
                EvalConfig(
                    checkpoint=ckpt,
                    shift=cond,
                    episodes_per_task=args.episodes,
                    seeds=(0,),
                    workers=args.workers,
                    out=out,
                    name=f"sft-seed{seed}",
                ),
                progress=False,
            )
            res["out"] = str(out)
            runs[cond].append(res)
    table_cols = {f"SFT ({cond})": pooled_summaries([r["out"] for r in runs[cond]]) for cond in ("lab", "field")}
    note = (
        f"{len(args.seeds)} training seeds x {args.episodes} held-out episodes per task per condition "
        f"({len(args.seeds) * args.episodes} per cell)."
    )
    table = markdown_table(table_cols, episodes_note=note)
    out = {
        "command": "benchmarks/sft_baseline.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "collection": {
            "episodes": cs.episodes,
            "frames": cs.frames,
            "seconds": collect_s,
            "episodes_per_s": cs.new_episodes / collect_s if cs.new_episodes else None,
            "frames_per_s_note": "throughput only meaningful on a fresh collection",
        },
        "per_seed": {
            cond: [
                {
                    "name": r["name"],
                    "average_success": r["average_success"],
                    "tasks": {t: s["success_rate"] for t, s in r["tasks"].items()},
                }
                for r in runs[cond]
            ]
            for cond in runs
        },
        "pooled": {c: {t: dataclasses.asdict(s) for t, s in v.items()} for c, v in table_cols.items()},
        "table": table,
    }
    atomic_write_json(args.out, out)
    print(table)


if __name__ == "__main__":
    main()
