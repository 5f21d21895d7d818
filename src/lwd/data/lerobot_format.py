"""What lwd reads and writes of the LeRobot v3.0 dataset format (shared by export and import).

A LeRobot v3.0 dataset (``codebase_version`` ``"v3.0"``)::

    root/
      meta/info.json                               fps (int), features, totals, path templates
      meta/tasks.parquet                           task string (pandas index) -> task_index
      meta/episodes/chunk-000/file-000.parquet     one row per episode: tasks, length, where its rows are
      meta/stats.json                              per-feature min/max/mean/std/count
      data/chunk-000/file-000.parquet              one row per frame, many episodes per file

Differences from lwd's own layout (:mod:`lwd.data.layout`) that the exporter bridges: an episode of T
steps is T rows (lwd: T+1, the last row holding the final observation), ``fps`` is an integer, and
image features are ``struct<bytes: binary, path: string>`` holding PNG bytes (HF ``datasets.Image``;
lwd: raw uint8 bytes). What LeRobot has no column for is kept so that the round trip is lossless:
per-frame features ``next.reward``, ``next.done``, ``next.success``, ``intervention``,
``policy_version``; per-episode columns ``lwd/...`` in ``meta/episodes`` (ids, source, success, seed,
condition, the final observation); and an ``info.json`` key ``lwd_export`` (original fps, robot spec,
task ids with their instructions).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lwd.data.episode_io import IMAGE_PREFIX
from lwd.utils.errors import DataError

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_PATH = "meta/stats.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS_SIZE = 1000
EXPORT_KEY = "lwd_export"
"""``info.json`` key of an lwd export (original fps, robot spec, task ids)."""
EXPORT_FORMAT_VERSION = 1
LWD_COL = "lwd/"
"""Prefix of the per-episode lwd columns in ``meta/episodes``."""
FINAL_IMAGE_COL = LWD_COL + "final_image."
"""``meta/episodes`` column prefix of the final observation's PNG image per camera."""
EPISODE_FIELDS = ("episode_id", "task_id", "robot_id", "source", "condition")
"""String episode fields of an lwd episode kept as ``lwd/<name>`` columns (plus policy_version,
success, seed, final_state and the final images)."""
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def scalar(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [1], "names": None}


def vector(dim: int) -> dict[str, Any]:
    return {"dtype": "float32", "shape": [dim], "names": None}


def image_feature(size: int) -> dict[str, Any]:
    return {"dtype": "image", "shape": [size, size, 3], "names": ["height", "width", "channels"]}


def index_features() -> dict[str, dict[str, Any]]:
    """The five columns every LeRobot frame has."""
    return {
        "timestamp": scalar("float32"),
        "frame_index": scalar("int64"),
        "episode_index": scalar("int64"),
        "index": scalar("int64"),
        "task_index": scalar("int64"),
    }


def file_rel(template: str, number: int) -> str:
    return template.format(chunk_index=number // CHUNKS_SIZE, file_index=number % CHUNKS_SIZE)


# ---- images ----------------------------------------------------------------------------------------


def encode_png(img: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (lossless)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W, 3] (RGB). Raises ``ValueError`` if not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"not a readable image ({len(data)} bytes): {e}") from e


def image_column(frames: np.ndarray) -> pa.StructArray:
    """uint8 [n, H, W, 3] -> HF ``datasets.Image`` column ``struct<bytes, path>`` of PNGs."""
    return pa.StructArray.from_arrays(
        [pa.array([encode_png(f) for f in frames], type=pa.binary()), pa.nulls(len(frames), pa.string())],
        names=["bytes", "path"],
    )


def camera_key(cam: str) -> str:
    return IMAGE_PREFIX + cam


# ---- files ----------------------------------------------------------------------------------------


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def hf_features_metadata(features: dict[str, dict[str, Any]]) -> bytes:
    """The ``huggingface`` schema metadata HF ``datasets`` writes, so readers other than LeRobot (which
    passes the features itself) also see images as images."""
    out: dict[str, Any] = {}
    for name, ft in features.items():
        if ft["dtype"] == "image":
            out[name] = {"_type": "Image"}
        elif list(ft["shape"]) == [1]:
            out[name] = {"dtype": ft["dtype"], "_type": "Value"}
        else:
            out[name] = {
                "feature": {"dtype": ft["dtype"], "_type": "Value"},
                "length": ft["shape"][0],
                "_type": "List",
            }
    return json.dumps({"info": {"features": out}}).encode()


def tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet`` as LeRobot writes it with pandas: the task string is the (unnamed)
    index, ``task_index`` the one column; the ``pandas`` metadata makes ``pd.read_parquet`` restore it."""
    meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "__index_level_0__": tasks})
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def read_tasks(root: Path) -> list[str]:
    """Task strings in ``task_index`` order from ``meta/tasks.parquet`` (index column or ``task``)."""
    table = read_table(root, TASKS_PATH)
    pandas_meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    names = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)] + ["task"]
    col = next((c for c in names if c in table.column_names), None)
    if col is None or "task_index" not in table.column_names:
        raise DataError(f"LeRobot dataset {root}: {TASKS_PATH} has no task strings and task_index columns")
    by_index = dict(zip(table.column("task_index").to_pylist(), table.column(col).to_pylist(), strict=True))
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(f"LeRobot dataset {root}: {TASKS_PATH} task_index is not 0..{len(by_index) - 1}")
    return [str(by_index[i]) for i in range(len(by_index))]


def read_table(root: Path, rel: str, columns: list[str] | None = None) -> pa.Table:
    """One parquet file of a LeRobot dataset; unreadable -> ``DataError`` naming it."""
    try:
        return pq.ParquetFile(root / rel, pre_buffer=False).read(columns=columns, use_threads=False)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"LeRobot dataset {root}: cannot read {rel} ({e})") from e


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json`` of a LeRobot v3.0 dataset, checked for the keys lwd needs."""
    path = root / INFO_PATH
    if not path.is_file():
        raise DataError(f"{root} is not a LeRobot dataset: {INFO_PATH} is missing; check the path")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(info, dict):
        raise DataError(f"{path} is not a JSON object")
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise DataError(
            f"{path}: codebase_version {version!r} is not {CODEBASE_VERSION!r}; convert it with "
            "LeRobot's v2.1 -> v3.0 converter first"
        )
    for key in ("fps", "features", "total_episodes", "total_frames"):
        if key not in info:
            raise DataError(f"{path} lacks {key!r}: not a LeRobot v3.0 dataset")
    return info


class StagedDir:
    """Write a directory tree under a hidden sibling and move it into place on success, so a failed
    export or import leaves nothing at ``out`` (which must be missing or an empty directory)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise DataError(f"{self.out} exists and is not an empty directory; choose another --out")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.out.is_dir():
            self.out.rmdir()  # empty (checked on entry)
        os.replace(self.tmp, self.out)
