"""Configs of the learning stages: the policy architecture, SFT (``lwd pretrain``) and common loop knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    """Instruction encoder: ``minilm`` (frozen all-MiniLM-L6-v2, shipped with its weights) or ``hashing``."""


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
    threads: int = 0
    """torch threads of the learner; 0 = all cores."""


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
