"""``lwd eval``: evaluate a checkpoint or the scripted expert on fixed held-out seeds, per task.

Episodes are split over ``workers`` robot processes (:mod:`lwd.eval.worker`), each with one torch
thread. Evaluation seeds come from :func:`lwd.utils.seeding.eval_seed` and never overlap the
collection or online seeds. Outputs in ``out``: ``results.json`` (per-task success rate, Wilson 95%
interval, episode lengths, cycle time), ``table.md``, ``bars.png`` and ``episodes.jsonl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from lwd.configs.eval import EvalConfig
from lwd.envs.shift import load_shift
from lwd.envs.suites import get_suite, get_task, held_out_instructions
from lwd.eval.metrics import EpisodeResult, average_success, summaries_to_json, summarize
from lwd.eval.report import bar_chart, markdown_table
from lwd.utils.errors import ConfigError, DataError, LwdError
from lwd.utils.io import atomic_write_json, atomic_write_text, read_json
from lwd.utils.logs import show_progress
from lwd.utils.seeding import eval_seed


def _instruction_sets(cfg: EvalConfig, task_ids: list[str]) -> dict[str, list[str]]:
    if cfg.instructions == "train":
        return {t: list(get_task(cfg.suite, t).instructions) for t in task_ids}
    if cfg.instructions == "held_out":
        return {t: list(held_out_instructions(cfg.suite, t)) for t in task_ids}
    path = Path(cfg.instructions)
    if not path.is_file():
        raise ConfigError(
            f"--instructions {cfg.instructions!r} is not train, held_out or an existing JSON file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object {{task_id: [instruction, ...]}}")
    out = {}
    for t in task_ids:
        items = data.get(t)
        if not items or not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
            raise ConfigError(f"{path}: task {t!r} needs a non-empty list of instruction strings")
        out[t] = items
    return out


def _check_checkpoint(cfg: EvalConfig, task_ids: list[str]) -> tuple[str, dict]:
    """Verify the checkpoint (checksums, format) and that it was trained for these tasks."""
    from lwd.policy.checkpoint import load_policy

    if cfg.checkpoint is None:
        raise ConfigError("give --checkpoint PATH (a policy directory) or --expert")
    _, _, manifest = load_policy(cfg.checkpoint)
    trained = manifest.get("extra", {}).get("task_ids")
    if trained is not None:
        missing = [t for t in task_ids if t not in trained]
        if missing:
            raise DataError(
                f"checkpoint {cfg.checkpoint} was trained on tasks {trained}, not on {missing}; "
                "evaluate it on its own suite or pass --tasks"
            )
    obs_mode = "pixels" if manifest["config"].get("cameras") else "state"
    return obs_mode, manifest


def plan_episodes(cfg: EvalConfig, task_ids: list[str]) -> list[tuple[str, str, int]]:
    """(task, instruction, seed) of every evaluation episode; instructions cycle per task."""
    suite_ids = get_suite(cfg.suite).task_ids
    instr = _instruction_sets(cfg, task_ids)
    plan = []
    for run_seed in cfg.seeds:
        for t in task_ids:
            ti = suite_ids.index(t)
            for j in range(cfg.episodes_per_task):
                plan.append((t, instr[t][j % len(instr[t])], eval_seed(run_seed, ti, j)))
    return plan


def evaluate(cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Run the evaluation described by ``cfg``; returns the results dict also saved to ``out``."""
    if cfg.episodes_per_task < 1 or cfg.workers < 1 or not cfg.seeds:
        raise ConfigError("--episodes-per-task and --workers must be >= 1 and --seeds non-empty")
    if any(s < 0 or s >= 1000 for s in cfg.seeds):
        raise ConfigError("evaluation --seeds must be in [0, 1000)")
    suite = get_suite(cfg.suite)
    task_ids = list(cfg.tasks or suite.task_ids)
    for t in task_ids:
        get_task(cfg.suite, t)
    load_shift(cfg.shift)
    if cfg.expert:
        obs_mode, manifest, name = cfg.obs_mode, {}, cfg.name or "expert"
    else:
        obs_mode, manifest = _check_checkpoint(cfg, task_ids)
        name = cfg.name or Path(cfg.checkpoint).name
    plan = plan_episodes(cfg, task_ids)
    cfg.out.mkdir(parents=True, exist_ok=True)
    episodes_path = cfg.out / "episodes.jsonl"
    episodes_path.unlink(missing_ok=True)
    t0 = time.monotonic()
    results = _run_workers(cfg, obs_mode, plan, progress)
    summaries = summarize(results)
    out = {
        "name": name,
        "suite": cfg.suite,
        "shift": cfg.shift,
        "instructions": cfg.instructions,
        "checkpoint": None if cfg.expert else str(cfg.checkpoint),
        "policy_version": manifest.get("version"),
        "seeds": list(cfg.seeds),
        "episodes_per_task_per_seed": cfg.episodes_per_task,
        "wall_time_s": time.monotonic() - t0,
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        **summaries_to_json(summaries),
    }
    atomic_write_text(episodes_path, "".join(json.dumps(asdict(r)) + "\n" for r in results))
    atomic_write_json(cfg.out / "results.json", out)
    note = f"{len(cfg.seeds)} seed set(s) x {cfg.episodes_per_task} episodes per task, condition {cfg.shift}."
    atomic_write_text(cfg.out / "table.md", markdown_table({name: summaries}, episodes_note=note))
    bar_chart({name: summaries}, cfg.out / "bars.png", title=f"{name} on {cfg.suite} ({cfg.shift})")
    if progress:
        print(markdown_table({name: summaries}, episodes_note=note))
        print(f"average success {average_success(summaries):.3f}; results in {cfg.out}")
    return out


