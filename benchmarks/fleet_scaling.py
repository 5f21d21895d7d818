"""Fleet scaling: simulated-fleet env steps/s with 1, 4 and 16 robots (mw8, field, state mode).

Runs the real local fleet (coordinator, learner, robot-client processes) from a finished quickstart
run's offline stage for a fixed wall-clock budget per fleet size. The learner's warm-up is set out
of reach so it only ingests data: the number measures robots + data plane, not learning.

    .venv/bin/python benchmarks/fleet_scaling.py --sizes 1 4 16 --seconds 90

Needs `lwd run --preset quickstart` (its offline_data and offline_lwd). Writes
``runs/bench/fleet_scaling.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
from pathlib import Path

from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.pipeline.online import run_online
from lwd.utils.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart run dir")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--processes", type=int, default=2, help="robot-client processes (at most one per robot)")
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/fleet_scaling.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        work = Path("runs/bench") / f"fleet_{n}"
        shutil.rmtree(work, ignore_errors=True)
        base = ONLINE["quickstart"]
        cfg = dataclasses.replace(
            base,
            num_robots=n,
            robot_processes=min(n, args.processes),
            learner=dataclasses.replace(base.learner, min_online_transitions=10**12),
            budget=Budget(max_learner_steps=None, max_wall_s=args.seconds),
        )
        s = run_online(cfg, work, args.run / "offline_data", args.run / "offline_lwd", display=False)
        rows.append(
            {
                "robots": n,
                "processes": cfg.robot_processes,
                "seconds": args.seconds,
                "env_steps": s["env_steps"],
                "episodes": s["episodes"],
                "env_steps_per_s": s["env_steps"] / args.seconds,
                "robot_hours": s["robot_hours"],
            }
        )
    atomic_write_json(
        args.out,
        {
            "command": f"benchmarks/fleet_scaling.py --sizes {' '.join(map(str, args.sizes))} --seconds {args.seconds}",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "rows": rows,
        },
    )
    print("| robots | client processes | env steps/s | episodes | robot-hours |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['robots']} | {r['processes']} | {r['env_steps_per_s']:.0f} | {r['episodes']} | {r['robot_hours']:.3f} |"
        )


if __name__ == "__main__":
    main()
