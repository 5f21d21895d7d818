"""One evaluation worker process: runs a list of (task, instruction, seed) episodes and appends one
JSON line per finished episode to its output file. Launched by :mod:`lwd.eval.runner` as
``python -m lwd.eval.worker JOB.json`` (JSON in, JSON lines out: nothing pickled crosses processes).
"""

from __future__ import annotations

import json
import sys
import time

import torch


def run_job(job: dict) -> None:
    from lwd.envs.episode_loop import run_episode
    from lwd.envs.experts import expert_policy
    from lwd.envs.suites import get_task, make_robot

    torch.set_num_threads(1)
    robot = make_robot(job["suite"], job["obs_mode"], job["shift"])
    policy = None
    if job.get("checkpoint"):
        from lwd.policy.checkpoint import load_inference_policy

        policy = load_inference_policy(job["checkpoint"], robot.spec, noise=job.get("noise", "random"))
    with open(job["out"], "a", encoding="utf-8") as f:
        for task_id, instruction, seed in job["episodes"]:
            task = get_task(job["suite"], task_id)
            if policy is None:
                act = expert_policy(robot, task_id, noise="demo", seed=seed)
                act = _noiseless(act)
            else:
                act = _policy_act(policy, seed)
            t0 = time.perf_counter()
            ep = run_episode(
                robot, act, task, instruction, seed, robot_id=job.get("robot_id", "eval"), source="online"
            )
            rec = {
                "task_id": task_id,
                "instruction": instruction,
                "seed": seed,
                "success": bool(ep.success),
                "length": ep.length,
                "wall_time_s": time.perf_counter() - t0,
                "interventions": int(ep.intervention.sum()),
                "substep": ep.substep_score,
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()


def _noiseless(expert):
    def act(obs):
        return expert.expert_action(obs)[None]

    return act


def _policy_act(policy, episode_seed: int):
    counter = [0]

    def act(obs):
        counter[0] += 1
        return policy.act(obs, seed=episode_seed * 1000 + counter[0]).actions

    return act


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    run_job(job)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
