"""Online stage of ``lwd run``: learning while deploying on a fleet.

``run_online(cfg, run_dir, offline_dataset, init)`` launches coordinator, learner and robot clients
-- local processes (:mod:`lwd.fleet.launch.local`, ``cfg.engine == "local"``) or Ray actors on a
cluster (:mod:`lwd.fleet.launch.ray`, ``"ray"``) --, supervises them until the budget, and returns a
summary.
Layout under ``run_dir/online``::

    configs/        resolved JSON configs of every process
    fleet/          data plane (events.db, store/), coordinator.db, registry/ (policy versions)
    learner/        checkpoints/, metrics.jsonl, tb/, versions.json, status.json
    outbox/<robot>  robot outboxes;   robots/client-*.json  robot status (episodes, steps, version)
    logs/           one log per process
    policy/         the newest published version as a normal policy checkpoint (``lwd eval``-able)
    summary.json    the returned summary

Running again resumes (learner checkpoint, registry, coordinator state, outboxes). ``lwd status``:
``lwd.fleet.ops.status.status(run_dir / "online" / "fleet")``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from lwd.algorithms.registry import ONLINE_ALGORITHMS
from lwd.configs.online import OnlineConfig
from lwd.data import LwdDataset
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.launch.local import LocalFleet
from lwd.fleet.launch.supervisor import ROBOTS_GAVE_UP, FleetSupervisor
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import materialize_version
from lwd.utils.device import check_device_spec, resolve_device
from lwd.utils.errors import ConfigError, LwdError
from lwd.utils.io import atomic_write_json, read_json
from lwd.utils.metric_means import percentiles


def export_policy(registry: PolicyRegistry, version: int, target: Path) -> Path:
    """Copy a verified registry version to ``target`` (replacing an older export atomically)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    materialize_version(registry, version, tmp)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def make_fleet(cfg: OnlineConfig, online_dir: Path, offline_dataset: Path, init: Path,
               control_hz: float) -> FleetSupervisor:  # fmt: skip
    """The launcher ``cfg.engine`` names, with the run's components planned under ``online_dir``."""
    if cfg.engine == "local":
        return LocalFleet(cfg, online_dir, offline_dataset, init, control_hz)
    if cfg.engine != "ray":
        raise ConfigError(f"unknown engine {cfg.engine!r}; expected 'local' or 'ray'")
    try:
        from lwd.fleet.launch.ray import RayFleet
    except ImportError as e:
        raise ConfigError(f"engine 'ray' needs the ray package (pip install 'lwd[scale]'): {e}") from e
    return RayFleet(cfg, online_dir, offline_dataset, init, control_hz, address=cfg.ray_address)


def fleet_latency(fleet_root: Path, robots: dict[str, dict], learner: dict) -> dict[str, Any]:
    """End-to-end latencies: episode end -> committed in a snapshot (coordinator database, last 500
    episodes), episode end -> in the learner's replay buffer (learner status, last 500 ingested) and
    policy publish -> running on a robot, the episode-boundary wait included (robot status files,
    each member's last 50 loads)."""
    loads = [x for r in robots.values() for x in r.get("load_latency_s", [])]
    out = {"publish_to_loaded_s": percentiles(loads)}
    sampleable = (learner.get("latency") or {}).get("episode_to_sampleable_s")
    if isinstance(sampleable, dict):
        out["episode_to_sampleable_s"] = sampleable
    db = Path(fleet_root) / "coordinator.db"
    if db.is_file():
        st = CoordinatorState(db)
        try:
            out.update(st.status(robot_timeout_s=30.0).get("latency", {}))
        finally:
            st.close()
    return out


def summarize(fleet: FleetSupervisor, stop_reason: str) -> dict[str, Any]:
    registry = PolicyRegistry(fleet.registry, index=fleet.cfg.registry_index or None)
    versions = registry.versions()
    robots = fleet.robot_status()
    lst = fleet.learner_status()
    per_version = fleet.per_version()
    final = None
    if versions:
        final = str(export_policy(registry, versions[-1], fleet.dir / "policy"))
    return {
        "stop_reason": stop_reason,
        "final_policy": final,
        "final_version": versions[-1] if versions else None,
        "versions": versions,
        "learner_step": lst.get("step", 0),
        "robot_hours": fleet.robot_hours(robots),
        "control_hz": fleet.control_hz,
        "episodes": sum(r.get("episodes", 0) for r in robots.values()),
        "env_steps": sum(r.get("steps", 0) for r in robots.values()),
        "per_version": per_version,
        "latency": fleet_latency(fleet.fleet_root, robots, lst),
        "restarts": {c.name: c.restarts for c in fleet.children},
    }


