"""Benchmark of the simulated fleet world (``lwd.envs``).

Per task of a suite: scripted-expert success rate and episode length in each condition (lab and
field by default; N episodes each, evaluation seeds), and simulator throughput (env steps/s, one
process, one thread) in state and pixels mode. Writes ``runs/bench/envs.json`` and prints a markdown
table.

    MUJOCO_GL=egl .venv/bin/python benchmarks/envs_bench.py --episodes 20
    .venv/bin/python benchmarks/envs_bench.py --suite scene8 --episodes 40 --pixel-steps 0 \
        --conditions lab field field2 --out runs/bench/envs_scene8.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from lwd.envs.episode_loop import run_episode
from lwd.envs.experts import expert_policy
from lwd.envs.suites import get_suite, make_robot
from lwd.utils.io import atomic_write_json
from lwd.utils.seeding import COLLECT_SEED_BASE, eval_seed


def expert_stats(suite: str, condition: str, task_ids, episodes: int, noise: str, run_seed: int) -> dict:
    """Success rate, lengths and state-mode throughput of the noisy scripted expert per task."""
    robot = make_robot(suite, "state", condition)
    spec = get_suite(suite)
    out = {}
    for ti, task_id in enumerate(task_ids):
        task = spec.task(task_id)
        robot.reset(task_id, task.instructions[0], 0)  # build the scene outside the timing
        successes, lengths, steps = 0, [], 0
        start = time.perf_counter()
        for e in range(episodes):
            seed = eval_seed(run_seed, ti, e)
            act = expert_policy(robot, task_id, noise=noise, seed=seed)
            ep = run_episode(robot, act, task, task.instructions[0], seed, source="demo")
            successes += int(ep.success)
            steps += ep.length
            if ep.success:
                lengths.append(ep.length)
        elapsed = time.perf_counter() - start
        out[task_id] = {
            "success_rate": successes / episodes,
            "episodes": episodes,
            "median_length": float(np.median(lengths)) if lengths else None,
            "p90_length": float(np.percentile(lengths, 90)) if lengths else None,
            "max_length": int(max(lengths)) if lengths else None,
            "time_limit": task.max_steps,
            "state_steps_per_s": steps / elapsed,
        }
        print(f"  {condition:5s} {task_id:16s} {out[task_id]}", flush=True)
    return out


def bc_proxy(suite: str, task_ids, demos: int, evals: int, run_seed: int) -> dict:
    """Is the field shift substantial? A 5-nearest-neighbour behaviour clone (normalised state ->
    mean action) of ``demos`` lab demonstrations per task, evaluated in the lab and in the field.
    A cheap, torch-free stand-in for "a policy cloned from lab demonstrations"."""
    robots = {c: make_robot(suite, "state", c) for c in ("lab", "field")}
    spec = get_suite(suite)
    out = {}
    for ti, task_id in enumerate(task_ids):
        task = spec.task(task_id)
        xs, ys = [], []
        for e in range(demos):
            seed = COLLECT_SEED_BASE + ti * 10_000 + e
            act = expert_policy(robots["lab"], task_id, noise="demo", seed=seed)
            ep = run_episode(robots["lab"], act, task, task.instructions[0], seed, source="demo")
            xs.append(ep.states[:-1])
            ys.append(ep.actions)
        x, y = np.concatenate(xs), np.concatenate(ys)
        mu, sd = x.mean(0), x.std(0) + 1e-2
        xn = (x - mu) / sd

        def clone(obs, xn=xn, y=y, mu=mu, sd=sd):
            d = (((obs.state - mu) / sd - xn) ** 2).sum(1)
            return y[np.argpartition(d, 5)[:5]].mean(0, keepdims=True)

        out[task_id] = {}
        for cond, robot in robots.items():
            wins = 0
            for e in range(evals):
                seed = eval_seed(run_seed, ti, 2000 + e)
                wins += run_episode(robot, clone, task, task.instructions[0], seed).success
            out[task_id][cond] = wins / evals
        print(f"  bc-proxy {task_id:16s} {out[task_id]}", flush=True)
    return out


def pixel_throughput(suite: str, task_ids, steps: int, run_seed: int) -> dict:
    """Env steps/s in pixels mode (rendering every step), expert-driven, field condition."""
    robot = make_robot(suite, "pixels", "field")
    spec = get_suite(suite)
    out = {}
    for ti, task_id in enumerate(task_ids):
        task = spec.task(task_id)
        robot.reset(task_id, task.instructions[0], 0)
        done_steps, start, e = 0, time.perf_counter(), 0
        while done_steps < steps:
            seed = eval_seed(run_seed, ti, 1000 + e)
            act = expert_policy(robot, task_id, noise="demo", seed=seed)
            ep = run_episode(robot, act, task, task.instructions[0], seed, source="demo")
            done_steps += ep.length
            e += 1
        out[task_id] = done_steps / (time.perf_counter() - start)
        print(f"  pixels {task_id:16s} {out[task_id]:.0f} steps/s", flush=True)
    return out


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def markdown(result: dict) -> str:
    conds = result.get("conditions", ["lab", "field"])
    extra = [c for c in conds if c not in ("lab", "field")]
    lines = [
        "| task | kind | time limit | lab success | field success | lab median len | field median len "
        "| field p90 len | state steps/s | pixels steps/s | kNN-clone lab | kNN-clone field |"
        + "".join(f" {c} success | {c} median len |" for c in extra),
        "|---" * (12 + 2 * len(extra)) + "|",
    ]
    spec = get_suite(result["suite"])
    for task_id in result["tasks"]:
        lab, field = result["lab"][task_id], result["field"][task_id]
        px = result["pixels_steps_per_s"].get(task_id)
        bc = result["bc_proxy"].get(task_id, {})
        lines.append(
            f"| {task_id} | {spec.task(task_id).kind} | {lab['time_limit']} | {lab['success_rate']:.2f} "
            f"| {field['success_rate']:.2f} | {_n(lab['median_length'])} | {_n(field['median_length'])} "
            f"| {_n(field['p90_length'])} | {lab['state_steps_per_s']:.0f} | "
            + (f"{px:.0f} |" if px else "- |")
            + (f" {bc['lab']:.2f} | {bc['field']:.2f} |" if bc else " - | - |")
            + "".join(f" {result[c][task_id]['success_rate']:.2f} | {_n(result[c][task_id]['median_length'])} |"
                      for c in extra)  # fmt: skip
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default="mw8")
    parser.add_argument("--tasks", nargs="*", default=None, help="subset of task ids (default: all)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task per condition")
    parser.add_argument("--noise", default="demo", help="expert noise mode (demo, rollout, play)")
    parser.add_argument(
        "--pixel-steps", type=int, default=300, help="steps per task for pixels fps (0: skip)"
    )
    parser.add_argument("--bc-demos", type=int, default=20, help="lab demos per task for the clone (0: skip)")
    parser.add_argument("--bc-evals", type=int, default=20, help="clone episodes per task per condition")
    parser.add_argument("--seed", type=int, default=0, help="run seed (evaluation seed namespace)")
    parser.add_argument("--conditions", nargs="+", default=["lab", "field"],
                        help="conditions of the expert statistics (must include lab and field)")  # fmt: skip
    parser.add_argument("--out", default="runs/bench/envs.json")
    args = parser.parse_args()
    if not {"lab", "field"} <= set(args.conditions):
        parser.error("--conditions must include lab and field")
    warnings.filterwarnings("ignore")  # Meta-World's scripted policies warn about clipped gains

    task_ids = tuple(args.tasks or get_suite(args.suite).task_ids)
    t0 = time.perf_counter()
    result = {
        "suite": args.suite,
        "tasks": list(task_ids),
        "episodes": args.episodes,
        "noise": args.noise,
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "mujoco_gl": os.environ.get("MUJOCO_GL", "egl (default)"),
        },
        "conditions": list(args.conditions),
        **{c: expert_stats(args.suite, c, task_ids, args.episodes, args.noise, args.seed) for c in args.conditions},
        "pixels_steps_per_s": pixel_throughput(args.suite, task_ids, args.pixel_steps, args.seed)
        if args.pixel_steps > 0
        else {},
        "bc_proxy": bc_proxy(args.suite, task_ids, args.bc_demos, args.bc_evals, args.seed)
        if args.bc_demos
        else {},
    }
    result["wall_seconds"] = time.perf_counter() - t0
    atomic_write_json(args.out, result)
    print(markdown(result))
    print(f"\nwrote {args.out} in {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
