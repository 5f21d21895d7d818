"""Are field failures caused by executing action chunks open-loop? Replan more often and see.

Evaluates one policy in the field, executing only the first ``k`` actions of each proposed chunk before
replanning (k = chunk length is the normal open-loop execution), on the same held-out seeds
(``lwd.utils.seeding.eval_seed``) and each task's first training instruction, one process, one thread:

    .venv/bin/python benchmarks/probes/replan_probe.py --checkpoint runs/quickstart/sft/policy --execute 8 2

Prints one line per k and writes ``runs/bench/replan_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from lwd.envs.episode_loop import run_episode
from lwd.envs.suites import get_suite, make_robot
from lwd.policy.checkpoint import load_inference_policy
from lwd.utils.io import atomic_write_json
from lwd.utils.seeding import eval_seed


def success_by_task(policy, robot, suite: str, k: int, episodes: int) -> dict[str, float]:
    out = {}
    for ti, task in enumerate(get_suite(suite).tasks):
        wins = 0
        for i in range(episodes):
            seed = eval_seed(0, ti, i)
            calls = [0]

            def act(obs, seed=seed, calls=calls):
                calls[0] += 1
                return policy.act(obs, seed=seed * 1000 + calls[0]).actions[:k]

            wins += int(run_episode(robot, act, task, task.instructions[0], seed).success)
        out[task.task_id] = wins / episodes
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--execute", type=int, nargs="+", default=[8, 2], help="actions executed per chunk")
    ap.add_argument("--episodes", type=int, default=10, help="held-out episodes per task")
    ap.add_argument("--shift", default="field")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/replan_probe.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    robot = make_robot("mw8", "state", args.shift)
    policy = load_inference_policy(str(args.checkpoint), robot.spec)
    rows = []
    for k in args.execute:
        if not 1 <= k <= policy.config.chunk_len:
            raise SystemExit(f"--execute {k}: must be in 1..{policy.config.chunk_len}")
        per_task = success_by_task(policy, robot, "mw8", k, args.episodes)
        avg = sum(per_task.values()) / len(per_task)
        rows.append({"execute": k, "average_success": avg, "per_task": per_task})
        print(f"execute {k}/{policy.config.chunk_len}: field success {avg:.3f} {json.dumps(per_task)}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, {"checkpoint": str(args.checkpoint), "shift": args.shift,
                                 "episodes_per_task": args.episodes, "cpu_count": os.cpu_count(), "rows": rows})


if __name__ == "__main__":
    main()
