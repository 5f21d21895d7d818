"""Configuration of ``lwd export-lerobot`` and ``lwd import-lerobot`` (LeRobot v3.0 datasets both ways)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lwd.configs.checks import Checks
from lwd.types import SOURCES
from lwd.utils.errors import ConfigError


def _check_src(src: Path, prefix: str, what: str) -> None:
    if not Path(src).is_dir():
        raise ConfigError(
            f"{prefix}src {src} does not exist (or is not a directory); pass the {what} directory"
        )
    if not (Path(src) / "meta" / "info.json").is_file():
        raise ConfigError(f"{prefix}src {src} has no meta/info.json; pass the {what} directory")


def _check_out(out: Path, src: Path, prefix: str) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{prefix}out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{prefix}out {out} is not empty; choose another {prefix}out or empty it")
    if out.resolve() == Path(src).resolve():
        raise ConfigError(f"{prefix}out must differ from {prefix}src")


@dataclass(frozen=True)
class ExportLeRobotConfig:
    """Write an lwd dataset as a LeRobot v3.0 dataset (T rows per episode, PNG images embedded in the
    parquet files, lwd extras in extra columns; docs/your_own.md, "Your own datasets (LeRobot)")."""

    src: Path = Path("runs/quickstart/offline_data")
    """lwd dataset to export (written by ``lwd collect``)."""
    out: Path = Path("runs/quickstart/lerobot")
    """Directory of the LeRobot dataset (must be missing or empty)."""
    fps: int = 0
    """Integer fps written for LeRobot; 0 = the dataset's fps, which must then be a whole number."""
    robot_type: str = ""
    """``robot_type`` in ``info.json``; empty = the lwd dataset's."""
    episodes_per_file: int = 500
    """Episodes per parquet data file."""

    def validate(self, prefix: str = "--") -> None:
        Checks(self, prefix).integer("fps", 0).integer("episodes_per_file", 1)
        _check_src(self.src, prefix, "lwd dataset")

    def check_out(self, prefix: str = "--") -> None:
        _check_out(self.out, self.src, prefix)


@dataclass(frozen=True)
class ImportLeRobotConfig:
    """Turn a LeRobot v3.0 dataset into an lwd offline dataset (for ``lwd pretrain`` / ``lwd train
    --dataset``). An lwd export comes back exactly; for other datasets say where success comes from."""

    src: Path = Path("runs/quickstart/lerobot")
    """LeRobot v3.0 dataset directory (``meta/info.json``, ``data/``), e.g. one LeRobot recorded."""
    out: Path = Path("runs/quickstart/offline_from_lerobot")
    """Directory of the lwd dataset (must be missing or empty)."""
    success: str = "auto"
    """Episode success: ``auto`` (an lwd export's own labels; other datasets are refused), ``all``
    (every episode succeeded, e.g. demonstrations), ``none`` (every episode failed) or
    ``column:NAME`` (a per-frame bool/number feature, true or > 0 on the episode's last frame)."""
    source: str = "demo"
    """lwd source of the imported episodes (``demo``, ``rollout``, ``play``, ``online``); an lwd
    export keeps its own."""
    cameras: str = "all"
    """Image features to import: ``all``, ``none`` or comma-separated names (``top`` or
    ``observation.images.top``). Video features cannot be imported (lwd does not decode video)."""
    state_key: str = "observation.state"
    """Feature holding the low-dimensional state (a float vector)."""
    action_key: str = "action"
    """Feature holding the action (a float vector)."""
    episodes_per_file: int = 50
    """Episodes per parquet data file of the lwd dataset."""

    def validate(self, prefix: str = "--") -> None:
        from lwd.data.lerobot_import import parse_success

        c = Checks(self, prefix)
        c.integer("episodes_per_file", 1).one_of("source", SOURCES)
        try:
            parse_success(self.success)
        except ValueError as e:
            raise ConfigError(f"{prefix}success: {e}") from e
        if not self.cameras.strip():
            raise ConfigError(f"{prefix}cameras must be all, none or camera names, got an empty string")
        _check_src(self.src, prefix, "LeRobot dataset")

    def check_out(self, prefix: str = "--") -> None:
        _check_out(self.out, self.src, prefix)


EXPORT_LEROBOT: dict[str, ExportLeRobotConfig] = {
    name: ExportLeRobotConfig(src=Path("runs") / name / "offline_data", out=Path("runs") / name / "lerobot")
    for name in ("quickstart", "debug", "benchmark")
}
IMPORT_LEROBOT: dict[str, ImportLeRobotConfig] = {
    name: ImportLeRobotConfig(
        src=Path("runs") / name / "lerobot", out=Path("runs") / name / "offline_from_lerobot"
    )
    for name in ("quickstart", "debug", "benchmark")
}
