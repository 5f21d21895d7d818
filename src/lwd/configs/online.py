"""Configuration of the online stage (``lwd run``'s fleet loop): robots, learner, budget, data plane.

Paper setting (algorithms.md section 1): 16 robots on 8 tasks, 1 robot on each short task and 3 on
each long task (4 + 12), offline:online sampling 1:1, tau_base 0.9 online, n = 1, a new policy version
every 50 learner steps, loaded by robots only at episode boundaries. Our allocation generalises that
with per-kind task weights (short 1, long 3) fed to the coordinator's balanced allocator.

Configs hold no secrets; data-plane and registry locations are URLs or paths (``""`` = the embedded
default under the run directory).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from lwd.algorithms.registry import ONLINE_ALGORITHMS, RENAMED
from lwd.configs.checks import Checks, check_shift, check_tasks
from lwd.envs.intervention import InterventionConfig
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class LearnerSettings:
    """The online learner (``lwd.fleet.learner.service``)."""

    algorithm: str = "lwd"
    """A name of ``lwd.algorithms.registry.ONLINE_ALGORITHMS``: ``lwd`` (DIVL + QAM), its ablation
    ``lwd-const-tau`` (alpha = 0), or a baseline on the same data: ``iql-qam`` (scalar expectile value +
    QAM), ``hg-dagger`` (BC on demos + intervention segments), ``recap`` (advantage-conditioned BC)."""
    online_fraction: float = 0.5
    """Fraction of each batch drawn from the online buffer once warm (paper: 1:1 -> 0.5)."""
    imitation_online_fraction: float = 0.5
    """Share of online rows (the human's field corrections) in the imitation batch of the BC reference
    and HG-DAgger; the rest are offline demos (chosen: 0.5, as ``online_fraction``)."""
    tau_base: float = 0.9
    """DIVL base quantile level online, dimensionless (paper: 0.9)."""
    alpha: float = 0.3
    """DIVL entropy slope of tau, dimensionless (paper: 0.3)."""
    lam: float = 2.0
    """QAM temperature lambda (paper: 2)."""
    policy_lr: float = 2e-5
    """AdamW learning rate of the policy's action expert, constant online (paper: 2e-5)."""
    critic_lr: float = 5e-4
    """Adam learning rate of value and critic, constant online (paper: 5e-4)."""
    policy_every: int = 1
    """QAM-based algorithms (``lwd``, ``iql-qam``): the policy (QAM) step runs on every k-th learner
    step, value and critic on every step (chosen: 1). Budgets and ``publish_every`` count learner steps."""
    qam_batch: int = 0
    """QAM-based algorithms: rows of each batch the QAM step uses (0: the whole batch; chosen). The
    QAM cost knob: a QAM step costs ~3K action-expert passes per row."""
    qam_flow_steps: int = 10
    """QAM-based algorithms: K, flow steps of the QAM trajectory (paper default 10; acting keeps the
    policy's own K). Fewer steps make QAM cheaper and its schedule coarser."""
    contrast_weight: float = 0.0
    """QAM-based algorithms: weight of the take-over contrast loss in the critic step (the policy's
    rejected proposal ranked below the human's chunk at the same state; 0 = the paper's critic)."""
    contrast_margin: float = 0.05
    """Margin (Q units) of the take-over contrast (chosen)."""
    reference_contrast_weight: float = 0.0
    """QAM-based algorithms: weight of the reference contrast in the critic step (a pi_ref sample ranked
    below the human's chunk at the imitation batch's states; our addition, 0 = the paper's critic)."""
    reference_contrast_slope: float = 0.3
    """Reference contrast margin per unit of RMS action distance (Q units; chosen)."""
    reference: Literal["frozen", "bc"] = "frozen"
    """QAM-based algorithms: QAM's reference policy (algorithms.md 4.1). ``frozen`` = the stage's
    reference, never updated (the paper); ``bc`` = an EMA of a copy trained on every learner step by
    BC on demos + chunks that start on a human step (chosen; see the presets)."""
    reference_lr: float = 1e-4
    """AdamW learning rate of the BC-trained reference copy (``reference="bc"``; chosen)."""
    reference_ema: float = 0.05
    """EMA rate from the BC-trained copy to pi_ref per learner step (``reference="bc"``; chosen)."""
    reference_steps: int = 1
    """``reference bc``: BC steps of the reference copy per learner step, each on its own imitation
    batch and each followed by the EMA (chosen; see the presets)."""
    reference_successes: bool = False
    """``reference bc``: the reference also clones every step of the field episodes the policy solved
    with no human step (filtered BC on its own successes). Off in every preset: measured to hurt
    (docs/results.md, "Two robot-hours")."""
    track_reference: bool = False
    """``reference bc``: the policy follows every move of the reference (each EMA step's parameter
    change is added to the policy), so QAM's tilt rides on the moving reference and the acting
    policy's backbone (which QAM does not train) learns with it (chosen; see the presets)."""
    gamma: float = 0.995
    """Per-control-step discount (same as offline)."""
    n_step: int = 1
    """Chunks per TD target window; online n = 1 always (a window may span versions / human segments)."""
    publish_every: int = 50
    """Learner steps between published policy versions (paper: 50)."""
    checkpoint_every: int = 50
    """Learner steps between full-state checkpoints (also written at exit)."""
    utd: float = 0.5
    """Update-to-data bound: learner steps <= utd x online transitions collected (chosen)."""
    min_online_transitions: int = 1000
    """Warm-up: no learner step before the online buffer holds this many transitions (steps)."""
    batch_size: int = 256
    """Transitions per learner step (offline + online rows)."""
    log_every: int = 25
    """Learner steps between metric records (metrics.jsonl + TensorBoard)."""
    threads: int = 1
    """torch threads of the learner process (0 = all cores)."""
    device: str = "auto"
    """Torch device of the learner's networks and batches: ``auto`` (CUDA if this process sees a GPU,
    else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; an unavailable device is a ConfigError. Checkpoints
    and published versions hold CPU tensors whatever the device (``lwd.utils.device``)."""
    seed: int = 0
    """Seed of sampling and noise of the learner."""

    def validate(self, prefix: str = "--learner.") -> None:
        from lwd.utils.device import check_device_spec

        c = Checks(self, prefix)
        c.one_of("algorithm", ONLINE_ALGORITHMS, RENAMED).one_of("reference", ("frozen", "bc"))
        c.needs("track_reference", "reference", "bc").needs("reference_successes", "reference", "bc")
        c.fraction("online_fraction").fraction("imitation_online_fraction")
        c.fraction("tau_base", open_lo=True, open_hi=True)
        c.fraction("gamma", open_lo=True).fraction("reference_ema", open_lo=True)
        c.non_negative("alpha", "contrast_weight", "contrast_margin", "reference_contrast_weight",
                       "reference_contrast_slope")
        c.positive("lam", "policy_lr", "critic_lr", "reference_lr", "utd")
        for name in ("policy_every", "qam_flow_steps", "reference_steps", "n_step", "publish_every", "checkpoint_every",
                     "batch_size", "log_every"):  # fmt: skip
            c.integer(name, 1)
        c.integer("qam_batch", 0).integer("min_online_transitions", 0).integer("threads", 0)
        c.integer("seed", 0)
        try:
            check_device_spec(self.device)
        except ConfigError as e:
            raise ConfigError(f"{prefix}device: {e}") from e


@dataclass(frozen=True)
class RolloutSettings:
    """Canary rollout of new policy versions by the coordinator (``lwd.fleet.rollout.manager``, docs/safety.md)."""

    enabled: bool = True
    """Canary mode: a new version first runs on a canary share of robots and is promoted (made the
    fleet default) or rolled back by the coordinator; the learner then never sets the fleet default
    itself (except for the very first version). ``False``: every published version goes fleet-wide."""
    canary_share: float = 0.25
    """Largest fraction of the fleet's robots that runs a canary (at least 1 robot, rounded down)."""
    min_episodes: int = 8
    """Episodes each arm (canary, incumbent) needs, pooled over tasks, before a promotion."""
    min_task_episodes: int = 4
    """Episodes each arm needs on a task before that task's own test runs; also the first look."""
    max_episodes: int = 64
    """Canary episodes after which an undecided canary is rolled back as inconclusive (last look)."""
    alpha: float = 0.05
    """Family-wise one-sided significance level of the harm tests over all looks of one canary."""
    margin: float = 0.1
    """Promotion needs the stratified success difference >= -margin and the intervention difference
    <= +margin (canary - incumbent, rates in [0, 1])."""
    on_newer: str = "finish"
    """Newer versions while a canary runs: ``finish`` (decide the canary first, then canary the
    newest version; versions in between are skipped) or ``supersede`` (replace the canary by the
    newest version at once, no evidence carried over)."""
    check_every_s: float = 2.0
    """Seconds between rollout decisions of the coordinator."""
    shift_window: int = 40
    """Incumbent episodes per shift-detector window (0 disables the shift detector)."""
    shift_alpha: float = 0.01
    """One-sided significance level of one shift-detector comparison (window vs previous window)."""

    def validate(self, prefix: str = "--rollout.") -> None:
        c = Checks(self, prefix)
        c.fraction("canary_share", open_lo=True).fraction("alpha", open_lo=True, open_hi=True)
        c.fraction("shift_alpha", open_lo=True, open_hi=True).non_negative("margin").positive("check_every_s")
        c.integer("min_episodes", 1).integer("min_task_episodes", 1).integer("shift_window", 0)
        c.integer("max_episodes", max(self.min_episodes, self.min_task_episodes))
        c.one_of("on_newer", ("finish", "supersede"))


@dataclass(frozen=True)
class Budget:
    """When the online stage stops: whichever limit is reached first (``None`` disables a limit)."""

    robot_hours: float | None = None
    """Fleet robot time collected, hours (control steps / control_hz / 3600), cumulative over resumes."""
    max_learner_steps: int | None = 1000
    """Learner steps in total (cumulative over resumes)."""
    max_wall_s: float | None = None
    """Wall-clock seconds of this invocation."""

    def validate(self, prefix: str = "--budget.") -> None:
        if self.robot_hours is None and self.max_learner_steps is None and self.max_wall_s is None:
            raise ConfigError(f"the online budget needs {prefix}robot-hours, {prefix}max-learner-steps or "
                              f"{prefix}max-wall-s")  # fmt: skip
        c = Checks(self, prefix)
        for name in ("robot_hours", "max_wall_s"):
            if getattr(self, name) is not None:
                c.positive(name)
        if self.max_learner_steps is not None:
            c.integer("max_learner_steps", 1)


@dataclass(frozen=True)
class OnlineConfig:
    """The fleet loop: K robot-client processes, one coordinator, one learner, one policy registry."""

    suite: str = "mw8"
    """Task suite the fleet runs: ``mw8``, ``scene8`` (long-horizon, one shared scene), ``fake4``, a suite
    JSON file or an ``lwd.suites`` entry point (a file path is made absolute for the fleet's processes)."""
    num_robots: int = 16
    """Simulated robots in the fleet (each a separate fleet member: robot id, env, outbox)."""
    robot_processes: int = 4
    """Robot-client processes hosting them (robots are spread round-robin); 1 torch thread each."""
    tasks: tuple[str, ...] = ()
    """Task ids the fleet runs (empty: every task of the suite)."""
    short_task_weight: float = 1.0
    """Allocation weight of each short task (paper: 1 robot per short task of 16 robots)."""
    long_task_weight: float = 3.0
    """Allocation weight of each long task (paper: 3 robots per long task)."""
    shift: str = "field"
    """Deployment condition of the robots: ``lab``, ``field`` or a shift JSON path."""
    obs_mode: str = "state"
    """Observation mode of the robots: ``state`` or ``pixels`` (must match the policy)."""
    intervene: bool = True
    """Whether the scripted expert (stand-in for the human operator) may take over."""
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    """Take-over rules of the scripted expert (steps are control steps)."""
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    """Online learner settings."""
    budget: Budget = field(default_factory=Budget)
    """When to stop."""
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    """Canary rollout, automatic rollback and shift detection of new policy versions."""
    dataplane: str = ""
    """Data plane: ``""`` = embedded SQLite + local store under ``run_dir/online/fleet``; a
    ``redis://`` event-log URL (store under the run); an existing data-plane JSON config file
    (``{"events": "redis://...", "store": "s3://..."}``; a ``.json`` path that does not exist is an
    error); or a root directory (created if missing)."""
    registry: str = ""
    """Policy registry storage root (``""`` = ``run_dir/online/fleet/registry``), a directory or an fsspec
    URL such as ``s3://bucket/lwd/registry``."""
    registry_index: str = ""
    """Index of the registry (``redis://host:6379/1``; ``""`` = ``registry.db`` inside a local root).
    Required when ``registry`` is remote, so that machines share version numbers and assignments."""
    engine: Literal["local", "ray"] = "local"
    """Where the components run: ``local`` subprocesses, or ``ray`` actors on a Ray cluster (needs a
    Redis data plane; see ``docs/multi_machine.md``)."""
    ray_address: str = ""
    """Ray cluster to join with ``engine="ray"``: ``""`` starts a private single-node Ray for this run,
    ``"auto"`` the cluster this machine joined with ``ray start``, else its address (``host:6379``)."""
    ray_robot_strategy: Literal["SPREAD", "STRICT_SPREAD", "PACK"] = "SPREAD"
    """Ray placement-group strategy of the robot clients (one ``{"CPU": 1}`` bundle per robot-client
    actor): ``SPREAD`` spreads them over nodes as evenly as it can (best effort, also fits one node),
    ``STRICT_SPREAD`` needs a distinct node per robot-client actor, ``PACK`` fills as few nodes as it can."""
    ray_learner_resource: str = ""
    """Custom Ray resource that marks the nodes allowed to host the learner (chosen name, e.g.
    ``lwd_learner``: ``ray start --resources '{"lwd_learner": 1}'``). ``""``: the learner is pinned to
    a GPU node or the driver's node (strict), as on one machine. Set: the learner takes one unit of it
    on any alive node that offers it, so when that node dies Ray restarts the learner on another such
    node, where it resumes from its checkpoint (the run directory must then be shared storage)."""
    ray_robot_resource: str = ""
    """Custom Ray resource that marks robot nodes (chosen name, e.g. ``lwd_robot``; a node started with
    ``--resources '{"lwd_robot": 4}'`` hosts up to 4 robot-client actors). ``""``: any node with a free
    CPU. Set: every robot bundle also takes one unit, so robots never land on the head or learner node,
    and when a robot node dies its bundles move only to surviving robot nodes."""
    ray_detached: bool = False
    """With ``engine="ray"``: start the actors (and the robots' placement group) detached and named in
    ``ray_namespace``, so the fleet keeps running when the driver (``lwd run``) disconnects; running
    ``lwd run`` again reattaches to them, ``lwd run --stop`` stops them. Needs a running cluster
    (``ray_address``)."""
    ray_namespace: str = ""
    """Ray namespace of the detached actors (``""``: ``lwd-`` + a hash of the run's online directory,
    so every run directory has its own)."""
    heartbeat_s: float = 5.0
    """Seconds between robot heartbeats."""
    lease_s: float = 30.0
    """Seconds an unacknowledged data-plane event stays leased before redelivery."""
    max_restarts: int = 5
    """Restarts of one crashed child process the local launcher allows within any
    ``restart_window_s`` seconds; one more crash inside the window and it gives up on that child
    (chosen: a crash loop stops within minutes, occasional crashes are restarted forever). The Ray
    launcher passes it to Ray as the actor's lifetime ``max_restarts``."""
    restart_window_s: float = 300.0
    """Sliding window of the restart budget, seconds (chosen; see ``max_restarts``)."""
    restart_backoff_s: float = 1.0
    """Delay before a restart, seconds: the first restart within the window is immediate, the k-th
    (k >= 2) waits ``restart_backoff_s * 2**(k-2)``, at most ``restart_backoff_max_s`` (chosen: with
    the defaults five restarts span ~15 s of an outage a child could not ride out itself)."""
    restart_backoff_max_s: float = 30.0
    """Largest delay before a restart, seconds (chosen)."""
    status_every_s: float = 2.0
    """Seconds between launcher status refreshes (table or log line)."""
    stop_timeout_s: float = 60.0
    """Seconds a child gets to flush and checkpoint after SIGTERM before it is killed."""
    seed: int = 0
    """Seed of the fleet (episode seeds come from ``ONLINE_SEED_BASE``, disjoint from evaluation)."""

    def validate(self, prefix: str = "--") -> None:
        """Check every option (ranges, names, the shift); the data-plane file and the engine's
        availability are checked where the stage is launched (``lwd.pipeline.run``)."""
        c = Checks(self, prefix)
        c.integer("num_robots", 1).integer("robot_processes", 1).integer("max_restarts", 0).integer("seed", 0)
        c.positive("short_task_weight", "long_task_weight", "heartbeat_s", "lease_s", "status_every_s")
        c.positive("stop_timeout_s", "restart_window_s")
        c.non_negative("restart_backoff_s", "restart_backoff_max_s")
        c.one_of("obs_mode", ("state", "pixels")).one_of("engine", ("local", "ray"))
        c.one_of("ray_robot_strategy", ("SPREAD", "STRICT_SPREAD", "PACK"))
        for name in ("ray_learner_resource", "ray_robot_resource"):
            value = getattr(self, name)
            if value and (not value.replace("_", "").isalnum() or value in ("CPU", "GPU", "memory")):
                raise ConfigError(
                    f"{prefix}{name.replace('_', '-')} must be a custom resource name (letters, digits, _), got {value!r}"
                )
        if (self.ray_learner_resource or self.ray_robot_resource) and self.engine != "ray":
            raise ConfigError(f"{prefix}ray-learner-resource / ray-robot-resource need the ray engine (--engine ray)")
        if self.ray_detached and self.engine != "ray":
            raise ConfigError(f"{prefix}ray-detached needs the ray engine (--engine ray)")
        check_tasks(self.suite, self.tasks, f"{prefix}tasks")
        check_shift(self.shift)
        iv = Checks(self.intervention, f"{prefix}intervention.")
        for name in ("no_progress_steps", "deviation_steps", "budget_steps", "max_takeover_steps",
                     "min_takeover_steps"):  # fmt: skip
            iv.integer(name, 0)
        iv.non_negative("progress_eps", "resume_eps").fraction("spot_check_prob")
        if not self.intervention.deviation_threshold >= 0:  # inf disables the rule
            raise ConfigError(f"{prefix}intervention.deviation-threshold must be >= 0")
        self.learner.validate(f"{prefix}learner.")
        self.budget.validate(f"{prefix}budget.")
        self.rollout.validate(f"{prefix}rollout.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnlineConfig:
        """Inverse of :meth:`to_dict` (JSON round trip; lists become tuples)."""
        d = dict(d)
        d["tasks"] = tuple(d.get("tasks", ()))
        d["intervention"] = InterventionConfig(**d.get("intervention", {}))
        d["learner"] = LearnerSettings(**d.get("learner", {}))
        d["budget"] = Budget(**d.get("budget", {}))
        d["rollout"] = RolloutSettings(**d.get("rollout", {}))
        return cls(**d)
