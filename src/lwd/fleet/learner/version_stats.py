"""Online outcomes per policy version, as the learner sees them in the episodes it ingests: success per
task, intervention steps, and a window of staleness / intervention / success for the metrics log."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from lwd.types import Episode


class VersionStats:
    """Online outcomes per policy version: success per task, intervention steps, staleness."""

    def __init__(self) -> None:
        self.by_version: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self.steps: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # [steps, intervened steps]
        self.episodes = 0
        self.env_steps = 0
        self.window: list[tuple[int, float, int, float]] = []  # (staleness, intervention fraction, steps, success)

    def add(self, ep: Episode, latest_version: int) -> None:
        n = self.by_version[ep.policy_version][ep.task_id]
        n[0] += 1
        n[1] += int(ep.success)
        s = self.steps[ep.policy_version]
        s[0] += ep.length
        s[1] += int(np.count_nonzero(ep.intervention))
        self.episodes += 1
        self.env_steps += ep.length
        self.window.append((latest_version - ep.policy_version, float(np.mean(ep.intervention)), ep.length,
                            float(ep.success)))  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """``{version: {episodes, env_steps, success_rate: {task: rate}, intervention_rate}}`` (JSON)."""
        out = {}
        for v in sorted(self.by_version):
            tasks = self.by_version[v]
            steps, inter = self.steps[v]
            out[str(v)] = {
                "episodes": sum(n for n, _ in tasks.values()),
                "env_steps": steps,
                "success_rate": {t: s / n for t, (n, s) in sorted(tasks.items())},
                "intervention_rate": inter / max(steps, 1),
            }
        return out

    def pop_window(self) -> dict[str, float]:
        w, self.window = self.window, []
        if not w:
            return {}
        return {
            "data/staleness_versions": float(np.mean([s for s, *_ in w])),
            "fleet/intervention_rate": float(np.average([i for _, i, _, _ in w], weights=[n for _, _, n, _ in w])),
            "fleet/success_rate": float(np.mean([ok for *_, ok in w])),
        }
