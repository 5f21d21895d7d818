"""Checksummed checkpoint directories: a set of files plus ``manifest.json`` with their sha256.

Written atomically: files go to a hidden temp directory next to the target, are fsynced, the
manifest is written last, then the directory is renamed into place. A reader calls
:func:`verify_checkpoint_dir`, which refuses a missing manifest (partial write), a missing file, or a
checksum mismatch with a :class:`~lwd.utils.errors.DataError` naming the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lwd.utils.errors import DataError
from lwd.utils.io import fsync_dir, sha256_bytes, sha256_file

MANIFEST = "manifest.json"


def write_checkpoint_dir(
    target: str | os.PathLike, files: dict[str, bytes], manifest: dict[str, Any], manifest_name: str = MANIFEST
) -> Path:
    """Atomically create directory ``target`` holding ``files`` and a manifest (``manifest_name``,
    written last).

    ``manifest`` is extended with ``files: {name: {sha256, bytes}}``. Fails if ``target`` exists.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"checkpoint {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        entries = {}
        for name, data in files.items():
            if "/" in name or name == manifest_name:
                raise ValueError(f"invalid checkpoint file name {name!r}")
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            entries[name] = {"sha256": sha256_bytes(data), "bytes": len(data)}
        full = dict(manifest)
        full["files"] = entries
        with open(tmp / manifest_name, "w", encoding="utf-8") as f:
            json.dump(full, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def verify_checkpoint_dir(path: str | os.PathLike, manifest_name: str = MANIFEST) -> dict[str, Any]:
    """Check every file against the manifest (``manifest_name`` in ``path``); return the manifest or
    raise ``DataError``."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"checkpoint {path} does not exist; check the path or run the stage that creates it")
    mpath = path / manifest_name
    if not mpath.is_file():
        raise DataError(
            f"checkpoint {path} has no {manifest_name}: it is partial or not a checkpoint; delete or re-create it"
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        entries = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"checkpoint {path}: unreadable {manifest_name} ({e})") from e
    for name, entry in entries.items():
        fpath = path / name
        if not fpath.is_file():
            raise DataError(f"checkpoint {path}: file {name} listed in {manifest_name} is missing")
        digest = sha256_file(fpath)
        if digest != entry["sha256"]:
            raise DataError(
                f"checkpoint {path}: {name} is corrupt (sha256 {digest[:12]}... != {manifest_name} {entry['sha256'][:12]}...)"
            )
    return manifest
