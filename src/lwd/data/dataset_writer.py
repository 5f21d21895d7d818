"""Crash-safe, resumable writer of LeRobot-v3-compatible lwd datasets (layout: :mod:`lwd.data.layout`).

Commit protocol of one flush (N buffered episodes -> one new data file):
  1. the frame table goes to ``data/chunk-XXX/file-YYY.parquet`` (temp + fsync + rename),
  2. the episodes index rows go to a new ``meta/episodes/chunk-XXX/file-YYY.parquet`` (same way),
  3. ``meta/info.json`` naming both files with their sha256 is atomically replaced: the commit point,
  4. the ``meta/tasks.parquet`` / ``meta/stats.json`` mirrors are refreshed from ``info.json``.
A crash before 3 leaves files no ``info.json`` names: readers ignore them and the next writer
(``resume=True``) deletes them with any ``*.tmp`` leftovers. Committed files are never rewritten.
"""

from __future__ import annotations

import copy
import fcntl
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lwd.data.dataset_files import (
    is_empty_dir,
    read_episode_rows,
    read_info,
    remove_unreferenced,
    verify_files,
    write_mirrors,
)
from lwd.data.frames import PlacedEpisode, episode_rows, frames_table
from lwd.data.layout import (
    DATA_PATH,
    DEFAULT_CHUNKS_SIZE,
    EPISODES_PATH,
    INFO_PATH,
    file_path,
    new_info,
    robot_spec_from_json,
)
from lwd.data.stats import NormStatsAccumulator
from lwd.specs import RobotSpec
from lwd.transforms import norm_stats_to_json
from lwd.types import Episode
from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_bytes, atomic_write_json, sha256_bytes

