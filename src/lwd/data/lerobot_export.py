"""lwd dataset -> LeRobot v3.0 dataset (``lwd export-lerobot``); format notes in :mod:`lwd.data.lerobot_format`.

Row t of an exported episode of T steps (t < T) holds the observation s_t (state, images), the action
a_t, ``next.reward`` r_t, ``next.done`` (t == T-1), ``next.success`` (t == T-1 and the episode
succeeded), ``intervention`` and ``policy_version``; the final observation s_T has no row and goes to
the episode's ``lwd/final_state`` / ``lwd/final_image.<cam>`` columns in ``meta/episodes``. LeRobot
task strings are lwd instructions; the lwd task id is ``lwd/task_id``. Images are PNG-encoded and
embedded in the parquet files (LeRobot's ``image`` dtype), so LeRobot reads them without video
decoding and the pixels survive exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lwd.data.dataset import LwdDataset
from lwd.data.layout import robot_spec_to_json
from lwd.data.lerobot_format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODE_FIELDS,
    EPISODES_PATH,
    EXPORT_FORMAT_VERSION,
    EXPORT_KEY,
    FINAL_IMAGE_COL,
    INFO_PATH,
    LWD_COL,
    STATS_PATH,
    TASKS_PATH,
    StagedDir,
    camera_key,
    encode_png,
    file_rel,
    hf_features_metadata,
    image_column,
    image_feature,
    index_features,
    parquet_bytes,
    scalar,
    tasks_table,
    vector,
)
from lwd.data.stats import RunningStats
from lwd.specs import RobotSpec
from lwd.types import Episode
from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class ExportSummary:
    """What ``lwd export-lerobot`` wrote."""

    out: str
    episodes: int
    frames: int
    """LeRobot rows: one per executed step (T per episode)."""
    tasks: int
    """Distinct task strings (lwd instructions)."""
    fps: int
    cameras: tuple[str, ...]


def export_fps(dataset_fps: float, fps: int) -> int:
    """The integer fps LeRobot gets: ``fps`` if > 0, else the dataset's when it is a whole number."""
    if fps > 0:
        return int(fps)
    if not (math.isfinite(dataset_fps) and dataset_fps >= 1 and float(dataset_fps).is_integer()):
        raise DataError(
            f"the dataset's fps {dataset_fps} is not a whole number and LeRobot v3 needs an integer fps; "
            "pass --fps N (timestamps become frame_index / N; the original fps is kept in info.json "
            f"{EXPORT_KEY}.fps)"
        )
    return int(dataset_fps)


def export_features(spec: RobotSpec) -> dict[str, dict[str, Any]]:
    """LeRobot ``features`` of an export: observations, action, the lwd per-step extras, the index."""
    feats: dict[str, dict[str, Any]] = {"observation.state": vector(spec.state_dim)}
    for cam in spec.cameras:
        feats[camera_key(cam)] = image_feature(spec.image_size)
    feats["action"] = vector(spec.action_dim)
    feats["next.reward"] = scalar("float32")
    feats["next.done"] = scalar("bool")
    feats["next.success"] = scalar("bool")
    feats["intervention"] = scalar("bool")
    feats["policy_version"] = scalar("int64")
    feats.update(index_features())
    return feats


