"""The algorithm registry: one name per algorithm, offline and online, and what each is built from.

A plain dict (no import side effects): ``ALGORITHMS[name]`` says which value learner and which
policy update an algorithm combines, whether it runs offline (``lwd train``), online (the learner
process) or both, and whether it is the paper's method, an ablation of ours or a baseline. The
offline stage (``lwd.pipeline.train_offline``), the online learner (``lwd.fleet.learner.algorithms``)
and the configs' validation all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AlgorithmInfo:
    """What one registered algorithm is made of."""

    summary: str
    """One line for help texts and docs."""
    value: Literal["divl", "iql"] | None
    """The value learner: DIVL's distributional value (``divl``), a scalar expectile value
    (``iql``), or none (pure imitation)."""
    policy: Literal["qam", "bc", "recap"]
    """The policy update: QAM policy extraction, BC on the human's steps, or RECAP's
    advantage-conditioned BC."""
    constant_tau: bool = False
    """DIVL with alpha = 0 (constant quantile level): the ablation of the entropy-adaptive tau."""
    offline: bool = True
    """Runs as an offline RL stage (``lwd train --stage offline``)."""
    online: bool = True
    """Runs in the online learner process."""
    role: Literal["method", "ablation", "baseline"] = "baseline"
    """Ours (``method``), an ablation of ours, or a baseline implemented as carefully."""


ALGORITHMS: dict[str, AlgorithmInfo] = {
    "lwd": AlgorithmInfo("DIVL value + QAM policy extraction (the paper's method)", "divl", "qam", role="method"),
    "lwd-const-tau": AlgorithmInfo(
        "DIVL with a constant quantile level (alpha = 0) + QAM", "divl", "qam", constant_tau=True, role="ablation"
    ),
    "iql-qam": AlgorithmInfo("scalar expectile value (IQL) + QAM policy extraction", "iql", "qam"),
    "hg-dagger": AlgorithmInfo("BC on demos + the human's intervention steps", None, "bc", offline=False),
    "recap": AlgorithmInfo("DIVL advantage-conditioned BC (RECAP)", "divl", "recap", offline=False),
}
"""Every algorithm by its one name."""

OFFLINE_ALGORITHMS: tuple[str, ...] = tuple(n for n, a in ALGORITHMS.items() if a.offline)
"""Names ``lwd train --stage offline`` accepts."""
ONLINE_ALGORITHMS: tuple[str, ...] = tuple(n for n, a in ALGORITHMS.items() if a.online)
"""Names the online learner accepts (``LearnerSettings.algorithm``)."""
RENAMED = {"iql": "iql-qam"}
"""Old names that now have another: refused with the new name in the error."""
