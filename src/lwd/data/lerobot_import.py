"""LeRobot v3.0 dataset -> lwd dataset (``lwd import-lerobot``); format notes in :mod:`lwd.data.lerobot_format`.

Two kinds of input:

- an lwd export (``info.json`` has ``lwd_export``, ``meta/episodes`` has ``lwd/final_state``): every
  row is a step and the final observation comes from ``lwd/final_*``, so the episode comes back
  exactly (rewards, interventions, ids, source, success, seed, condition, policy version);
- any other LeRobot dataset: an episode of T rows becomes T-1 steps whose final observation is the
  last row (its action is dropped: no observation follows it). lwd needs what LeRobot does not
  record: whether the episode succeeded (:class:`SuccessRule`, ``--success``), where it came from
  (``--source``, default ``demo``). Rewards are sparse (1 on the last step iff it succeeded),
  interventions come from a bool ``intervention`` feature if there is one, task ids are slugs of the
  task strings.

Everything is checked against ``info.json`` before any row is read; any failure is one
:class:`DataError` and leaves nothing at ``out``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lwd.data.dataset_writer import DatasetWriter
from lwd.data.episode_io import IMAGE_PREFIX
from lwd.data.layout import robot_spec_from_json
from lwd.data.lerobot_format import (
    EXPORT_KEY,
    FINAL_IMAGE_COL,
    INFO_PATH,
    LWD_COL,
    StagedDir,
    decode_image,
    read_info,
    read_table,
    read_tasks,
)
from lwd.specs import RobotSpec
from lwd.types import SOURCES, Episode
from lwd.utils.errors import DataError

SUCCESS_SPECS = "auto, all, none or column:NAME"
NUMERIC = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")


@dataclass(frozen=True)
class SuccessRule:
    """Where an episode's success comes from: ``auto`` (an lwd export's ``lwd/success``; refused for
    other datasets), ``all`` / ``none`` (every episode succeeded / failed), or ``column`` (a per-frame
    bool or number feature, true or > 0 on the episode's last frame)."""

    kind: str
    column: str = ""


def parse_success(spec: str) -> SuccessRule:
    """``"auto" | "all" | "none" | "column:NAME"`` -> rule; ``ValueError`` otherwise."""
    if spec in ("auto", "all", "none"):
        return SuccessRule(spec)
    if spec.startswith("column:") and spec[len("column:") :].strip():
        return SuccessRule("column", spec[len("column:") :].strip())
    raise ValueError(f"unknown success rule {spec!r}; use {SUCCESS_SPECS}")


@dataclass(frozen=True)
class ImportSummary:
    """What ``lwd import-lerobot`` wrote."""

    out: str
    episodes: int
    steps: int
    tasks: int
    cameras: tuple[str, ...]
    lwd_export: bool
    """True if the input was written by ``lwd export-lerobot`` (exact round trip)."""


def task_slug(task: str) -> str:
    """lwd task id of a LeRobot task string: lower-case words joined by ``-`` (at most 64 chars)."""
    return re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")[:64].strip("-") or "task"


@dataclass(frozen=True)
class _Plan:
    """Everything decided from ``info.json`` and the episodes index before any frame is read."""

    spec: RobotSpec
    fps: float
    cams: dict[str, str]
    """lwd camera name -> LeRobot feature key."""
    state_key: str
    action_key: str
    success: SuccessRule
    source: str
    """lwd source of episodes that are not an lwd export."""
    is_export: bool
    has_intervention: bool
    tasks: list[str]
    episodes: list[dict[str, Any]]


def _vector_dim(info: dict, key: str, what: str, src: Path) -> int:
    ft = info["features"].get(key)
    if ft is None:
        raise DataError(
            f"LeRobot dataset {src} has no {what} feature {key!r}; features: "
            f"{sorted(info['features'])}; name it with --{what}-key"
        )
    if ft.get("dtype") not in NUMERIC[5:] or len(ft.get("shape", ())) != 1:
        raise DataError(
            f"LeRobot dataset {src}: {what} feature {key!r} must be a float vector, got "
            f"dtype {ft.get('dtype')!r} shape {ft.get('shape')}"
        )
    return int(ft["shape"][0])


def _cameras(info: dict, cameras: str, src: Path) -> dict[str, str]:
    visual = {k: ft["dtype"] for k, ft in info["features"].items() if ft.get("dtype") in ("image", "video")}
    if cameras == "none":
        return {}
    wanted = list(visual) if cameras == "all" else [c.strip() for c in cameras.split(",") if c.strip()]
    out = {}
    for name in wanted:
        key = name if name in visual else IMAGE_PREFIX + name
        if key not in visual:
            raise DataError(
                f"LeRobot dataset {src} has no camera {name!r}; cameras: {sorted(visual) or 'none'}"
            )
        if visual[key] == "video":
            raise DataError(
                f"camera {key!r} of {src} is stored as video, which lwd does not decode; pass "
                "--cameras with the image cameras only, or none"
            )
        out[key.removeprefix(IMAGE_PREFIX)] = key
    return out


def _image_size(info: dict, cams: dict[str, str], src: Path) -> int:
    sizes = set()
    for key in cams.values():
        ft = info["features"][key]
        shape, names = list(ft.get("shape", ())), ft.get("names") or []
        channels_first = len(shape) == 3 and (names[:1] in (["channels"], ["channel"]) or shape[-1] != 3)
        h, w = (shape[1], shape[2]) if channels_first else tuple(shape[:2])
        sizes.add((int(h), int(w)))
    if len(sizes) > 1 or any(h != w for h, w in sizes):
        raise DataError(
            f"LeRobot dataset {src}: lwd needs square images of one size for every camera, got "
            f"{sorted(sizes)}; pick cameras with --cameras"
        )
    return sizes.pop()[0] if sizes else 0


def _episode_rows(src: Path, info: dict) -> list[dict[str, Any]]:
    files = sorted((src / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise DataError(f"LeRobot dataset {src} has no meta/episodes files; not a LeRobot v3.0 dataset")
    rows: list[dict[str, Any]] = []
    for f in files:
        rel = f.relative_to(src).as_posix()
        table = read_table(src, rel)
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows.extend(table.select(keep).to_pylist())
    rows.sort(key=lambda r: r.get("episode_index", -1))
    if [r.get("episode_index") for r in rows] != list(range(int(info["total_episodes"]))):
        raise DataError(
            f"LeRobot dataset {src}: meta/episodes does not list episodes 0..{info['total_episodes'] - 1}"
        )
    return rows


def _plan(
    src: Path, success: SuccessRule, source: str, cameras: str, state_key: str, action_key: str
) -> _Plan:
    info = read_info(src)
    if int(info["total_episodes"]) < 1:
        raise DataError(f"LeRobot dataset {src} has no episodes; nothing to import")
    state_dim = _vector_dim(info, state_key, "state", src)
    action_dim = _vector_dim(info, action_key, "action", src)
    cams = _cameras(info, cameras, src)
    episodes = _episode_rows(src, info)
    is_export = EXPORT_KEY in info and LWD_COL + "final_state" in episodes[0]
    if success.kind == "auto" and not is_export:
        raise DataError(
            f"LeRobot dataset {src} has no success signal lwd can read; say where it is with "
            "--success all|none|column:NAME (e.g. all for demonstrations)"
        )
    if success.kind == "column":
        ft = info["features"].get(success.column)
        if ft is None or ft.get("dtype") not in NUMERIC or list(ft.get("shape", ())) != [1]:
            raise DataError(
                f"--success column:{success.column}: LeRobot dataset {src} has no per-frame bool "
                f"or number feature {success.column!r}"
            )
    size = _image_size(info, cams, src)
    fps = float(info["fps"])
    spec = RobotSpec(state_dim, action_dim, tuple(cams), size, control_hz=fps)
    if is_export:
        exported = info[EXPORT_KEY]
        fps = float(exported.get("fps", fps))
        spec = RobotSpec(
            state_dim,
            action_dim,
            tuple(cams),
            size,
            control_hz=robot_spec_from_json(exported["robot_spec"]).control_hz,
        )
    ivn = info["features"].get("intervention", {})
    has_ivn = ivn.get("dtype") == "bool" and list(ivn.get("shape", ())) == [1]
    return _Plan(
        spec, fps, cams, state_key, action_key, success, source, is_export, has_ivn, read_tasks(src), episodes
    )


def _matrix(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name).combine_chunks()
    width = col.type.list_size if pa.types.is_fixed_size_list(col.type) else len(col[0].as_py())
    return np.asarray(col.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(len(col), width)


def _images(table: pa.Table, key: str, where: str) -> np.ndarray:
    col = table.column(key).combine_chunks()
    blobs = col.field("bytes").to_pylist() if pa.types.is_struct(col.type) else col.to_pylist()
    if any(b is None for b in blobs):
        raise DataError(f"{where}: camera {key!r} has frames without embedded image bytes")
    return np.stack([decode_image(b) for b in blobs])


def check_steps(states: np.ndarray, actions: np.ndarray, plan: _Plan, where: str) -> None:
    """Refuse non-finite states/actions and actions outside lwd's [-1, 1] (``DataError``, one line)."""
    for name, key, arr in (("state", plan.state_key, states), ("action", plan.action_key, actions)):
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: column {key!r} ({name}) holds non-finite values")
    worst = float(np.abs(actions).max()) if actions.size else 0.0
    if worst > 1.0 + 1e-6:
        raise DataError(f"{where}: column {plan.action_key!r} reaches |a| = {worst:.4g}; lwd policies act in "
                        "[-1, 1]: rescale the actions to the robot's bounds before importing")  # fmt: skip


def _episode(plan: _Plan, meta: dict[str, Any], rows: pa.Table, ident: str, robot: str) -> Episode:
    """One lwd Episode from an episode's LeRobot rows (sorted by frame_index) and its index row."""
    e = int(meta["episode_index"])
    where = f"episode {e}"
    n = rows.num_rows
    task_idx = set(rows.column("task_index").to_pylist())
    if len(task_idx) != 1:
        raise DataError(f"{where} has {len(task_idx)} tasks; an lwd episode carries one instruction")
    instruction = plan.tasks[task_idx.pop()]
    states, actions = _matrix(rows, plan.state_key), _matrix(rows, plan.action_key)
    images = {cam: _images(rows, key, where) for cam, key in plan.cams.items()}
    check_steps(states, actions, plan, where)
    rule = plan.success
    if rule.kind == "column":
        success = bool(np.asarray(rows.column(rule.column).to_pylist()[-1], np.float64) > 0)
    elif rule.kind == "auto":
        success = bool(meta[LWD_COL + "success"])
    else:
        success = rule.kind == "all"
    if plan.is_export:
        get = lambda name, default=None: meta.get(LWD_COL + name, default)  # noqa: E731
        states = np.concatenate([states, np.asarray([get("final_state")], np.float32)])
        for cam in plan.cams:
            last = decode_image(meta[FINAL_IMAGE_COL + cam])[None]
            images[cam] = np.concatenate([images[cam], last])
        rewards = np.asarray(rows.column("next.reward").to_pylist(), np.float32)
        ivn = np.asarray(rows.column("intervention").to_pylist(), bool)
        fields = dict(
            episode_id=get("episode_id"),
            task_id=get("task_id"),
            robot_id=get("robot_id"),
            policy_version=int(get("policy_version")),
            source=get("source"),
            seed=int(get("seed")),
            condition=get("condition"),
            stages=int(get("stages") or 0),
            stages_done=int(get("stages_done") or 0),
        )
    else:
        if n < 2:
            raise DataError(
                f"{where} has {n} frame; lwd needs at least 2 (one step and its next observation)"
            )
        actions = actions[:-1]
        rewards = np.zeros(n - 1, np.float32)
        rewards[-1] = float(success)
        ivn = (
            np.asarray(rows.column("intervention").to_pylist(), bool)[:-1]
            if plan.has_intervention
            else np.zeros(n - 1, bool)
        )
        fields = dict(
            episode_id=f"lerobot-{ident}-{e:06d}",
            task_id=task_slug(instruction),
            robot_id=robot,
            policy_version=0,
            source=plan.source,
            seed=-1,
            condition="lab",
        )
    return Episode(
        instruction=instruction,
        success=success,
        states=states,
        actions=actions,
        rewards=rewards,
        intervention=ivn,
        images=images,
        **fields,
    )


def import_lerobot(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    success: str = "auto",
    source: str = "demo",
    cameras: str = "all",
    state_key: str = "observation.state",
    action_key: str = "action",
    episodes_per_file: int = 50,
) -> ImportSummary:
    """Turn the LeRobot v3.0 dataset at ``src`` into an lwd dataset at ``out`` (missing or empty).

    ``success``: ``auto | all | none | column:NAME`` (:class:`SuccessRule`); ``source``: the lwd source
    of episodes that are not an lwd export; ``cameras``: ``all``, ``none`` or comma-separated names.
    """
    src = Path(src)
    try:
        rule = parse_success(success)
    except ValueError as e:
        raise DataError(str(e)) from e
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    plan = _plan(src, rule, source, cameras, state_key, action_key)
    info = read_info(src)
    ident = hashlib.sha256((src / INFO_PATH).read_bytes()).hexdigest()[:8]
    robot = str(info.get("robot_type") or "lerobot")
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in plan.episodes:
        rel = info["data_path"].format(chunk_index=m["data/chunk_index"], file_index=m["data/file_index"])
        by_file[rel].append(m)
    columns = [
        plan.state_key,
        plan.action_key,
        "episode_index",
        "frame_index",
        "task_index",
        *plan.cams.values(),
    ]
    columns += [rule.column] if rule.kind == "column" else []
    columns += (
        ["next.reward", "intervention"] if plan.is_export else (["intervention"] * plan.has_intervention)
    )
    steps = 0
    with StagedDir(Path(out)) as tmp:
        with DatasetWriter(tmp, plan.spec, plan.fps, episodes_per_file=episodes_per_file) as writer:
            for rel, metas in by_file.items():
                table = read_table(src, rel, columns=list(dict.fromkeys(columns)))
                ep_col = np.asarray(table.column("episode_index").to_numpy(zero_copy_only=False))
                for m in metas:
                    idx = np.flatnonzero(ep_col == int(m["episode_index"]))
                    rows = table.take(pa.array(idx))
                    order = np.argsort(np.asarray(rows.column("frame_index").to_numpy(zero_copy_only=False)))
                    rows = rows.take(pa.array(order))
                    if rows.num_rows != int(m["length"]):
                        raise DataError(
                            f"LeRobot dataset {src}: episode {m['episode_index']} has "
                            f"{rows.num_rows} rows in {rel}, its index says {m['length']}"
                        )
                    try:
                        ep = _episode(plan, m, rows, ident, robot)
                        ep.validate()
                        writer.add(ep)
                    except (ValueError, KeyError, TypeError) as e:
                        raise DataError(
                            f"LeRobot dataset {src}: episode {m['episode_index']} cannot become an "
                            f"lwd episode: {e}"
                        ) from e
                    steps += ep.length
    return ImportSummary(
        str(out), len(plan.episodes), steps, len(plan.tasks), tuple(plan.cams), plan.is_export
    )
