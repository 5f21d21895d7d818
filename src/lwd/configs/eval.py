"""Configuration of evaluation (``lwd eval``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lwd.configs.checks import Checks, check_shift, check_tasks, load_json_object
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy checkpoint (or the scripted expert) on held-out seeds, per task."""

    checkpoint: Path | None = None
    """Policy checkpoint directory (a ``policy`` dir or a registry version). Required unless ``expert``."""
    expert: bool = False
    """Evaluate the scripted expert instead of a checkpoint (shift calibration)."""
    suite: str = "mw8"
    """Task suite: ``mw8``, ``scene8`` (long-horizon, one shared scene), ``fake4``, a suite JSON file or an
    ``lwd.suites`` entry point."""
    tasks: tuple[str, ...] = ()
    """Subset of task ids; empty = every task of the suite."""
    shift: str = "field"
    """Condition: ``lab``, ``field`` or a path to a shift JSON file."""
    instructions: str = "train"
    """``train`` (training paraphrases), ``held_out`` (unseen paraphrases) or a JSON file
    ``{task_id: [instruction, ...]}``."""
    obs_mode: Literal["state", "pixels"] = "state"
    """Observation mode for the expert (a checkpoint's own mode is read from its config)."""
    episodes_per_task: int = 50
    """Episodes per task per evaluation seed."""
    seeds: tuple[int, ...] = (0,)
    """Evaluation seed sets; each draws its own episode seeds, disjoint from training/collection."""
    workers: int = 2
    """Parallel robot processes (1 torch thread each)."""
    noise: Literal["random", "zero"] = "random"
    """Initial flow noise: ``random`` (as deployed) or ``zero`` (deterministic)."""
    out: Path = Path("runs/eval")
    """Output directory: results.json, table.md, bars.png, episodes.jsonl. Must be missing or empty
    unless ``overwrite``."""
    name: str = ""
    """Label of this policy in tables (default: the checkpoint's directory name or ``expert``)."""
    overwrite: bool = False
    """Write into an existing, non-empty ``out`` (replacing its results.json, table.md, bars.png and
    episodes.jsonl); without it such an ``out`` is refused, so earlier results are never lost."""

    def validate(self, prefix: str = "--") -> None:
        """Check every option (ranges, names, the shift and instruction files); no filesystem writes."""
        c = Checks(self, prefix)
        c.integer("episodes_per_task", 1).integer("workers", 1)
        c.one_of("obs_mode", ("state", "pixels")).one_of("noise", ("random", "zero"))
        if not self.seeds or isinstance(self.seeds, (str, int)):
            raise ConfigError(f"{prefix}seeds must list at least one evaluation seed set")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 1000:
                raise ConfigError(f"evaluation {prefix}seeds must be integers in [0, 1000), got {s!r}")
        if not self.expert and self.checkpoint is None:
            raise ConfigError(f"pass {prefix}checkpoint <policy dir> (or {prefix}expert)")
        check_tasks(self.suite, self.tasks, f"{prefix}tasks")
        check_shift(self.shift)
        if self.instructions not in ("train", "held_out"):
            load_json_object(self.instructions, f"{prefix}instructions file")

    def check_out(self, prefix: str = "--") -> None:
        """Refuse an existing non-empty ``out`` unless ``overwrite`` (before any episode runs)."""
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{prefix}out {out} is a file, not a directory")
        if out.is_dir() and any(out.iterdir()) and not self.overwrite:
            what = "holds evaluation results" if (out / "results.json").exists() else "is not empty"
            raise ConfigError(f"{prefix}out {out} {what}; pass {prefix}overwrite to replace them or choose "
                              "another --out")  # fmt: skip
