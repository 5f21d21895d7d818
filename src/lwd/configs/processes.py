"""Typed configs of the fleet processes: robot client, learner, coordinator.

Each process reads one JSON file (``python -m lwd.fleet.robot | learner | coordinator --config
FILE``) into one of these frozen dataclasses with :func:`lwd.configs.strict.from_json_file`: unknown
keys (a typo), missing keys and wrong types are one-line errors before anything starts. The
launchers (:mod:`lwd.fleet.launch.plan`) build these objects and write them with
:func:`lwd.configs.strict.to_json_dict`; a robot on its own computer gets the same file by hand
(docs/multi_machine.md). All values are chosen (engineering settings), none is a paper value; the
learning settings the paper fixes live in :class:`~lwd.configs.online.LearnerSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lwd.configs.checks import Checks
from lwd.configs.online import LearnerSettings, RolloutSettings
from lwd.envs.intervention import InterventionConfig
from lwd.utils.errors import ConfigError

DataPlaneSpec = dict[str, Any] | str
"""A data plane: a :class:`~lwd.fleet.dataplane.DataPlaneConfig` as a JSON object, or a data-plane
JSON file / embedded fleet root path (``lwd.fleet.dataplane.open_dataplane`` accepts both)."""


@dataclass(frozen=True)
class RobotClientConfig:
    """One robot-client process hosting one or more robots (``python -m lwd.fleet.robot``)."""

    client_id: str
    """Name of this process in heartbeats and status files (e.g. ``client-0``)."""
    dataplane: DataPlaneSpec
    """Where episodes go and heartbeats are sent (see :data:`DataPlaneSpec`)."""
    registry: str
    """Policy registry root (path or fsspec URL) the robots load versions from."""
    status_path: str
    """JSON file this client rewrites with its robots' status (read by the launcher and ``lwd status``)."""
    suite: str
    """Task suite name or suite JSON file (the robots' tasks)."""
    robot_ids: tuple[str, ...]
    """Ids of the robots this process hosts (e.g. ``robot-003``), unique across the fleet."""
    robot_indices: tuple[int, ...]
    """Fleet index of each robot (same length as ``robot_ids``): seeds its episodes."""
    task_weights: dict[str, float]
    """Allocation weight per task id for the balanced task claim (positive weights are claimable)."""
    outbox_root: str
    """Directory of the robots' durable outboxes (``<outbox_root>/<robot_id>``)."""
    registry_index: str = ""
    """Registry index URL of a remote registry (``redis://...``); ``""``: the index next to the registry."""
    fleet_root: str = ""
    """Fleet root (its ``coordinator.db`` holds the task claims); ``""`` with a Redis data plane."""
    claims: str = ""
    """Task-claims URL; ``""``: chosen from the data plane (Redis event log -> Redis, else the fleet root)."""
    obs_mode: str = "state"
    """Simulated robots' observations: ``state`` or ``pixels``."""
    shift: str = "field"
    """Simulated robots' deployment condition (``lab``, ``field``, ``field2`` or a shift JSON file)."""
    intervene: bool = True
    """Whether the scripted expert (the human's stand-in) may take over simulated robots."""
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    """Trigger rules and limits of the scripted expert's take-overs."""
    robot_factory: str = ""
    """``package.module:callable`` building a real (or your own) robot; ``""``: the suite's simulator."""
    robot_options: dict[str, Any] = field(default_factory=dict)
    """Keyword ``options`` passed to ``robot_factory``."""
    intervener_factory: str = ""
    """``package.module:callable`` building the human's intervener for a ``robot_factory`` robot."""
    intervener_options: dict[str, Any] = field(default_factory=dict)
    """Keyword ``options`` passed to ``intervener_factory``."""
    heartbeat_s: float = 5.0
    """Seconds between heartbeats through the event log (0: at every chance, for tests)."""
    lease_s: float = 30.0
    """Event-log lease, seconds (redelivery of unacknowledged events)."""
    seed: int = 0
    """Run seed (episode seeds derive from it, the robot index and the episode index)."""
    threads: int = 1
    """Torch threads of this process (robots: 1, so many clients share the cores)."""
    cache_dir: str = ""
    """Where fetched policy versions are kept; ``""``: a new temporary directory."""
    max_episodes: int | None = None
    """Stop each robot after this many episodes (``None``: run until stopped)."""
    flush_timeout_s: float = 30.0
    """Seconds to wait at exit for the outboxes to drain to the data plane."""

    def validate(self, prefix: str = "robot-client config: ") -> None:
        """``ConfigError`` for a bad value; ``prefix`` starts each message (a file name, or ``--``)."""
        c = Checks(self, prefix)
        c.seconds("lease_s", "flush_timeout_s").non_negative("heartbeat_s").integer("threads", 1)
        c.optional_integer("max_episodes", 1).one_of("obs_mode", ("state", "pixels"))
        if not self.robot_ids:
            raise ConfigError(f"{prefix}robot_ids is empty")
        if len(self.robot_ids) != len(self.robot_indices):
            raise ConfigError(f"{prefix}robot_ids and robot_indices differ in length "
                              f"({len(self.robot_ids)} vs {len(self.robot_indices)})")  # fmt: skip
        if len(set(self.robot_ids)) != len(self.robot_ids):
            raise ConfigError(f"{prefix}robot_ids repeat a robot")
        if not any(w > 0 for w in self.task_weights.values()):
            raise ConfigError(f"{prefix}task_weights has no task with a positive weight")
        if (self.intervener_factory or self.intervener_options) and not self.robot_factory:
            raise ConfigError(f"{prefix}intervener_factory / intervener_options need a robot_factory")
        if self.robot_options and not self.robot_factory:
            raise ConfigError(f"{prefix}robot_options need a robot_factory")


