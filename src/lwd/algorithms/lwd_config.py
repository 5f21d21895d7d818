"""Settings of the LWD algorithm (DIVL + QAM, docs/algorithms.md sections 3-5): :class:`LWDConfig`.

Every field says its unit and whether the value is the paper's or chosen; ``__post_init__`` rejects
values no learner could run with (the online learner's ``LearnerSettings`` maps onto it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lwd.algorithms.divl import DIVLConfig
from lwd.algorithms.qam import QAMConfig


@dataclass(frozen=True)
class LWDConfig:
    """DIVL + QAM learner (sections 3-5)."""

    divl: DIVLConfig = field(default_factory=DIVLConfig)
    """Value/critic settings (tau_base 0.6 offline; use 0.9 online)."""
    qam: QAMConfig = field(default_factory=QAMConfig)
    """Policy extraction settings."""
    policy_lr: float = 2e-5
    """AdamW learning rate of the policy (paper: 2e-5, cosine decay)."""
    policy_weight_decay: float = 0.0
    """AdamW weight decay of the policy (chosen: 0, so the policy is not pulled away from pi_ref)."""
    policy_grad_clip: float = 1.0
    """Global gradient-norm clip of the policy, 0 disables (chosen)."""
    train_backbone: bool = False
    """Also train the policy backbone with QAM (paper: only the action expert; chosen default False)."""
    total_steps: int = 0
    """Learner steps of the cosine schedules (0: constant learning rates)."""
    policy_delay_steps: int = 0
    """Learner steps of critic-only warm-up before the first policy step (chosen: 0)."""
    policy_every: int = 1
    """Run the QAM step on every k-th learner step only; value and critic update on every step
    (chosen: 1 = section 3.5's order on every batch). A critic step costs ~1/17 of a QAM step on
    CPU, so k > 1 buys the critic k-fold more updates for the same wall time."""

    qam_batch: int = 0
    """Rows of each batch the QAM step uses (0: all; chosen). The QAM step costs ~3K action-expert
    passes per row, value and critic ~4 critic passes, so a smaller QAM batch is the cost knob."""
    reference: Literal["frozen", "bc"] = "frozen"
    """pi_ref of QAM (algorithms.md 4.1): ``frozen`` = the starting (SFT) policy, never updated (the
    paper); ``bc`` = an EMA of a copy trained by flow-matching BC on demos + intervention chunks
    (chosen default of the presets, measured in docs/results.md)."""
    contrast_weight: float = 0.0
    """Weight of the take-over contrast loss in the critic step (``divl.contrast_loss``; 0 = the
    paper's critic; chosen in the presets, ablated in docs/results.md)."""
    contrast_margin: float = 0.05
    """Margin in Q units by which the human's rejected proposal should rank below the human's chunk."""
    reference_contrast_weight: float = 0.0
    """Weight of the reference contrast in the critic step (``divl.contrast_loss``; our addition, 0 =
    the paper's critic): at the states of the imitation batch (demos and chunks that start on a human
    step) one pi_ref sample should rank below the human's chunk by ``reference_contrast_slope`` x their
    distance, so the critic sees a second action at every state where the human acted."""
    reference_contrast_slope: float = 0.3
    """Margin of the reference contrast per unit of RMS distance between the two chunks (Q units per
    normalised action unit; chosen: a typical pi_ref-to-expert RMS gap of ~0.15 gives ~0.05)."""
    reference_lr: float = 1e-4
    """AdamW learning rate of the BC-trained reference copy (``reference="bc"``; chosen)."""
    reference_ema: float = 0.05
    """Rate of the EMA that makes pi_ref from the BC-trained copy each learner step (``reference="bc"``;
    chosen; 1 = the copy itself; the QAM authors use 0.005 over much longer runs)."""
    reference_steps: int = 1
    """``reference="bc"``: BC steps of the reference copy per learner step, each on its own imitation
    batch and each followed by the EMA (chosen; BC steps are cheap next to QAM's, so k > 1 lets the
    reference learn at imitation-learning speed while QAM runs on every ``policy_every``-th step)."""
    reference_successes: bool = False
    """``reference="bc"``: the reference also clones every step of the online episodes the policy solved
    with no human step (filtered BC on its own field successes). Off in every preset: measured to hurt
    (docs/results.md, "Two robot-hours"); False = demos + the human's intervention chunks only."""
    track_reference: bool = False
    """``reference="bc"``: the policy follows every move of pi_ref (each EMA step's parameter change is
    added to the policy too), so QAM's tilt rides on the moving reference instead of chasing it with
    its far rarer steps, and the acting policy's backbone, which QAM does not train, learns with the
    reference's (chosen; False = the policy moves by QAM only)."""

    def __post_init__(self) -> None:
        if self.reference not in ("frozen", "bc"):
            raise ValueError(f"reference must be 'frozen' or 'bc', got {self.reference!r}")
        if not 0.0 < self.reference_ema <= 1.0:
            raise ValueError(f"reference_ema must be in (0, 1], got {self.reference_ema}")
        if not self.reference_lr > 0.0:
            raise ValueError(f"reference_lr must be > 0, got {self.reference_lr}")
        for name in ("contrast_weight", "contrast_margin", "reference_contrast_weight", "reference_contrast_slope"):
            if not 0.0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)}")
        if self.reference_successes and self.reference != "bc":
            raise ValueError("reference_successes needs reference='bc' (a frozen reference clones nothing)")
        if self.track_reference and self.reference != "bc":
            raise ValueError("track_reference needs reference='bc' (a frozen reference never moves)")
        if self.reference_steps < 1:
            raise ValueError(f"reference_steps must be >= 1, got {self.reference_steps}")
        if self.qam_batch < 0:
            raise ValueError(f"qam_batch must be >= 0, got {self.qam_batch}")
        if self.policy_every < 1:
            raise ValueError(f"policy_every must be >= 1, got {self.policy_every}")
        if self.policy_delay_steps < 0:
            raise ValueError(f"policy_delay_steps must be >= 0, got {self.policy_delay_steps}")