def _fixed(rows: np.ndarray) -> pa.FixedSizeListArray:
    """float32 [n, w] -> fixed_size_list<float>[w] (HF ``List(length=w)``)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1), pa.float32()), rows.shape[1])


def _frames(ep: Episode, episode_index: int, task_index: int, first: int, fps: int) -> dict[str, pa.Array]:
    """The T rows of one episode (every column of :func:`export_features`)."""
    n = ep.length
    last = np.arange(n) == n - 1
    cols: dict[str, pa.Array] = {"observation.state": _fixed(ep.states[:-1])}
    for cam in sorted(ep.images):
        cols[camera_key(cam)] = image_column(ep.images[cam][:-1])
    cols["action"] = _fixed(ep.actions)
    cols["next.reward"] = pa.array(ep.rewards.astype(np.float32))
    cols["next.done"] = pa.array(last)
    cols["next.success"] = pa.array(last & bool(ep.success))
    cols["intervention"] = pa.array(ep.intervention.astype(bool))
    cols["policy_version"] = pa.array(np.full(n, ep.policy_version, np.int64))
    cols["timestamp"] = pa.array(np.arange(n, dtype=np.float32) / np.float32(fps))
    cols["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
    cols["episode_index"] = pa.array(np.full(n, episode_index, np.int64))
    cols["index"] = pa.array(np.arange(first, first + n, dtype=np.int64))
    cols["task_index"] = pa.array(np.full(n, task_index, np.int64))
    return cols


def _episode_row(ep: Episode, episode_index: int, first: int, file_number: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "episode_index": episode_index,
        "tasks": [ep.instruction],
        "length": ep.length,
        "data/chunk_index": file_number // CHUNKS_SIZE,
        "data/file_index": file_number % CHUNKS_SIZE,
        "dataset_from_index": first,
        "dataset_to_index": first + ep.length,
        "meta/episodes/chunk_index": file_number // CHUNKS_SIZE,
        "meta/episodes/file_index": file_number % CHUNKS_SIZE,
    }
    for name in EPISODE_FIELDS:
        row[LWD_COL + name] = getattr(ep, name)
    row[LWD_COL + "instruction"] = ep.instruction
    row[LWD_COL + "policy_version"] = int(ep.policy_version)
    row[LWD_COL + "success"] = bool(ep.success)
    row[LWD_COL + "seed"] = int(ep.seed)
    row[LWD_COL + "stages"] = int(ep.stages)
    row[LWD_COL + "stages_done"] = int(ep.stages_done)
    row[LWD_COL + "final_state"] = ep.states[-1].astype(np.float32).tolist()
    for cam in sorted(ep.images):
        row[FINAL_IMAGE_COL + cam] = encode_png(ep.images[cam][-1])
    return row


def _next_file(
    tmp: Path,
    number: int | None,
    writer: pq.ParquetWriter | None,
    rows: list[dict[str, Any]],
    features: dict[str, dict[str, Any]],
    schema_meta: dict[bytes, bytes],
) -> pq.ParquetWriter | None:
    """Close the current data file (and write its ``meta/episodes`` file from ``rows``, then cleared);
    open data file ``number`` unless it is None. Files go straight into the staging directory, which
    only becomes ``out`` once everything is written."""
    if writer is not None:
        writer.close()
        first = rows[0]
        done = first["data/chunk_index"] * CHUNKS_SIZE + first["data/file_index"]
        atomic_write_bytes(tmp / file_rel(EPISODES_PATH, done), parquet_bytes(pa.Table.from_pylist(rows)))
        rows.clear()
    if number is None:
        return None
    path = tmp / file_rel(DATA_PATH, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.table({k: _empty(ft) for k, ft in features.items()}).schema.with_metadata(schema_meta)
    return pq.ParquetWriter(path, schema, compression="zstd")


def _empty(ft: dict[str, Any]) -> pa.Array:
    """A zero-length column of a feature's Arrow type (as :func:`_frames` builds it)."""
    if ft["dtype"] == "image":
        return image_column(np.zeros((0, 1, 1, 3), np.uint8))
    if list(ft["shape"]) != [1]:
        return _fixed(np.zeros((0, ft["shape"][0]), np.float32))
    return pa.array([], {"bool": pa.bool_(), "int64": pa.int64(), "float32": pa.float32()}[ft["dtype"]])


