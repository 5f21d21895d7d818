"""Many episodes <-> one frame table (one row per frame) and the per-episode index rows.

A data file holds the concatenated payload tables of :mod:`lwd.data.episode_io` (T+1 rows per
episode) plus dataset columns: ``episode_index``, ``index`` (global frame index), ``task_index``,
``timestamp`` (frame_index / fps) and the episode-level extras (``episode_id``, ``task_id``,
``instruction``, ``robot_id``, ``policy_version``, ``source``, ``success``) repeated per frame so a
row is self-describing (parquet dictionary-encodes the repeats).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lwd.data.episode_io import IMAGE_PREFIX, REJECTED_COLUMNS, episode_from_frames, episode_to_table
from lwd.data.layout import EPISODE_STRING_COLUMNS
from lwd.types import Episode


@dataclass(frozen=True)
class PlacedEpisode:
    """An episode with its dataset coordinates (assigned by the writer)."""

    episode: Episode
    episode_index: int
    task_index: int
    first_frame: int
    """Global frame index of the episode's first row."""


def frames_table(placed: Sequence[PlacedEpisode], fps: float) -> pa.Table:
    """Concatenate the frame rows of ``placed`` episodes (rows: sum of T+1)."""
    tables = []
    for p in placed:
        ep = p.episode
        n = ep.length + 1
        t = episode_to_table(ep).replace_schema_metadata(None)
        t = t.drop_columns([c for c in REJECTED_COLUMNS if c in t.column_names])  # payloads only
        extra = {
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / np.float32(fps)),
            "episode_index": pa.array(np.full(n, p.episode_index, np.int64)),
            "index": pa.array(np.arange(p.first_frame, p.first_frame + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, p.task_index, np.int64)),
            "policy_version": pa.array(np.full(n, ep.policy_version, np.int64)),
            "success": pa.array(np.full(n, ep.success, bool)),
        }
        for name in EPISODE_STRING_COLUMNS:
            extra[name] = pa.array([getattr(ep, name)] * n, type=pa.string())
        for name, col in extra.items():
            t = t.append_column(name, col)
        tables.append(t)
    return pa.concat_tables(tables)


def episode_rows(p: PlacedEpisode, file_rel: str, file_number: int, chunks_size: int, from_row: int) -> dict:
    """The ``meta/episodes`` row of one placed episode stored in the ``file_number``-th data file
    (relative path ``file_rel``) at rows [from_row, from_row + T + 1)."""
    ep = p.episode
    n = ep.length + 1
    return {
        "episode_index": p.episode_index,
        "episode_id": ep.episode_id,
        "task_index": p.task_index,
        "task_id": ep.task_id,
        "instruction": ep.instruction,
        "tasks": [ep.instruction],
        "robot_id": ep.robot_id,
        "policy_version": int(ep.policy_version),
        "source": ep.source,
        "success": bool(ep.success),
        "length": ep.length,
        "num_frames": n,
        "num_interventions": int(np.count_nonzero(ep.intervention)),
        "seed": int(ep.seed),
        "condition": ep.condition,
        "stages": int(ep.stages),
        "stages_done": int(ep.stages_done),
        "data/chunk_index": file_number // chunks_size,
        "data/file_index": file_number % chunks_size,
        "data/file": file_rel,
        "data/from_row": from_row,
        "data/to_row": from_row + n,
        "dataset_from_index": p.first_frame,
        "dataset_to_index": p.first_frame + n,
    }


def _matrix(table: pa.Table, name: str) -> np.ndarray:
    """A fixed-size-list float column as float32 [rows, width]."""
    col = table.column(name).combine_chunks()
    width = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(col), width)


def decode_episodes(
    table: pa.Table, metas: Sequence[dict], image_shapes: dict[str, tuple[int, ...]]
) -> Iterator[Episode]:
    """Rebuild the episodes described by ``metas`` (``meta/episodes`` rows) from one file's ``table``.

    Raises ``ValueError`` if the rows do not match the index (wrong episode id or row count).
    """
    states = _matrix(table, "observation.state")
    actions = _matrix(table, "action")
    rewards = table.column("next.reward").to_numpy().astype(np.float32)
    interv = table.column("intervention").to_numpy(zero_copy_only=False).astype(bool)
    ep_ids = table.column("episode_id")
    cams = {cam: table.column(IMAGE_PREFIX + cam) for cam in image_shapes}
    for m in metas:
        lo, hi = int(m["data/from_row"]), int(m["data/to_row"])
        if hi > table.num_rows or hi - lo != int(m["length"]) + 1:
            raise ValueError(f"episode {m['episode_id']}: rows [{lo}, {hi}) do not fit the file")
        if ep_ids[lo].as_py() != m["episode_id"] or ep_ids[hi - 1].as_py() != m["episode_id"]:
            raise ValueError(f"episode {m['episode_id']}: rows [{lo}, {hi}) hold another episode")
        images = {}
        for cam, shape in image_shapes.items():
            raw = b"".join(cams[cam].slice(lo, hi - lo).to_pylist())
            images[cam] = np.frombuffer(raw, dtype=np.uint8).reshape(hi - lo, *shape).copy()
        yield episode_from_frames(
            m,
            states=states[lo:hi],
            actions=actions[lo:hi],
            rewards=rewards[lo:hi],
            intervention=interv[lo:hi],
            images=images,
        )
