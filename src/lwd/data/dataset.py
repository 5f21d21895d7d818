"""Read-only access to an lwd dataset written by :class:`~lwd.data.dataset_writer.DatasetWriter`.

``LwdDataset.open(root)`` validates the commit record (``meta/info.json``), every committed file's
size and sha256, and the episodes index; any problem is a :class:`DataError` naming the file and
what to do. Files ``info.json`` does not name (a crashed writer's leftovers) are ignored.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from lwd.data.dataset_files import read_episode_rows, read_info, read_parquet, verify_files
from lwd.data.dataset_writer import DatasetWriter
from lwd.data.frames import decode_episodes
from lwd.data.layout import robot_spec_from_json
from lwd.specs import RobotSpec
from lwd.transforms import NormStats, norm_stats_from_json
from lwd.types import Episode
from lwd.utils.errors import DataError

__all__ = ["DatasetWriter", "LwdDataset"]


class LwdDataset:
    """A validated, committed dataset: episode metadata in memory, frames loaded on demand."""

    def __init__(self, root: Path, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        self.root = root
        self.info = info
        self._rows = rows

    @classmethod
    def open(cls, root: str | os.PathLike, *, verify_checksums: bool = True) -> LwdDataset:
        """Open and validate the dataset at ``root`` (sha256 of every file unless disabled)."""
        root = Path(root)
        info = read_info(root)
        verify_files(root, info, checksums=verify_checksums)
        return cls(root, info, read_episode_rows(root, info))

    # ---- metadata ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def robot_spec(self) -> RobotSpec:
        return robot_spec_from_json(self.info["lwd"]["robot_spec"])

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Task ids in ``task_index`` order."""
        return tuple(t["task_id"] for t in self.info["lwd"]["tasks"])

    @property
    def tasks(self) -> dict[str, tuple[str, ...]]:
        """task_id -> instructions seen for it (index 0 first seen)."""
        return {t["task_id"]: tuple(t["instructions"]) for t in self.info["lwd"]["tasks"]}

    @property
    def stats(self) -> NormStats:
        """Normalisation statistics (``observation.state``, ``action``) of all committed episodes."""
        return norm_stats_from_json(self.info["lwd"].get("stats", {}))

    @property
    def episodes(self) -> pa.Table:
        """The episodes index, one row per episode (see :func:`lwd.data.frames.episode_rows`)."""
        return pa.Table.from_pylist(self._rows) if self._rows else pa.table({})

    @property
    def episode_records(self) -> list[dict[str, Any]]:
        """The episodes index as a list of dicts (a copy)."""
        return [dict(r) for r in self._rows]

    def select(
        self,
        task_ids: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        success: bool | None = None,
    ) -> list[int]:
        """Episode indices matching all given filters (None = no filter)."""
        unknown = set(task_ids or ()) - set(self.task_ids)
        if unknown:
            raise DataError(
                f"dataset {self.root} has no task(s) {sorted(unknown)}; known tasks: {list(self.task_ids)}"
            )
        return [
            r["episode_index"]
            for r in self._rows
            if (task_ids is None or r["task_id"] in task_ids)
            and (sources is None or r["source"] in sources)
            and (success is None or bool(r["success"]) == success)
        ]

    # ---- frames --------------------------------------------------------------------------------------

    def iter_episodes(
        self,
        task_ids: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        success: bool | None = None,
        indices: Collection[int] | None = None,
    ) -> Iterator[Episode]:
        """Yield matching episodes in episode order, reading each data file once."""
        wanted = set(self.select(task_ids, sources, success))
        if indices is not None:
            wanted &= set(indices)
        by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self._rows:
            if r["episode_index"] in wanted:
                by_file[r["data/file"]].append(r)
        spec = self.robot_spec
        shapes = {cam: (spec.image_size, spec.image_size, 3) for cam in spec.cameras}
        for rel in self.info["lwd"]["data_files"]:
            if rel not in by_file:
                continue
            table = read_parquet(self.root, rel)
            try:
                yield from decode_episodes(table, by_file[rel], shapes)
            except (KeyError, ValueError, pa.ArrowException) as e:
                raise DataError(
                    f"dataset {self.root}: {rel} does not match the episodes index ({e}); "
                    "restore it from a backup or re-create the dataset"
                ) from e

    def load_episodes(
        self,
        task_ids: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        success: bool | None = None,
    ) -> list[Episode]:
        """All matching episodes in memory (see :meth:`iter_episodes`)."""
        return list(self.iter_episodes(task_ids, sources, success))

    def load_episode(self, episode_index: int) -> Episode:
        if not 0 <= episode_index < len(self):
            raise IndexError(f"episode_index {episode_index} out of range [0, {len(self)})")
        return next(self.iter_episodes(indices=[episode_index]))
