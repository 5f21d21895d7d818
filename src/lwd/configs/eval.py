"""Configuration of evaluation (``lwd eval``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy checkpoint (or the scripted expert) on held-out seeds, per task."""

    checkpoint: Path | None = None
    """Policy checkpoint directory (a ``policy`` dir or a registry version). Required unless ``expert``."""
    expert: bool = False
    """Evaluate the scripted expert instead of a checkpoint (shift calibration)."""
    suite: str = "mw8"
    """Task suite."""
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
    """Output directory: results.json, table.md, bars.png, episodes.jsonl."""
    name: str = ""
    """Label of this policy in tables (default: the checkpoint's directory name or ``expert``)."""
