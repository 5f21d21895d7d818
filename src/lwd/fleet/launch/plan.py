"""What a fleet run consists of, independent of where it runs: data plane, registry, and the JSON
config of every component (coordinator, learner, robot clients), written under
``<online_dir>/configs`` (no pickle). Both launchers (:mod:`~lwd.fleet.launch.local` subprocesses,
:mod:`~lwd.fleet.launch.ray` actors) start exactly these components from exactly these configs.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwd.configs.online import OnlineConfig
from lwd.configs.processes import CoordinatorConfig, LearnerConfig, RobotClientConfig, process_config
from lwd.configs.strict import to_json_dict
from lwd.data.dataset import LwdDataset
from lwd.envs.suites import get_suite, suite_definition
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.robot.client import task_weights_for
from lwd.utils.errors import LwdError
from lwd.utils.io import atomic_write_json

MODULES = {
    "coordinator": "lwd.fleet.coordinator",
    "learner": "lwd.fleet.learner",
    "robot": "lwd.fleet.robot",
}
"""Entry module (``python -m ...``) of each component kind."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One component of the fleet and its resolved configuration."""

    name: str
    """``coordinator``, ``learner`` or ``client-<i>``."""
    kind: str
    """``coordinator``, ``learner`` or ``robot`` (a robot-client process hosting several robots)."""
    config: RobotClientConfig | LearnerConfig | CoordinatorConfig
    """Its typed configuration (written as JSON to :attr:`config_path`)."""
    config_path: Path
    log_path: Path

    @property
    def module(self) -> str:
        return MODULES[self.kind]

    def argv(self) -> list[str]:
        """Command-line arguments of ``python -m <module>``: its config file."""
        return ["--config", str(self.config_path)]


def dataplane_config(spec: str, fleet_root: Path, lease_s: float) -> dict[str, Any]:
    """The run's data plane as a config dict: embedded under ``fleet_root`` (``""``), a Redis event
    log with the store under ``fleet_root`` (``redis://...``), or a data-plane JSON file / root."""
    base = DataPlaneConfig.local(fleet_root, lease_s=lease_s).to_dict()
    if spec.startswith(("redis://", "rediss://")):
        base["events"] = spec
    elif spec:
        base = open_dataplane(spec).config.to_dict()
    return base


class FleetPlan:
    """The components of one fleet run under ``online_dir`` (see module docstring)."""

    def __init__(self, cfg: OnlineConfig, online_dir: Path, offline_dataset: Path, init: Path) -> None:
        self.cfg = cfg
        self.dir = Path(online_dir).resolve()  # absolute: components may run in other directories
        self.fleet_root = self.dir / "fleet"
        self.learner_dir = self.dir / "learner"
        reg = cfg.registry
        self.registry = (
            reg if "://" in reg else str(Path(reg).resolve()) if reg else str(self.fleet_root / "registry")
        )
        self.dataplane = dataplane_config(cfg.dataplane, self.fleet_root.resolve(), cfg.lease_s)
        self.components: list[Component] = []
        self._write(Path(offline_dataset), Path(init))

    def _add(self, name: str, kind: str, config: RobotClientConfig | LearnerConfig | CoordinatorConfig) -> None:
        config = process_config(kind, config, f"{name} config")  # a launcher never writes a bad config
        path = self.dir / "configs" / f"{name}.json"
        atomic_write_json(path, to_json_dict(config))
        self.components.append(Component(name, kind, config, path, self.dir / "logs" / f"{name}.log"))

    def _validation_rules(self, offline_dataset: Path, tasks: dict[str, float]) -> dict[str, Any]:
        """The coordinator's production rules (docs/dataplane.md): the robots' state/action dims (from
        the offline dataset's robot spec; left unchecked if there is no dataset yet, in which case the
        learner refuses to start anyway), the longest task's step limit, published versions only."""
        rules: dict[str, Any] = {"check_versions": True}
        suite = get_suite(self.cfg.suite)
        rules["max_steps"] = max(suite.task(t).max_steps for t in tasks)
        try:
            spec = LwdDataset.open(offline_dataset, verify_checksums=False).robot_spec
        except LwdError:
            return rules
        return {**rules, "state_dim": spec.state_dim, "action_dim": spec.action_dim}

    def _write(self, offline_dataset: Path, init: Path) -> None:
        c, conf = self.cfg, self.dir / "configs"
        canary = c.rollout.enabled and c.num_robots >= 2
        if c.rollout.enabled and not canary:
            log.warning("canary rollout needs >= 2 robots (a canary never runs on the whole fleet): this "
                        "%d-robot fleet gets every published version directly", c.num_robots)  # fmt: skip
        rollout = dataclasses.replace(c.rollout, enabled=canary)
        self.fleet_root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(conf / "dataplane.json", self.dataplane)
        atomic_write_json(conf / "online.json", c.to_dict())
        weights = task_weights_for(c.suite, c.tasks, c.short_task_weight, c.long_task_weight)
        rules = self._validation_rules(offline_dataset, weights)
        self._add("coordinator", "coordinator", CoordinatorConfig(
            root=str(self.fleet_root), dataplane=self.dataplane, tasks=tuple(sorted(weights)), lease_s=c.lease_s,
            registry=self.registry, registry_index=c.registry_index, rollout=rollout, **rules,
        ))  # fmt: skip
        self._add("learner", "learner", LearnerConfig(
            learner_dir=str(self.learner_dir), init=str(init), offline_dataset=str(offline_dataset),
            dataplane=self.dataplane, registry=self.registry, registry_index=c.registry_index,
            lease_s=c.lease_s, settings=c.learner, max_learner_steps=c.budget.max_learner_steps,
            canary_mode=canary,
        ))  # fmt: skip
        intervene = c.intervene and scripted_expert(c.suite)
        k = max(1, min(c.robot_processes, c.num_robots))
        for i in range(k):
            idx = tuple(range(i, c.num_robots, k))
            self._add(f"client-{i}", "robot", RobotClientConfig(
                client_id=f"client-{i}", fleet_root=str(self.fleet_root), dataplane=self.dataplane,
                registry=self.registry, registry_index=c.registry_index, suite=_portable_suite(c.suite),
                obs_mode=c.obs_mode, shift=c.shift,
                robot_ids=tuple(f"robot-{j:03d}" for j in idx), robot_indices=idx, task_weights=weights,
                intervene=intervene, intervention=c.intervention,
                outbox_root=str(self.dir / "outbox"), status_path=str(self.dir / "robots" / f"client-{i}.json"),
                heartbeat_s=c.heartbeat_s, lease_s=c.lease_s, seed=c.seed, threads=1,
                cache_dir=str(self.dir / "cache" / f"client-{i}"),
            ))  # fmt: skip


def scripted_expert(suite: str) -> bool:
    """Whether the robots of ``suite`` are a shipped simulator with the scripted expert that the
    robot clients' intervener needs. A suite file's ``robot_factory`` (a gymnasium env, a real robot)
    has none: its robots run without interventions (a warning if ``intervene`` asked for them)."""
    factory = suite_definition(suite).robot_factory
    if factory:
        log.warning("suite %s builds its robots with %s: no scripted expert, so the fleet records no "
                    "interventions", suite, factory)  # fmt: skip
    return not factory


def _portable_suite(suite: str) -> str:
    """A suite given as a relative file path, made absolute: components may run in other directories."""
    path = Path(suite)
    return str(path.resolve()) if suite.endswith(".json") and path.is_file() else suite