def _run_workers(cfg: EvalConfig, obs_mode: str, plan: list, progress: bool) -> list[EpisodeResult]:
    n = min(cfg.workers, len(plan))
    shards = [plan[i::n] for i in range(n)]
    procs, outs, errs = [], [], []
    tmp = cfg.out / ".workers"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        for i, shard in enumerate(shards):
            job = {
                "suite": cfg.suite,
                "obs_mode": obs_mode,
                "shift": cfg.shift,
                "checkpoint": None if cfg.expert else str(cfg.checkpoint),
                "noise": cfg.noise,
                "robot_id": f"eval-{i}",
                "episodes": shard,
                "out": str(tmp / f"worker-{i}.jsonl"),
            }
            Path(job["out"]).unlink(missing_ok=True)
            job_path = tmp / f"job-{i}.json"
            atomic_write_json(job_path, job)
            outs.append(Path(job["out"]))
            errs.append(tmp / f"worker-{i}.err")
            with open(errs[-1], "w") as err_file:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "lwd.eval.worker", str(job_path)],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=err_file,
                    )
                )
        bar = tqdm(total=len(plan), unit="ep", desc="eval", disable=not show_progress(progress))
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
            bar.n = sum(_count_lines(o) for o in outs)
            bar.refresh()
        bar.n = sum(_count_lines(o) for o in outs)
        bar.close()
        for p, e in zip(procs, errs):
            err = e.read_text(encoding="utf-8", errors="replace")
            if p.returncode != 0:
                last = err.strip().splitlines()[-1] if err.strip() else f"exit code {p.returncode}"
                raise LwdError(f"evaluation worker failed: {last}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = []
    for o in outs:
        for line in o.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            results.append(
                EpisodeResult(r["task_id"], r["seed"], r["success"], r["length"], r["wall_time_s"],
                              r["interventions"], r.get("substep"))  # fmt: skip
            )
    if len(results) != len(plan):
        raise LwdError(f"evaluation incomplete: {len(results)} of {len(plan)} episodes reported")
    order = {(t, s): i for i, (t, _, s) in enumerate(plan)}
    return sorted(results, key=lambda r: order[(r.task_id, r.seed)])


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def load_results(path: str | os.PathLike) -> dict:
    return read_json(Path(path) / "results.json")


def pooled_summaries(eval_dirs: list[str | os.PathLike]) -> dict:
    """Per-task summaries of the episodes of several evaluation directories pooled together
    (e.g. one evaluation per training seed)."""
    eps = []
    for d in eval_dirs:
        for line in (Path(d) / "episodes.jsonl").read_text().splitlines():
            eps.append(EpisodeResult(**json.loads(line)))
    return summarize(eps)


def paired_comparison(dir_a: str | os.PathLike, dir_b: str | os.PathLike) -> dict:
    """Policy A vs B on the episodes both evaluations ran (same task and evaluation seed).

    Returns ``episodes`` (paired), ``success_a`` / ``success_b`` on them, ``a_only`` / ``b_only``
    (discordant episodes) and ``p_value`` (exact two-sided McNemar, :func:`lwd.eval.stats.mcnemar_exact`).
    Where episodes carry sub-step scores (chained tasks): ``substep_episodes``, ``substep_a`` /
    ``substep_b`` (means on the paired ones) and ``substep_p_value`` (two-sided Wilcoxon signed-rank
    test of the paired differences, :func:`lwd.eval.stats.paired_signed_rank`).
    """
    from lwd.eval.stats import mcnemar_exact, paired_signed_rank

    def outcomes(d) -> dict:
        path = Path(d) / "episodes.jsonl"
        if not path.is_file():
            raise DataError(f"{d}: no episodes.jsonl (not an evaluation directory)")
        out = {}
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out[(r["task_id"], int(r["seed"]))] = (bool(r["success"]), r.get("substep"))
        return out

    a, b = outcomes(dir_a), outcomes(dir_b)
    keys = sorted(a.keys() & b.keys())
    if not keys:
        raise DataError(f"{dir_a} and {dir_b} share no episodes (different tasks or seeds)")
    a_only = sum(a[k][0] and not b[k][0] for k in keys)
    b_only = sum(b[k][0] and not a[k][0] for k in keys)
    out = {
        "episodes": len(keys),
        "success_a": sum(a[k][0] for k in keys) / len(keys),
        "success_b": sum(b[k][0] for k in keys) / len(keys),
        "a_only": a_only,
        "b_only": b_only,
        "p_value": mcnemar_exact(a_only, b_only),
    }
    staged = [k for k in keys if a[k][1] is not None and b[k][1] is not None]
    if staged:
        sa, sb = [a[k][1] for k in staged], [b[k][1] for k in staged]
        out.update(substep_episodes=len(staged), substep_a=sum(sa) / len(sa), substep_b=sum(sb) / len(sb),
                   substep_p_value=paired_signed_rank(sa, sb))  # fmt: skip
    return out
