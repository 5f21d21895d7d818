"""File-level helpers shared by the dataset writer and reader: reading and verifying committed files,
cleaning crash leftovers, refreshing the LeRobot mirrors (``tasks.parquet``, ``stats.json``).

Every failure on a committed file is a :class:`DataError` naming the file and what to do.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lwd.data.episode_io import read_parquet_bytes
from lwd.data.layout import INFO_PATH, STATS_PATH, TASKS_PATH, check_info
from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_bytes, atomic_write_json, sha256_file

_FIX = "restore it from a backup, or re-create the dataset (choose a new --out)"
MANAGED_DIRS = ("data", "meta/episodes")
"""Directories whose files exist only if ``info.json`` names them."""


def is_empty_dir(path: Path) -> bool:
    """True if ``path`` is missing or holds no regular files except hidden ones (temp files, locks)."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return all(f.name.startswith(".") for f in path.rglob("*") if f.is_file())


def read_info(root: Path) -> dict[str, Any]:
    """Parse and structurally validate ``meta/info.json``."""
    path = root / INFO_PATH
    if not root.is_dir():
        raise DataError(f"no dataset at {root}: the directory does not exist; check the path or collect one")
    if not path.is_file():
        raise DataError(
            f"{root} is not an lwd dataset: {INFO_PATH} is missing (an interrupted first write or the "
            "wrong path); check the path or re-create the dataset"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is garbled ({e}); {_FIX}") from e
    return check_info(info, str(path))


def verify_files(root: Path, info: dict[str, Any], checksums: bool = True) -> None:
    """Check that every committed file exists with its recorded size (and sha256)."""
    for rel, entry in info["lwd"]["files"].items():
        path = root / rel
        if not path.is_file():
            raise DataError(f"dataset {root}: committed file {rel} is missing; {_FIX}")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise DataError(
                f"dataset {root}: file {rel} is truncated or altered ({size} bytes, committed "
                f"{entry['bytes']}); {_FIX}"
            )
        if checksums:
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                raise DataError(
                    f"dataset {root}: file {rel} is corrupt (sha256 {digest[:12]}... != committed "
                    f"{entry['sha256'][:12]}...); {_FIX}"
                )


def read_parquet(root: Path, rel: str) -> pa.Table:
    """Read one committed parquet file; unreadable -> ``DataError`` naming it."""
    path = root / rel
    try:
        return read_parquet_bytes(path.read_bytes())
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"dataset {root}: cannot read {rel} (truncated or not parquet: {e}); {_FIX}") from e


def read_episode_rows(root: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """All ``meta/episodes`` rows in episode order, checked against ``info.json``'s totals."""
    rows: list[dict[str, Any]] = []
    for rel in info["lwd"]["episodes_files"]:
        rows.extend(read_parquet(root, rel).to_pylist())
    if len(rows) != info["total_episodes"]:
        raise DataError(
            f"dataset {root}: episodes index holds {len(rows)} episodes but info.json says "
            f"{info['total_episodes']}; {_FIX}"
        )
    for i, r in enumerate(rows):
        if r.get("episode_index") != i:
            raise DataError(f"dataset {root}: episodes index is out of order at row {i}; {_FIX}")
        if r.get("data/file") not in info["lwd"]["files"]:
            raise DataError(
                f"dataset {root}: episode {r.get('episode_id')} points to uncommitted file "
                f"{r.get('data/file')}; {_FIX}"
            )
    return rows


def remove_unreferenced(root: Path, info: dict[str, Any]) -> list[str]:
    """Delete crash leftovers: ``*.tmp`` files anywhere and files under the managed directories that
    ``info.json`` does not name. Returns the removed relative paths (writer only; readers never delete)."""
    referenced = set(info["lwd"]["files"])
    removed = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        managed = any(rel.startswith(d + "/") for d in MANAGED_DIRS)
        if path.name.endswith(".tmp") or (managed and rel not in referenced):
            path.unlink()
            removed.append(rel)
    return removed


def write_mirrors(root: Path, info: dict[str, Any]) -> None:
    """Refresh ``meta/tasks.parquet`` and ``meta/stats.json`` from the committed ``info.json``."""
    tasks = info["lwd"]["tasks"]
    table = pa.table(
        {
            "task_index": pa.array([t["task_index"] for t in tasks], type=pa.int64()),
            "task_id": pa.array([t["task_id"] for t in tasks], type=pa.string()),
            "task": pa.array([t["instructions"][0] for t in tasks], type=pa.string()),
            "instructions": pa.array([t["instructions"] for t in tasks], type=pa.list_(pa.string())),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(root / TASKS_PATH, buf.getvalue())
    atomic_write_json(root / STATS_PATH, info["lwd"].get("stats", {}))


def dataset_size_bytes(root: Path, info: dict[str, Any]) -> int:
    """Total bytes of committed files."""
    return sum(int(e["bytes"]) for e in info["lwd"]["files"].values())
