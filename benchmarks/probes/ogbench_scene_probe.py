"""Can OGBench's ``scene`` serve as the long-horizon suite where language picks the task?

One shared tabletop scene (a cube, two lock buttons, a drawer, a window); OGBench ships it on PyPI
with scripted per-object experts (``ogbench.manipspace.oracles``), nothing downloaded at run time.
This probe measures, in one process and one thread, what a suite built on it would rest on:

- ``random_steps_per_s``: control steps per second under random actions (simulator throughput);
- per target kind (``cube``, ``button``, ``drawer``, ``window``): how often the shipped plan oracle
  reaches a random atomic target of that kind (the env's ``set_new_target`` in data-collection
  mode, chained one after another in the same episode as OGBench's own data generation does), and
  the control steps it takes: the scripted human stand-in a suite would need.

It needs the optional extra (``pip install 'lwd[ogbench]'``)::

    .venv/bin/python benchmarks/probes/ogbench_scene_probe.py --targets 40 --steps 2000

Writes ``runs/bench/ogbench_scene_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=40, help="random atomic targets the oracle attempts")
    p.add_argument("--steps", type=int, default=2000, help="random-action steps timed")
    p.add_argument("--max-target-steps", type=int, default=300, help="control steps allowed per target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench/ogbench_scene_probe.json"))
    a = p.parse_args()
    if a.targets < 1 or a.steps < 1 or a.max_target_steps < 1:
        print("error: --targets, --steps and --max-target-steps must be >= 1", file=sys.stderr)
        raise SystemExit(2)
    try:
        import gymnasium as gym
        import ogbench.manipspace  # noqa: F401 (registers the envs)
        from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
        from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
        from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
        from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle
    except ImportError as e:
        print(f"error: ogbench is not installed ({e}); pip install 'lwd[ogbench]'", file=sys.stderr)
        raise SystemExit(2) from None
    oracles = {"cube": CubePlanOracle, "button": ButtonPlanOracle, "drawer": DrawerPlanOracle,
               "window": WindowPlanOracle}  # fmt: skip

    env = gym.make("scene-v0", mode="data_collection")
    ob, info = env.reset(seed=a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        ob, _, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if term or trunc:
            ob, info = env.reset()
    random_sps = a.steps / (time.perf_counter() - t0)

    ob, info = env.reset(seed=a.seed + 1)
    per_kind: dict[str, list[tuple[bool, int]]] = defaultdict(list)
    t0, total = time.perf_counter(), 0
    for _ in range(a.targets):
        ob, info = env.unwrapped.set_new_target()
        kind = str(info["privileged/target_task"])
        oracle = oracles[kind](env=env)
        oracle.reset(ob, info)
        steps, success = 0, False
        while steps < a.max_target_steps:
            ob, _, term, trunc, info = env.step(oracle.select_action(ob, info))
            steps += 1
            success = bool(info.get("success", False))
            if oracle.done or term or trunc:
                break
        total += steps
        per_kind[kind].append((success, steps))
        if term or trunc:
            ob, info = env.reset()
    oracle_sps = total / (time.perf_counter() - t0)

    out = {
        "command": "benchmarks/probes/ogbench_scene_probe.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "obs_dim": int(np.prod(env.observation_space.shape)), "action_dim": int(np.prod(env.action_space.shape)),
        "random_steps_per_s": round(random_sps, 1), "oracle_steps_per_s": round(oracle_sps, 1),
        "oracle": {k: {"targets": len(v), "success_rate": float(np.mean([s for s, _ in v])),
                       "median_steps": float(np.median([n for _, n in v]))} for k, v in sorted(per_kind.items())},
    }  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