@dataclass(frozen=True)
class LearnerConfig:
    """The learner process (``python -m lwd.fleet.learner``)."""

    learner_dir: str
    """The learner's directory: checkpoints, metrics, status and per-version files."""
    init: str
    """Where learning starts: an offline stage directory or a policy checkpoint directory."""
    offline_dataset: str
    """The offline dataset (lwd format) mixed into every batch."""
    dataplane: DataPlaneSpec
    """Where committed snapshots are read from (see :data:`DataPlaneSpec`)."""
    registry: str
    """Policy registry root (path or fsspec URL) the learner publishes to."""
    registry_index: str = ""
    """Registry index URL of a remote registry; ``""``: the index next to the registry."""
    settings: LearnerSettings = field(default_factory=LearnerSettings)
    """The learning settings (algorithm, batch mix, schedules, publish cadence, device, threads)."""
    max_learner_steps: int | None = None
    """Stop after this many learner steps (``None``: run until stopped)."""
    lease_s: float = 30.0
    """Event-log lease, seconds."""
    canary_mode: bool = False
    """Publish only, and let the coordinator's canary rollout deploy (true), or make every version the
    fleet default at once (false)."""

    def validate(self, prefix: str = "learner config: ") -> None:
        """``ConfigError`` for a bad value; ``prefix`` starts each message."""
        Checks(self, prefix).seconds("lease_s").optional_integer("max_learner_steps", 0)
        self.settings.validate(f"{prefix}settings.")