LOCK_NAME = ".lwd-writer.lock"


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class DatasetWriter:
    """Buffers episodes and commits them ``episodes_per_file`` at a time into a new data file.

    ``DatasetWriter(root, robot_spec, fps)`` creates a dataset in a missing or empty directory; with
    ``resume=True`` it continues an existing one (same robot spec and fps). Any other non-empty
    directory is refused with a :class:`DataError`. One writer per dataset (an ``flock`` guards it).
    Use as a context manager or call :meth:`close` to commit the last partial file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        robot_spec: RobotSpec,
        fps: float,
        *,
        resume: bool = False,
        episodes_per_file: int = 50,
        robot_type: str = "lwd-sim",
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
    ) -> None:
        if episodes_per_file < 1:
            raise ValueError(f"episodes_per_file must be >= 1, got {episodes_per_file}")
        self.root = Path(root)
        self.robot_spec = robot_spec
        self.fps = float(fps)
        self.episodes_per_file = episodes_per_file
        self._buffer: list[Episode] = []
        self._lock_fd: int | None = None
        exists = (self.root / INFO_PATH).is_file()
        if exists and not resume:
            raise DataError(
                f"{self.root} already holds an lwd dataset; pass --resume to continue it "
                "or choose another --out"
            )
        if not exists and not is_empty_dir(self.root):
            raise DataError(
                f"{self.root} is not empty and is not an lwd dataset (no {INFO_PATH}); "
                "choose another --out or empty the directory"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            if exists:
                self._info = read_info(self.root)
                self._check_resumable()
                verify_files(self.root, self._info, checksums=False)
                remove_unreferenced(self.root, self._info)
                self._rows = read_episode_rows(self.root, self._info)
            else:
                self._info = new_info(robot_spec, self.fps, robot_type, chunks_size)
                self._rows = []
                atomic_write_json(self.root / INFO_PATH, self._info)
            write_mirrors(self.root, self._info)
        except BaseException:
            self._release_lock()
            raise
        self._ids = {r["episode_id"] for r in self._rows}
        lwd = self._info["lwd"]
        acc = lwd.get("stats_accumulator") or {}
        self._stats = NormStatsAccumulator.from_json(acc, robot_spec.state_dim, robot_spec.action_dim)

    @classmethod
    def open_or_create(
        cls, root: str | os.PathLike, robot_spec: RobotSpec, fps: float, *, resume: bool = True, **kwargs: Any
    ) -> DatasetWriter:
        """Continue the dataset at ``root`` if there is one (``resume=True``), else create it."""
        return cls(root, robot_spec, fps, resume=resume, **kwargs)

    # ---- state known to a (resuming) collector ---------------------------------------------------

    @property
    def num_episodes(self) -> int:
        """Committed episodes (buffered ones are not counted until :meth:`flush`)."""
        return len(self._rows)

    @property
    def num_frames(self) -> int:
        return int(self._info["total_frames"])

    @property
    def episode_ids(self) -> frozenset[str]:
        """Ids of committed and buffered episodes."""
        return frozenset(self._ids | {ep.episode_id for ep in self._buffer})

    def done_seeds(self, task_id: str | None = None) -> frozenset[int]:
        """Seeds of committed episodes (of ``task_id`` if given), so a deterministic collector can skip them."""
        return frozenset(int(r["seed"]) for r in self._rows if task_id is None or r["task_id"] == task_id)

    # ---- writing -----------------------------------------------------------------------------------

    def add(self, ep: Episode) -> bool:
        """Buffer ``ep`` (flushing when the buffer is full). Returns False for an already known id."""
        if ep.episode_id in self._ids or any(b.episode_id == ep.episode_id for b in self._buffer):
            return False
        self._check_episode(ep)
        self._buffer.append(ep)
        if len(self._buffer) >= self.episodes_per_file:
            self.flush()
        return True

    def add_many(self, episodes: Iterable[Episode]) -> int:
        """Add each episode; return how many were new."""
        return sum(self.add(ep) for ep in episodes)

    def flush(self) -> None:
        """Commit the buffered episodes as one new data file (no-op if the buffer is empty)."""
        if not self._buffer:
            return
        info = copy.deepcopy(self._info)
        lwd = info["lwd"]
        stats = NormStatsAccumulator.from_json(
            self._stats.to_json(), self.robot_spec.state_dim, self.robot_spec.action_dim
        )
        number = len(lwd["data_files"])
        data_rel = file_path(DATA_PATH, number, info["chunks_size"])
        index_rel = file_path(EPISODES_PATH, number, info["chunks_size"])
        placed, rows = [], []
        frame, row = int(info["total_frames"]), 0
        for i, ep in enumerate(self._buffer):
            p = PlacedEpisode(ep, len(self._rows) + i, self._task_index(lwd["tasks"], ep), frame)
            placed.append(p)
            rows.append(episode_rows(p, data_rel, number, info["chunks_size"], row))
            frame += ep.length + 1
            row += ep.length + 1
            stats.add(ep)
        data = _parquet_bytes(frames_table(placed, self.fps))
        index = _parquet_bytes(pa.Table.from_pylist(rows))
        atomic_write_bytes(self.root / data_rel, data)
        atomic_write_bytes(self.root / index_rel, index)
        lwd["data_files"].append(data_rel)
        lwd["episodes_files"].append(index_rel)
        for rel, blob in ((data_rel, data), (index_rel, index)):
            lwd["files"][rel] = {"sha256": sha256_bytes(blob), "bytes": len(blob)}
        lwd["commit"] += 1
        lwd["stats_accumulator"] = stats.to_json()
        lwd["stats"] = norm_stats_to_json(stats.norm_stats())
        info["total_episodes"] = len(self._rows) + len(rows)
        info["total_frames"] = frame
        info["total_tasks"] = len(lwd["tasks"])
        info["splits"] = {"train": f"0:{info['total_episodes']}"}
        self._commit(info)
        # Committed: only now does in-memory state advance.
        self._info, self._stats = info, stats
        self._rows.extend(rows)
        self._ids.update(r["episode_id"] for r in rows)
        self._buffer.clear()
        write_mirrors(self.root, self._info)

    def close(self) -> None:
        """Flush the partial buffer and release the writer lock."""
        try:
            self.flush()
        finally:
            self._release_lock()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # do not commit a half-collected buffer on error; it is re-collected on resume
            self._release_lock()

    # ---- internals ---------------------------------------------------------------------------------

    def _commit(self, info: dict[str, Any]) -> None:
        """The commit point: atomically replace ``meta/info.json``."""
        atomic_write_json(self.root / INFO_PATH, info)

    @staticmethod
    def _task_index(tasks: list[dict[str, Any]], ep: Episode) -> int:
        """Index of ``ep``'s task in ``tasks`` (appending the task / a new paraphrase as needed)."""
        for t in tasks:
            if t["task_id"] == ep.task_id:
                if ep.instruction not in t["instructions"]:
                    t["instructions"].append(ep.instruction)
                return int(t["task_index"])
        tasks.append({"task_index": len(tasks), "task_id": ep.task_id, "instructions": [ep.instruction]})
        return len(tasks) - 1

    def _check_resumable(self) -> None:
        stored = robot_spec_from_json(self._info["lwd"]["robot_spec"])
        try:
            stored.check_compatible(self.robot_spec)
        except ValueError as e:
            raise DataError(f"cannot resume {self.root}: {e}; choose another --out") from e
        if float(self._info["fps"]) != self.fps:
            raise DataError(
                f"cannot resume {self.root}: it was recorded at {self._info['fps']} fps, not {self.fps}; "
                "choose another --out"
            )

    def _check_episode(self, ep: Episode) -> None:
        ep.validate()
        spec = self.robot_spec
        if ep.states.shape[1] != spec.state_dim or ep.actions.shape[1] != spec.action_dim:
            raise ValueError(
                f"episode {ep.episode_id}: state/action dims {ep.states.shape[1]}/{ep.actions.shape[1]} "
                f"do not match the dataset's robot spec {spec.state_dim}/{spec.action_dim}"
            )
        if tuple(sorted(ep.images)) != tuple(sorted(spec.cameras)):
            raise ValueError(
                f"episode {ep.episode_id}: cameras {sorted(ep.images)} != dataset cameras {list(spec.cameras)}"
            )
        for cam, img in ep.images.items():
            if img.shape[1:] != (spec.image_size, spec.image_size, 3):
                raise ValueError(
                    f"episode {ep.episode_id}: camera {cam!r} frames are {img.shape[1:]}, "
                    f"expected {(spec.image_size, spec.image_size, 3)}"
                )

    def _acquire_lock(self) -> None:
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise DataError(
                f"another writer is writing {self.root}; wait for it or choose another --out"
            ) from e
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
