"""``lwd collect``: generate the offline buffer (demos, rollouts, play) in the lab condition.

Episodes are a deterministic function of (config seed, task, slot, index): each gets its own
environment seed from a range disjoint from evaluation seeds and a deterministic episode id, so an
interrupted collection resumed with ``--resume`` produces exactly the dataset an uninterrupted one
would. Slots:

- ``demo``: the scripted expert with small noise (source ``demo``).
- ``rollout``: the expert with heavy noise and random bursts, standing in for historical policy
  rollouts; outcomes fill separate success and failure quotas (source ``rollout``).
- ``play``: perturbed exploration aimed at displaced goals (source ``play``, always a failure; an
  attempt that happens to succeed is discarded and the next seed tried).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from tqdm import tqdm

from lwd.configs.collect import CollectConfig
from lwd.data import DatasetWriter, LwdDataset
from lwd.envs.episode_loop import run_episode
from lwd.envs.experts import expert_policy
from lwd.envs.suites import get_suite, get_task, make_robot
from lwd.types import Episode, TaskSpec
from lwd.utils.logs import show_progress
from lwd.utils.seeding import COLLECT_SEED_BASE

log = logging.getLogger(__name__)

_ID_NAMESPACE = uuid.UUID("6c1f3f3e-9a51-4d2b-8f0e-2b7d3c4e5a61")
SLOTS = ("demo", "rollout", "play")


@dataclass(frozen=True)
class CollectSummary:
    out: str
    episodes: int
    new_episodes: int
    frames: int
    seconds: float
    per_task: dict[str, dict[str, int]]
    """task -> counts by ``demo``, ``rollout_success``, ``rollout_failure``, ``play``."""
    unfilled: dict[str, dict[str, int]]
    """task -> quota shortfall (rollout outcomes are random; reported, never hidden)."""


def validate_config(cfg: CollectConfig) -> list[TaskSpec]:
    """Check the whole config before anything is written (:meth:`CollectConfig.validate`); return the
    tasks to collect."""
    cfg.validate()
    return [get_task(cfg.suite, t) for t in cfg.tasks or get_suite(cfg.suite).task_ids]


def episode_seed(cfg_seed: int, task_index: int, slot: str, j: int) -> int:
    """Environment seed of attempt ``j`` of ``slot`` for task ``task_index`` (< 1e9: never an eval seed)."""
    return COLLECT_SEED_BASE + cfg_seed * 1_000_000 + task_index * 60_000 + SLOTS.index(slot) * 20_000 + j


def episode_id(suite: str, task_id: str, seed: int) -> str:
    return uuid.uuid5(_ID_NAMESPACE, f"{suite}/{task_id}/{seed}").hex


def _attempts(cfg: CollectConfig, task_index: int, slot: str, slots: int) -> Iterator[tuple[int, int]]:
    limit = slots if slot == "demo" else slots * cfg.max_rollout_attempts
    for j in range(min(limit, 20_000)):
        yield j, episode_seed(cfg.seed, task_index, slot, j)


def collect(cfg: CollectConfig, *, progress: bool = True) -> CollectSummary:
    """Collect (or resume collecting) the offline dataset described by ``cfg``."""
    tasks = validate_config(cfg)
    suite_tasks = get_suite(cfg.suite).task_ids
    robot = make_robot(cfg.suite, cfg.obs_mode, cfg.shift)
    committed: dict[tuple[str, int], bool] = {}
    if cfg.resume and (cfg.out / "meta" / "info.json").is_file():
        for r in LwdDataset.open(cfg.out, verify_checksums=False).episode_records:
            committed[(r["task_id"], int(r["seed"]))] = bool(r["success"])
    quotas = cfg.quotas()
    t0 = time.monotonic()
    per_task: dict[str, dict[str, int]] = {}
    unfilled: dict[str, dict[str, int]] = {}
    new = 0
    writer = DatasetWriter(
        cfg.out, robot.spec, robot.spec.control_hz, resume=cfg.resume, episodes_per_file=cfg.episodes_per_file
    )
    bar = tqdm(
        total=len(tasks) * cfg.episodes_per_task,
        unit="ep",
        disable=not show_progress(progress),
        desc="collect",
        smoothing=0.1,
    )
    try:
        for task in tasks:
            ti = suite_tasks.index(task.task_id)
            counts = {"demo": 0, "rollout_success": 0, "rollout_failure": 0, "play": 0}
            for slot in SLOTS:
                if slot == "rollout":
                    need = {
                        "rollout_success": quotas["rollout_success"],
                        "rollout_failure": quotas["rollout_failure"],
                    }
                else:
                    need = {slot: quotas[slot]}
                slots = sum(need.values())
                if slots == 0:
                    continue
                for j, seed in _attempts(cfg, ti, slot, slots):
                    if all(counts[k] >= need[k] for k in need):
                        break
                    key = (task.task_id, seed)
                    if key in committed:
                        ok = committed[key]
                    else:
                        ep = _run_one(cfg, robot, task, slot, j, seed)
                        if ep is None:  # a play attempt that succeeded: not failure data
                            continue
                        ok = ep.success
                        label = _label(slot, ok)
                        if counts[label] >= need[label]:
                            continue  # that outcome's quota is full; try the next seed
                        new += writer.add(ep)
                    counts[_label(slot, ok)] += 1
                    bar.update(1)
                    bar.set_postfix_str(f"{task.task_id} {slot}")
            per_task[task.task_id] = counts
            short = {k: quotas[k] - v for k, v in counts.items() if v < quotas[k]}
            if short:
                unfilled[task.task_id] = short
                log.warning("task %s: could not fill quotas %s within the attempt limit", task.task_id, short)
        writer.flush()
    finally:
        writer.close()
        bar.close()
    ds = LwdDataset.open(cfg.out, verify_checksums=False)
    return CollectSummary(
        out=str(cfg.out),
        episodes=len(ds),
        new_episodes=new,
        frames=ds.num_frames,
        seconds=time.monotonic() - t0,
        per_task=per_task,
        unfilled=unfilled,
    )


def _label(slot: str, success: bool) -> str:
    if slot == "rollout":
        return "rollout_success" if success else "rollout_failure"
    return slot


def _run_one(cfg: CollectConfig, robot, task: TaskSpec, slot: str, j: int, seed: int) -> Episode | None:
    act = expert_policy(robot, task.task_id, noise=slot, seed=seed)
    instruction = task.instructions[j % len(task.instructions)]
    ep = run_episode(
        robot,
        act,
        task,
        instruction,
        seed,
        robot_id="lab-collector",
        policy_version=0,
        source=slot,
        episode_id=episode_id(cfg.suite, task.task_id, seed),
    )
    if slot == "play" and ep.source != "play":
        return None
    return ep