@dataclass(frozen=True)
class CoordinatorConfig:
    """The coordinator process (``python -m lwd.fleet.coordinator``)."""

    root: str
    """Fleet root: ``coordinator.db`` (snapshots, outcomes, task claims) and the embedded data plane."""
    dataplane: DataPlaneSpec = ""
    """The data plane (see :data:`DataPlaneSpec`); ``""``: the embedded one under ``root``."""
    events: str = ""
    """Event-log URL overriding the data plane's (e.g. ``redis://127.0.0.1:6379/0``); ``""``: none."""
    tasks: tuple[str, ...] = ()
    """Known task ids; episodes of other tasks are quarantined (empty: any task)."""
    lease_s: float = 30.0
    """Event-log lease, seconds."""
    batch: int = 256
    """Events read per coordinator step."""
    leader_lease_s: float = 10.0
    """Leader lease, seconds: a standby coordinator takes over this long after the leader died."""
    registry: str = ""
    """Policy registry root; ``""``: ``<root>/registry``."""
    registry_index: str = ""
    """Registry index URL of a remote registry; ``""``: the index next to the registry."""
    rollout: RolloutSettings | None = None
    """Canary rollout settings (docs/safety.md); ``None`` or ``enabled`` false: no rollout manager."""
    state_dim: int | None = None
    """Quarantine episodes whose state vector is not this long (``None``: unchecked)."""
    action_dim: int | None = None
    """Quarantine episodes whose actions are not this long (``None``: unchecked)."""
    max_steps: int | None = None
    """Quarantine episodes longer than this many control steps (``None``: unchecked)."""
    check_versions: bool = False
    """Quarantine episodes of a policy version the registry never published."""

    def validate(self, prefix: str = "coordinator config: ") -> None:
        """``ConfigError`` for a bad value; ``prefix`` starts each message (``--`` for the flags)."""
        c = Checks(self, prefix).seconds("lease_s", "leader_lease_s").integer("batch", 1)
        for name in ("state_dim", "action_dim", "max_steps"):
            c.optional_integer(name, 1)
        if self.rollout is not None:
            self.rollout.validate(f"{prefix}rollout.")


PROCESS_CONFIGS: dict[str, type] = {
    "robot": RobotClientConfig,
    "learner": LearnerConfig,
    "coordinator": CoordinatorConfig,
}
"""The config class of each fleet process kind."""


def process_config(kind: str, data: Any, what: str | None = None, prefix: str | None = None) -> Any:
    """The validated config of a ``kind`` process from a JSON object (or the config itself). Errors
    name ``what`` (default ``<kind> config``); value errors start with ``prefix`` (default ``what: ``,
    ``--`` when the values came from command-line flags)."""
    from lwd.configs.strict import from_mapping

    cls = PROCESS_CONFIGS[kind]
    what = what or f"{kind} config"
    cfg = data if isinstance(data, cls) else from_mapping(cls, data, what)
    cfg.validate(f"{what}: " if prefix is None else prefix)
    return cfg


def load_process_config(kind: str, path: str) -> Any:
    """The validated config of a ``kind`` process from the JSON file ``path``."""
    from lwd.configs.checks import load_json_object

    what = f"{kind} config {path}"
    return process_config(kind, load_json_object(path, f"{kind} config"), what)


def process_config_from_argv(kind: str, argv: list[str] | None, description: str | None, check=None) -> Any:
    """The entry point of a ``kind`` process: ``--config FILE`` parsed, the config read strictly and
    ``check(cfg)`` run (e.g. the robot factories importable); any problem is one line ``error: ...``,
    exit 2, before the process does anything. Sets up warning-level logging."""
    import logging

    from lwd.configs.checks import OneLineParser, fail
    from lwd.utils.errors import LwdError

    p = OneLineParser(description=description)
    p.add_argument("--config", required=True, help=f"{kind} config JSON file ({PROCESS_CONFIGS[kind].__name__})")
    path = p.parse_args(argv).config
    try:
        cfg = load_process_config(kind, path)
        if check is not None:
            check(cfg)
    except LwdError as e:
        fail(str(e))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return cfg


def stop_on_signals(event) -> None:
    """SIGTERM and SIGINT set ``event`` (a ``threading.Event``): the process finishes its current
    unit of work (an episode, a learner step), flushes, checkpoints and exits cleanly."""
    import signal

    def on_signal(signum, frame):
        event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
