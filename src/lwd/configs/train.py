"""Configs of the learning stages: the policy architecture, SFT (``lwd pretrain``) and common loop knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lwd.algorithms.registry import OFFLINE_ALGORITHMS, RENAMED
from lwd.configs.checks import Checks, load_json_object
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class PolicyArch:
    """Architecture of the FlowPolicy; state/action dims and cameras come from the dataset."""

    chunk_len: int = 8
    """H, control steps per action chunk (see docs/policy.md for the choice)."""
    hidden_dim: int = 256
    """Width of the observation encoders, units."""
    cond_dim: int = 256
    """Width of the conditioning vector, units."""
    expert_width: int = 256
    """Width of the action expert's residual MLP, units."""
    expert_depth: int = 3
    """Residual blocks in the action expert."""
    flow_steps: int = 10
    """K, Euler steps when acting (and QAM's discretisation)."""
    text_encoder: str = "minilm"
    """Instruction encoder: ``minilm`` (frozen all-MiniLM-L6-v2, shipped with its weights), ``hashing``,
    or a ``package.module:factory`` of your own (docs/your_own.md)."""
    policy_class: str = ""
    """A flow-policy class ``package.module:Class`` to pre-train instead of the built-in FlowPolicy
    (the ``FlowPolicyModel`` interface, docs/your_own.md); ``""`` = the built-in one, whose sizes are
    the options above."""
    policy_config: str = ""
    """With ``policy_class``: a JSON file of that class's config fields. The robot interface
    (``state_dim``, ``action_dim``, ``cameras``, ``image_size``) always comes from the dataset;
    ``chunk_len``, ``flow_steps`` and ``text_encoder`` come from the options above unless the file
    sets them."""

    def validate(self, prefix: str = "--policy.") -> None:
        from lwd.policy.language import TEXT_ENCODERS
        from lwd.policy.protocol import resolve_policy_class

        c = Checks(self, prefix)
        for name in ("chunk_len", "hidden_dim", "cond_dim", "expert_width", "expert_depth", "flow_steps"):
            c.integer(name, 1)
        if ":" not in self.text_encoder:  # a factory path is checked when the policy is built
            c.one_of("text_encoder", sorted(TEXT_ENCODERS))
        if self.policy_config and not self.policy_class:
            raise ConfigError(f"{prefix}policy-config needs {prefix}policy-class")
        if self.policy_class:
            try:
                resolve_policy_class(self.policy_class)
            except ConfigError as e:
                raise ConfigError(f"{prefix}policy-class: {e}") from e
        if self.policy_config:
            load_json_object(self.policy_config, f"{prefix}policy-config")


@dataclass(frozen=True)
class LoopConfig:
    """Knobs shared by every training loop."""

    steps: int = 3000
    """Gradient steps of this stage."""
    batch_size: int = 256
    """Transitions per gradient step."""
    log_every: int = 50
    """Steps between metric logs (TensorBoard + metrics.jsonl)."""
    checkpoint_every: int = 500
    """Steps between full-state checkpoints (resumable after a crash or Ctrl-C)."""
    seed: int = 0
    """Seed of sampling and initialisation."""
    threads: int = 1
    """torch threads of the learner; 0 = all cores. Default 1: our networks are small, and a
    multi-threaded torch next to other busy processes (robots, evaluation) spins and slows down
    many-fold (measured: SFT 8 steps/s with 1 thread vs 0.5 with 2 on a loaded 2-core machine)."""

    def validate(self, prefix: str = "--loop.") -> None:
        c = Checks(self, prefix)
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            c.integer(name, 1)
        c.integer("seed", 0).integer("threads", 0)


@dataclass(frozen=True)
class SFTConfig:
    """Behaviour cloning of the flow policy on the demonstrations (``lwd pretrain``)."""

    dataset: Path = Path("runs/quickstart/offline_data")
    """Offline dataset written by ``lwd collect``."""
    out: Path = Path("runs/quickstart/sft")
    """Stage directory: checkpoints, logs and the final reference policy in ``out/policy``."""
    policy: PolicyArch = field(default_factory=PolicyArch)
    """Architecture of the policy."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Steps, batch, logging and checkpoint cadence."""
    lr: float = 3e-4
    """Peak AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear warm-up steps, then cosine decay to ``lr * final_lr_fraction``."""
    final_lr_fraction: float = 0.1
    """Learning rate at the last step as a fraction of ``lr``."""
    grad_clip: float = 1.0
    """Max global gradient norm (0 disables)."""
    sources: tuple[str, ...] = ("demo",)
    """Episode sources cloned (the paper clones demonstrations)."""

    def validate(self, prefix: str = "--") -> None:
        """Check every option (ranges, names) before anything is read or written."""
        from lwd.types import SOURCES

        self.policy.validate(f"{prefix}policy.")
        self.loop.validate(f"{prefix}loop.")
        c = Checks(self, prefix)
        c.positive("lr").non_negative("weight_decay", "grad_clip").integer("warmup_steps", 0)
        c.fraction("final_lr_fraction")
        if not self.sources or isinstance(self.sources, str):
            raise ConfigError(f"{prefix}sources must name at least one of: {', '.join(SOURCES)}")
        for s in self.sources:
            if s not in SOURCES:
                raise ConfigError(f"unknown source {s!r} in {prefix}sources; valid: {', '.join(SOURCES)}")