class _Stats:
    """LeRobot ``stats.json`` (min/max/mean/std/count) of the state, action, reward and image features."""

    def __init__(self, spec: RobotSpec) -> None:
        self.acc = {
            "observation.state": RunningStats.empty(spec.state_dim),
            "action": RunningStats.empty(spec.action_dim),
            "next.reward": RunningStats.empty(1),
        }
        for cam in spec.cameras:
            self.acc[camera_key(cam)] = RunningStats.empty(3)

    def add(self, ep: Episode) -> None:
        self.acc["observation.state"].update(ep.states[:-1])
        self.acc["action"].update(ep.actions)
        self.acc["next.reward"].update(ep.rewards[:, None])
        for cam, frames in ep.images.items():  # per channel, scaled to [0, 1] like LeRobot
            self.acc[camera_key(cam)].update(frames[:-1].reshape(-1, 3) / 255.0)

    def to_json(self) -> dict[str, dict[str, list]]:
        out = {}
        for key, s in self.acc.items():
            shape = (3, 1, 1) if key.startswith("observation.images.") else (-1,)
            std = np.sqrt(s.m2 / max(s.count, 1))
            out[key] = {
                name: np.asarray(v, np.float64).reshape(shape).tolist()
                for name, v in (("min", s.min), ("max", s.max), ("mean", s.mean), ("std", std))
            }
            out[key]["count"] = [int(s.count)]
        return out


def export_lerobot(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fps: int = 0,
    episodes_per_file: int = 500,
    robot_type: str = "",
) -> ExportSummary:
    """Write the lwd dataset at ``src`` as a LeRobot v3.0 dataset at ``out`` (missing or empty).

    ``fps`` > 0 overrides the dataset's fps (needed when it is not a whole number);
    ``episodes_per_file`` episodes share one data file; ``robot_type`` defaults to the dataset's.
    Any error leaves nothing at ``out``.
    """
    ds = LwdDataset.open(src)
    if len(ds) == 0:
        raise DataError(f"dataset {src} has no episodes; nothing to export")
    out_fps = export_fps(ds.fps, fps)
    spec = ds.robot_spec
    features = export_features(spec)
    records = ds.episode_records
    task_strings = list(dict.fromkeys(r["instruction"] for r in records))
    task_index = {s: i for i, s in enumerate(task_strings)}
    schema_meta = {b"huggingface": hf_features_metadata(features)}
    stats = _Stats(spec)
    frames = episodes = 0
    with StagedDir(Path(out)) as tmp:
        writer: pq.ParquetWriter | None = None
        rows: list[dict[str, Any]] = []
        try:
            for ep in ds.iter_episodes():  # one episode in memory at a time (plus the lwd file it is in)
                number = episodes // episodes_per_file
                if episodes % episodes_per_file == 0:
                    writer = _next_file(tmp, number, writer, rows, features, schema_meta)
                cols = _frames(ep, episodes, task_index[ep.instruction], frames, out_fps)
                writer.write_table(
                    pa.table({k: cols[k] for k in features}).replace_schema_metadata(schema_meta)
                )
                rows.append(_episode_row(ep, episodes, frames, number))
                stats.add(ep)
                frames += ep.length
                episodes += 1
            writer = _next_file(tmp, None, writer, rows, features, schema_meta)
        finally:
            if writer is not None:
                writer.close()
        atomic_write_bytes(tmp / TASKS_PATH, parquet_bytes(tasks_table(task_strings)))
        atomic_write_json(tmp / STATS_PATH, stats.to_json())
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type or ds.info.get("robot_type") or "lwd",
            "total_episodes": episodes,
            "total_frames": frames,
            "total_tasks": len(task_strings),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": out_fps,
            "splits": {"train": f"0:{episodes}"},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": features,
            EXPORT_KEY: {
                "format_version": EXPORT_FORMAT_VERSION,
                "fps": ds.fps,
                "robot_spec": robot_spec_to_json(spec),
                "tasks": ds.info["lwd"]["tasks"],
                "final_observation": "meta/episodes columns lwd/final_state and lwd/final_image.<camera> (PNG)",
            },
        }
        atomic_write_json(tmp / INFO_PATH, info)
    return ExportSummary(str(out), episodes, frames, len(task_strings), out_fps, tuple(spec.cameras))