def run_online(
    cfg: OnlineConfig,
    run_dir: str | os.PathLike,
    offline_dataset: str | os.PathLike,
    init_state_dir_or_policy: str | os.PathLike,
    *,
    display: bool | None = None,
) -> dict[str, Any]:
    """Run (or resume) the online fleet loop until ``cfg.budget``; returns the summary dict.

    ``init_state_dir_or_policy``: an offline LWD stage directory (its ``checkpoints/latest.json``
    full learner state) or a policy checkpoint directory (fresh critic and value).
    ``display``: live table (True), log lines (False), or auto (TTY).
    """
    if cfg.num_robots < 1 or cfg.robot_processes < 1:
        raise ConfigError("num_robots and robot_processes must be >= 1")
    if cfg.learner.algorithm not in ONLINE_ALGORITHMS:
        raise ConfigError(
            f"unknown learner algorithm {cfg.learner.algorithm!r}; valid: {', '.join(ONLINE_ALGORITHMS)}"
        )
    check_device_spec(cfg.learner.device)
    if cfg.engine == "local":
        resolve_device(cfg.learner.device)  # the learner process runs on this machine: fail here, not there
    b = cfg.budget
    if b.robot_hours is None and b.max_learner_steps is None and b.max_wall_s is None:
        raise ConfigError("the online budget needs robot_hours, max_learner_steps or max_wall_s")
    online = Path(run_dir) / "online"
    fps = LwdDataset.open(offline_dataset, verify_checksums=False).fps
    fleet = make_fleet(
        cfg, online, Path(offline_dataset).resolve(), Path(init_state_dir_or_policy).resolve(), fps
    )
    reason = fleet.run(display=display)
    if reason == ROBOTS_GAVE_UP:  # no summary: a re-run resumes the stage once the cause is fixed
        raise LwdError(f"every robot client crashed repeatedly and gave up; see {fleet.dir / 'logs'}")
    summary = summarize(fleet, reason)
    atomic_write_json(online / "summary.json", summary)
    return summary


def stop_online(run_dir: str | os.PathLike, ray_address: str | None = None) -> dict[str, Any]:
    """Stop the detached Ray fleet that ``run_dir`` started (``lwd run --engine ray --stop``).

    Reads the online config the fleet was started with (``online/configs/online.json``), attaches
    to the named actors of its namespace that are still alive (starts none), stops them in the usual
    order (robots flush, drain, learner publishes + checkpoints, coordinator) and removes them and
    the robots' placement group. ``ray_address``: the cluster (``None``: the one in that config).
    """
    online = Path(run_dir) / "online"
    conf = online / "configs"
    if not (conf / "online.json").is_file() or not (conf / "learner.json").is_file():
        raise ConfigError(f"no fleet was started under {online} (no configs/online.json there)")
    cfg = OnlineConfig.from_dict(read_json(conf / "online.json"))
    if ray_address is not None:
        cfg = dataclasses.replace(cfg, ray_address=ray_address)
    learner = read_json(conf / "learner.json")
    fps = LwdDataset.open(learner["offline_dataset"], verify_checksums=False).fps
    try:
        from lwd.fleet.launch.ray import RayFleet
    except ImportError as e:
        raise ConfigError(f"--stop needs the ray package (pip install 'lwd[scale]'): {e}") from e

    fleet = RayFleet(cfg, online, Path(learner["offline_dataset"]), Path(learner["init"]), fps,
                     address=cfg.ray_address, attach_only=True)  # fmt: skip
    try:
        fleet.start()
    finally:
        fleet.stop()
    return {
        "namespace": fleet.namespace,
        "stopped": [c.name for c in fleet.children if c.attached],
        "not_running": [c.name for c in fleet.children if not c.attached],
        "results": {c.name: c.last.get("result") for c in fleet.children if c.attached},
    }
