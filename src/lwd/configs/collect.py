"""Configuration of offline data collection (``lwd collect``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lwd.configs.checks import Checks, check_shift, check_tasks
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class CollectConfig:
    """Generate the offline buffer in the lab condition with the paper's data mix (algorithms.md s.1)."""

    out: Path = Path("runs/offline_data")
    """Dataset directory (must be missing or empty, unless ``resume``)."""
    suite: str = "mw8"
    """Task suite: ``mw8`` (Meta-World), ``scene8`` (OGBench scene, long-horizon), ``fake4`` (the tiny
    numpy world), a suite JSON file or an installed ``lwd.suites`` entry point (docs/envs.md, "Your own
    task suite")."""
    tasks: tuple[str, ...] = ()
    """Subset of the suite's task ids; empty = all tasks."""
    obs_mode: Literal["state", "pixels"] = "state"
    """Observation mode recorded in the dataset."""
    shift: str = "lab"
    """Deployment condition: ``lab``, ``field`` or a path to a shift JSON file."""
    episodes_per_task: int = 100
    """Total episodes per task across all sources."""
    demo_fraction: float = 0.52
    """Share of expert demonstrations (expert with small noise). Paper: 52%."""
    rollout_success_fraction: float = 0.14
    """Share of successful historical rollouts (heavier noise). Paper: 14%."""
    rollout_failure_fraction: float = 0.06
    """Share of failed historical rollouts. Paper: 6%."""
    play_fraction: float = 0.29
    """Share of play data (exploring failure modes, labelled failure). Paper: 29%."""
    max_rollout_attempts: int = 6
    """Rollout seeds tried per rollout slot before giving up filling the success/failure quotas."""
    seed: int = 0
    """Collection seed; episodes are a deterministic function of it (disjoint from eval seeds)."""
    resume: bool = False
    """Continue an existing dataset at ``out`` (skips episodes already committed)."""
    episodes_per_file: int = 50
    """Episodes per parquet data file."""

    def validate(self, prefix: str = "--") -> None:
        """Check every option (ranges, names, the shift file) before anything is written."""
        c = Checks(self, prefix)
        c.integer("episodes_per_task", 1).integer("max_rollout_attempts", 1).integer("episodes_per_file", 1)
        c.seed()
        fr = {n: getattr(self, n) for n in ("demo_fraction", "rollout_success_fraction",
                                             "rollout_failure_fraction", "play_fraction")}  # fmt: skip
        if not all(isinstance(f, (int, float)) and 0 <= f < float("inf") for f in fr.values()) or not (
            sum(fr.values()) > 0
        ):
            got = ", ".join(f"{prefix}{n.replace('_', '-')} {v}" for n, v in fr.items())
            raise ConfigError(f"data-mix fractions must be finite, >= 0 and not all zero, got {got}")
        c.one_of("obs_mode", ("state", "pixels"))
        check_tasks(self.suite, self.tasks, f"{prefix}tasks")
        check_shift(self.shift)

    def quotas(self) -> dict[str, int]:
        """Episodes per task for each slot: ``demo``, ``rollout_success``, ``rollout_failure``, ``play``.

        Fractions are normalised to sum to 1 and rounded by largest remainder, so the counts always
        add up to ``episodes_per_task``.
        """
        fr = {
            "demo": self.demo_fraction,
            "rollout_success": self.rollout_success_fraction,
            "rollout_failure": self.rollout_failure_fraction,
            "play": self.play_fraction,
        }
        total = sum(fr.values())
        exact = {k: self.episodes_per_task * v / total for k, v in fr.items()}
        q = {k: int(v) for k, v in exact.items()}
        by_remainder = sorted(exact, key=lambda k: exact[k] - q[k], reverse=True)
        for k in by_remainder[: self.episodes_per_task - sum(q.values())]:
            q[k] += 1
        return q