@dataclass(frozen=True)
class RLConfig:
    """Offline RL from the SFT reference policy on the whole offline buffer (``lwd train``)."""

    stage: Literal["offline"] = "offline"
    """Training stage. ``offline`` here; the online stage runs inside the fleet (``lwd run``), where the
    learner follows the robots' data."""
    dataset: Path = Path("runs/quickstart/offline_data")
    """Offline dataset written by ``lwd collect`` (demos, rollouts, failures, play: all are used)."""
    init: Path = Path("runs/quickstart/sft/policy")
    """Checkpoint to start from; it also becomes the frozen reference policy pi_ref."""
    out: Path = Path("runs/quickstart/offline_lwd")
    """Stage directory: checkpoints (full learner state), logs and the final policy in ``out/policy``."""
    algorithm: str = "lwd"
    """A name of ``lwd.algorithms.registry.OFFLINE_ALGORITHMS``: ``lwd`` (DIVL + QAM), ``lwd-const-tau``
    (DIVL with alpha = 0), ``iql-qam`` (scalar expectile + QAM)."""
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=1000))
    """Steps, batch, logging and checkpoint cadence."""
    gamma: float = 0.995
    """Per-control-step discount (chosen for our ~100-250-step episodes; paper: 0.9999 at 30 Hz)."""
    n_step_long: int = 10
    """Chunks per n-step target on long tasks offline (paper: 10); short tasks use 1."""
    tau_base: float = 0.6
    """DIVL base quantile level (paper: 0.6 offline)."""
    alpha: float = 0.3
    """DIVL entropy slope of tau (paper: 0.3)."""
    lam: float = 2.0
    """QAM temperature lambda (paper: 2 with Q in [0, 1])."""
    policy_lr: float = 2e-5
    """AdamW learning rate of the policy's action expert (paper: 2e-5)."""
    critic_lr: float = 5e-4
    """Adam learning rate of value and critic (paper: 5e-4)."""
    policy_delay_steps: int = 0
    """Critic/value-only warm-up steps before QAM starts (chosen)."""
    policy_every: int = 1
    """QAM step on every k-th learner step; value/critic on every step (chosen: 1)."""
    expectile: float = 0.7
    """Expectile of the IQL ablation."""
    qam_batch: int = 0
    """Rows of each batch the QAM step uses (0: the whole batch; chosen): QAM's cost knob."""
    qam_flow_steps: int = 10
    """K, flow steps of the QAM trajectory (paper default 10)."""
    reference: Literal["frozen", "bc"] = "frozen"
    """QAM's reference policy (algorithms.md 4.1): ``frozen`` = the SFT checkpoint (the paper), ``bc`` =
    an EMA of a copy trained by BC on demos (+ intervention chunks online) during learning (chosen)."""
    reference_lr: float = 1e-4
    """AdamW learning rate of the BC-trained reference copy (``reference bc``; chosen)."""
    reference_ema: float = 0.05
    """EMA rate from the BC-trained copy to the reference per learner step (``reference bc``; chosen)."""
    reference_steps: int = 1
    """``reference bc``: BC steps of the reference copy per learner step, each on its own imitation
    batch and each followed by the EMA (chosen; see the presets)."""
    track_reference: bool = False
    """``reference bc``: the policy follows every move of the reference (each EMA step's parameter
    change is added to the policy), so QAM's tilt rides on the moving reference and the acting
    policy's backbone (which QAM does not train) learns with it (chosen; see the presets)."""

    def validate(self, prefix: str = "--") -> None:
        """Check every option (ranges, names) before anything is read or written."""
        self.loop.validate(f"{prefix}loop.")
        c = Checks(self, prefix)
        c.one_of("stage", ("offline",)).one_of("algorithm", OFFLINE_ALGORITHMS, RENAMED)
        c.one_of("reference", ("frozen", "bc"))
        c.needs("track_reference", "reference", "bc")
        c.fraction("gamma", open_lo=True).fraction("tau_base", open_lo=True, open_hi=True)
        c.fraction("expectile", open_lo=True, open_hi=True).fraction("reference_ema", open_lo=True)
        c.non_negative("alpha").positive("lam", "policy_lr", "critic_lr", "reference_lr")
        c.integer("n_step_long", 1).integer("policy_delay_steps", 0).integer("policy_every", 1)
        c.integer("qam_batch", 0).integer("qam_flow_steps", 1).integer("reference_steps", 1)
