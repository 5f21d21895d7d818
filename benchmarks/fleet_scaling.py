"""Fleet scaling: env steps/s, learner steps/s and end-to-end latencies for 1, 4, 16 and 64 simulated
robots (mw8, field, state mode), on the local process launcher and on Ray.

Runs the real online fleet (coordinator, learner, robot-client processes or Ray actors, SQLite data
plane) from a finished quickstart run's offline stage, with the quickstart's online learner (it trains
and publishes while the robots run), for a fixed wall-clock budget per (engine, size). Per row:

The local rows use the embedded SQLite data plane; the Ray rows a Redis event log (a redis-server
this script starts; Ray needs a data plane every node reaches) with the store on local disk.

* env steps/s: steps the robots reported / the wall budget (process start-up included: a lower bound);
* learner steps/s: over the learner's logged windows (its own start-up and warm-up excluded);
* episode end -> committed in a snapshot, episode end -> in the learner's replay buffer
  (sampleable), policy publish -> running on a robot (episode-boundary wait included): P50 / P99 s,
  as the fleet measured them (``summary["latency"]`` of :func:`lwd.pipeline.online.run_online`).

    .venv/bin/python benchmarks/fleet_scaling.py --sizes 1 4 16 64 --engines local ray --seconds 120

Needs `lwd run --preset quickstart` (its offline_data and offline_lwd). Writes
``runs/bench/fleet_scaling.json`` (after every row, so a cut run keeps its rows) and prints a markdown
table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.pipeline.online import run_online
from lwd.utils.io import atomic_write_json


def learner_rate(learner_dir: Path) -> float | None:
    """Learner steps/s between its first and last logged window (start-up and warm-up excluded)."""
    path = learner_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "time" in r and "step" in r]
    if len(rows) < 2 or rows[-1]["time"] <= rows[0]["time"]:
        return None
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])


def one_row(
    engine: str, n: int, processes: int, seconds: float, run: Path, work: Path, dataplane: str
) -> dict:
    base = ONLINE["quickstart"]
    cfg = dataclasses.replace(
        base,
        engine=engine,
        dataplane=dataplane,
        num_robots=n,
        robot_processes=min(n, processes),
        budget=Budget(max_learner_steps=None, max_wall_s=seconds),
    )
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    s = run_online(cfg, work, run / "offline_data", run / "offline_lwd", display=False)
    lat = s.get("latency", {})
    return {
        "engine": engine,
        "dataplane": "redis" if dataplane else "sqlite",
        "robots": n,
        "processes": cfg.robot_processes,
        "seconds": seconds,
        "wall_s": round(time.monotonic() - t0, 1),
        "env_steps": s["env_steps"],
        "episodes": s["episodes"],
        "env_steps_per_s": s["env_steps"] / seconds,
        "learner_steps": s["learner_step"],
        "learner_steps_per_s": learner_rate(work / "online" / "learner"),
        "versions": len(s["versions"]),
        "robot_hours": s["robot_hours"],
        "latency": {
            k: lat.get(k)
            for k in ("episode_to_committed_s", "episode_to_sampleable_s", "publish_to_loaded_s")
        },
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
    }


def fmt(p: dict | None) -> str:
    if not p or not p.get("n"):
        return "-"
    return f"{p['p50']:.2f} / {p['p99']:.2f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| engine | robots | client processes | env steps/s | learner steps/s | episodes | "
        "episode end -> committed P50 / P99 (s) | episode end -> sampleable P50 / P99 (s) | "
        "publish -> running P50 / P99 (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ls = r["learner_steps_per_s"]
        lat = r["latency"]
        lines.append(
            f"| {r['engine']} | {r['robots']} | {r['processes']} | {r['env_steps_per_s']:.0f} | "
            f"{'-' if ls is None else f'{ls:.2f}'} | {r['episodes']} | {fmt(lat['episode_to_committed_s'])} | "
            f"{fmt(lat['episode_to_sampleable_s'])} | {fmt(lat['publish_to_loaded_s'])} |"
        )
    return "\n".join(lines)


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart run dir")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--processes", type=int, default=2, help="robot-client processes (at most one per robot)")
    ap.add_argument("--seconds", type=float, default=120.0, help="wall-clock budget per row")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/fleet_scaling.json"))
    args = ap.parse_args()
    missing = [p for p in (args.run / "offline_data", args.run / "offline_lwd") if not p.exists()]
    if missing:
        fail(f"{missing[0]} does not exist; run `make run` (or lwd run --preset quickstart) first")
    if any(n < 1 for n in args.sizes) or args.processes < 1 or args.seconds <= 0:
        fail("--sizes and --processes must be >= 1 and --seconds > 0")
    if "ray" in args.engines:
        try:
            import ray  # noqa: F401
        except ImportError:
            fail("--engines ray needs the ray package (pip install 'lwd[scale]')")
    rows: list[dict] = []
    redis = None
    try:
        for engine in args.engines:
            if engine == "ray" and redis is None:  # Ray's nodes meet through a Redis event log, never SQLite
                sys.path.insert(0, str(Path(__file__).parent))
                from dataplane_bench import start_redis

                redis = start_redis(Path(tempfile.mkdtemp(prefix="lwd-scaling-redis-")))
            for n in args.sizes:
                work = Path("runs/bench") / f"fleet_{engine}_{n}"
                shutil.rmtree(work, ignore_errors=True)
                print(f"fleet_scaling: {engine} engine, {n} robots, {args.seconds:.0f} s ...", flush=True)
                url = ""
                if engine == "ray":  # every row starts from an empty event log
                    redis.flush()
                    url = redis.url
                rows.append(one_row(engine, n, args.processes, args.seconds, args.run, work, url))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
                atomic_write_json(args.out, {
                    "command": "benchmarks/fleet_scaling.py " + " ".join(sys.argv[1:]),
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                    "rows": rows,
                })  # fmt: skip
    finally:
        if redis is not None:
            redis.stop()
    print(table(rows))


if __name__ == "__main__":
    main()
