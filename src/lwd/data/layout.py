"""On-disk layout of an lwd dataset (LeRobot v3 compatible) and its ``meta/info.json``.

::

    root/
      data/chunk-000/file-000.parquet       frames: one row per frame, many episodes per file
      meta/info.json                        the commit record (written atomically, last)
      meta/episodes/chunk-000/file-000.parquet   one row per episode (one file per flush)
      meta/tasks.parquet                    task_index, task_id, instructions
      meta/stats.json                       per-feature mean/std/min/max

``info.json`` is the single commit point: a data or episodes-index file only belongs to the dataset
once ``info.json`` names it (with its sha256 and size). ``tasks.parquet`` and ``stats.json`` are
LeRobot-compatible mirrors of the ``lwd.tasks`` / ``lwd.stats`` entries of ``info.json``, rewritten
after each commit; readers take the authoritative copy from ``info.json``.

Deviations from LeRobot v3 (documented in ``info.json`` under ``lwd``): an episode of T steps has
T+1 frames (the final observation has ``has_action = False``), and images are raw uint8 RGB bytes in
zstd-compressed binary columns instead of PNG structs or mp4 videos.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lwd.data.episode_io import IMAGE_PREFIX
from lwd.specs import RobotSpec
from lwd.utils.errors import DataError

CODEBASE_VERSION = "v3.0"
LWD_FORMAT_VERSION = 1
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_PATH = "meta/stats.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_CHUNKS_SIZE = 1000
"""Files per chunk directory (LeRobot's default)."""

# Frame columns added by the dataset on top of the episode payload columns of ``episode_io``.
EPISODE_STRING_COLUMNS = ("episode_id", "task_id", "instruction", "robot_id", "source")


def file_path(template: str, file_number: int, chunks_size: int) -> str:
    """Relative path of the ``file_number``-th file (0-based, global) under ``template``."""
    return template.format(chunk_index=file_number // chunks_size, file_index=file_number % chunks_size)


def features(spec: RobotSpec) -> dict[str, dict[str, Any]]:
    """LeRobot-style feature descriptions (dtype, shape, names) of every frame column."""

    def scalar(dtype: str) -> dict[str, Any]:
        return {"dtype": dtype, "shape": [1], "names": None}

    feats: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": [spec.state_dim], "names": None},
        "action": {"dtype": "float32", "shape": [spec.action_dim], "names": None},
        "next.reward": scalar("float32"),
        "intervention": scalar("bool"),
        "has_action": scalar("bool"),
        "frame_index": scalar("int32"),
        "timestamp": scalar("float32"),
        "episode_index": scalar("int64"),
        "index": scalar("int64"),
        "task_index": scalar("int64"),
        "policy_version": scalar("int64"),
        "success": scalar("bool"),
    }
    for name in EPISODE_STRING_COLUMNS:
        feats[name] = scalar("string")
    for cam in spec.cameras:
        feats[IMAGE_PREFIX + cam] = {
            "dtype": "image",
            "shape": [spec.image_size, spec.image_size, 3],
            "names": ["height", "width", "channel"],
            "info": {"lwd.encoding": "raw uint8 RGB bytes, row-major [H, W, 3]"},
        }
    return feats


def robot_spec_to_json(spec: RobotSpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    d["cameras"] = list(spec.cameras)
    return d


def robot_spec_from_json(d: dict[str, Any]) -> RobotSpec:
    return RobotSpec(
        state_dim=int(d["state_dim"]),
        action_dim=int(d["action_dim"]),
        cameras=tuple(d.get("cameras", ())),
        image_size=int(d.get("image_size", 0)),
        control_hz=float(d.get("control_hz", 80.0)),
    )


def new_info(spec: RobotSpec, fps: float, robot_type: str, chunks_size: int) -> dict[str, Any]:
    """``info.json`` of an empty dataset."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "fps": fps,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "splits": {"train": "0:0"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features(spec),
        "lwd": {
            "format_version": LWD_FORMAT_VERSION,
            "commit": 0,
            "robot_spec": robot_spec_to_json(spec),
            "frames_per_episode": "T+1 (final observation row has has_action=False)",
            "data_files": [],
            "episodes_files": [],
            "files": {},
            "tasks": [],
            "stats_accumulator": {},
            "stats": {},
        },
    }


def check_info(info: Any, where: str) -> dict[str, Any]:
    """Validate the structure of a parsed ``info.json``; raise ``DataError`` naming ``where``."""
    fix = "restore it from a backup or re-create the dataset"
    if not isinstance(info, dict):
        raise DataError(f"{where} is garbled (not a JSON object); {fix}")
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DataError(
            f"{where}: codebase_version {info.get('codebase_version')!r} is not {CODEBASE_VERSION!r}; "
            "convert the dataset to LeRobot v3 or re-create it"
        )
    lwd = info.get("lwd")
    required = ("format_version", "commit", "robot_spec", "data_files", "episodes_files", "files", "tasks")
    if not isinstance(lwd, dict):
        raise DataError(f"{where} has no 'lwd' section: not an lwd dataset; {fix}")
    missing = [k for k in required if k not in lwd]
    if missing:
        raise DataError(f"{where} is garbled: 'lwd' section lacks {missing}; {fix}")
    if lwd["format_version"] != LWD_FORMAT_VERSION:
        raise DataError(f"{where}: unsupported lwd format_version {lwd['format_version']!r}")
    for key in ("fps", "total_episodes", "total_frames"):
        if key not in info:
            raise DataError(f"{where} is garbled: missing {key!r}; {fix}")
    return info
