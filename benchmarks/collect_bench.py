"""Collection throughput of `lwd collect` (episodes/s, frames/s) on a fresh dataset, state and pixels.

    .venv/bin/python benchmarks/collect_bench.py --episodes-per-task 10 --pixel-episodes-per-task 2

Writes ``runs/bench/collect.json`` and prints a markdown table. Single process, lab condition.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from lwd.configs.collect import CollectConfig
from lwd.pipeline.collect import collect
from lwd.utils.io import atomic_write_json


def measure(mode: str, episodes_per_task: int, suite: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        s = collect(
            CollectConfig(out=out, suite=suite, obs_mode=mode, episodes_per_task=episodes_per_task),
            progress=False,
        )
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "mode": mode,
        "episodes": s.episodes,
        "frames": s.frames,
        "seconds": s.seconds,
        "episodes_per_s": s.episodes / s.seconds,
        "frames_per_s": s.frames / s.seconds,
        "bytes_per_frame": size / max(1, s.frames),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="mw8")
    ap.add_argument("--episodes-per-task", type=int, default=10)
    ap.add_argument("--pixel-episodes-per-task", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/collect.json"))
    args = ap.parse_args()
    rows = [measure("state", args.episodes_per_task, args.suite)]
    if args.pixel_episodes_per_task > 0:
        rows.append(measure("pixels", args.pixel_episodes_per_task, args.suite))
    res = {
        "command": f"benchmarks/collect_bench.py --suite {args.suite} --episodes-per-task {args.episodes_per_task} "
        f"--pixel-episodes-per-task {args.pixel_episodes_per_task}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": rows,
    }
    atomic_write_json(args.out, res)
    print("| mode | episodes | frames | episodes/s | frames/s | bytes/frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['episodes']} | {r['frames']} | {r['episodes_per_s']:.2f} | "
            f"{r['frames_per_s']:.0f} | {r['bytes_per_frame']:.0f} |"
        )


if __name__ == "__main__":
    main()
