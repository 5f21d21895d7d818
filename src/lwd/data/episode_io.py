"""One episode <-> one Arrow table / parquet payload (no pickle anywhere).

Row layout (LeRobot-v3 style: one row per frame). An episode of T steps has T+1 rows: row t holds
the observation s_t and, for t < T, the action a_t taken from it with its reward and intervention
flag; the last row holds the final observation s_T with ``has_action = False`` (action zeros).

Columns:
  observation.state          list<float32>[d]
  observation.images.<cam>   binary (raw uint8 H*W*3 bytes; parquet zstd-compresses it)
  action                     list<float32>[a]
  next.reward                float32
  intervention               bool
  has_action                 bool
  frame_index                int32
  rejected                   bool        (schema 2, only if the episode has rejected proposals)
  rejected.action            list<float32>[k*a]  the policy's proposal the human rejected at that
                                         frame's state (zeros where ``rejected`` is False)
Episode-level fields (ids, instruction, source, success, image shapes, the rejected chunk shape,
schema version) live in the table's key-value metadata under ``lwd.episode`` as JSON. Schema 1
payloads (no rejected proposals) still load.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lwd.types import Episode

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
REJECTED_COLUMNS = ("rejected", "rejected.action")
META_KEY = b"lwd.episode"
IMAGE_PREFIX = "observation.images."


def _fixed_list(arr: np.ndarray) -> pa.FixedSizeListArray:
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=pa.float32()), arr.shape[1])


def episode_to_table(ep: Episode) -> pa.Table:
    """Convert a validated episode to an Arrow table (T+1 rows)."""
    ep.validate()
    t = ep.length
    a_dim = ep.actions.shape[1]
    actions = np.concatenate([ep.actions.astype(np.float32), np.zeros((1, a_dim), np.float32)])
    rewards = np.concatenate([ep.rewards.astype(np.float32), np.zeros(1, np.float32)])
    interv = np.concatenate([ep.intervention.astype(bool), np.zeros(1, bool)])
    has_action = np.ones(t + 1, bool)
    has_action[-1] = False
    cols: dict[str, pa.Array] = {
        "observation.state": _fixed_list(ep.states),
        "action": _fixed_list(actions),
        "next.reward": pa.array(rewards, type=pa.float32()),
        "intervention": pa.array(interv, type=pa.bool_()),
        "has_action": pa.array(has_action, type=pa.bool_()),
        "frame_index": pa.array(np.arange(t + 1, dtype=np.int32)),
    }
    r, k = int(ep.rejected_steps.shape[0]), 0
    if r:
        k = int(ep.rejected_actions.shape[1])
        has = np.zeros(t + 1, bool)
        has[ep.rejected_steps] = True
        proposals = np.zeros((t + 1, k * a_dim), np.float32)
        proposals[ep.rejected_steps] = ep.rejected_actions.reshape(r, -1)
        cols["rejected"] = pa.array(has, type=pa.bool_())
        cols["rejected.action"] = _fixed_list(proposals)
    image_shapes = {}
    for cam, frames in sorted(ep.images.items()):
        image_shapes[cam] = list(frames.shape[1:])
        flat = np.ascontiguousarray(frames).reshape(t + 1, -1)
        cols[IMAGE_PREFIX + cam] = pa.array([row.tobytes() for row in flat], type=pa.binary())
    meta = {
        "schema_version": SCHEMA_VERSION,
        "episode_id": ep.episode_id,
        "task_id": ep.task_id,
        "instruction": ep.instruction,
        "robot_id": ep.robot_id,
        "policy_version": int(ep.policy_version),
        "source": ep.source,
        "success": bool(ep.success),
        "seed": int(ep.seed),
        "condition": ep.condition,
        "stages": int(ep.stages),
        "stages_done": int(ep.stages_done),
        "image_shapes": image_shapes,
        "rejected_chunk": [k, a_dim] if r else None,
    }
    table = pa.table(cols)
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def episode_from_table(table: pa.Table) -> Episode:
    """Inverse of :func:`episode_to_table`; raises ``ValueError`` on a malformed table."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError("not an lwd episode table: missing 'lwd.episode' metadata")
    meta = json.loads(raw)
    if meta.get("schema_version") not in READABLE_SCHEMAS:
        raise ValueError(f"unsupported episode schema version {meta.get('schema_version')!r}")
    n = table.num_rows
    if n < 2:
        raise ValueError(f"episode table has {n} rows; need at least 2 (one step)")

    def mat(name: str) -> np.ndarray:
        col = table.column(name).combine_chunks()
        width = col.type.list_size
        return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, width)

    images = {}
    for cam, shape in meta["image_shapes"].items():
        col = table.column(IMAGE_PREFIX + cam).to_pylist()
        images[cam] = np.frombuffer(b"".join(col), dtype=np.uint8).reshape(n, *shape).copy()
    ep = episode_from_frames(
        meta,
        states=mat("observation.state"),
        actions=mat("action"),
        rewards=table.column("next.reward").to_numpy().astype(np.float32),
        intervention=table.column("intervention").to_numpy(zero_copy_only=False).astype(bool),
        images=images,
    )
    chunk = meta.get("rejected_chunk")
    if chunk:
        if not all(c in table.column_names for c in REJECTED_COLUMNS):
            raise ValueError("episode table declares rejected proposals but lacks their columns")
        steps = np.flatnonzero(table.column("rejected").to_numpy(zero_copy_only=False).astype(bool))
        k, a = (int(c) for c in chunk)
        acts = mat("rejected.action")[steps]
        if acts.shape[1] != k * a:
            raise ValueError(f"rejected.action rows hold {acts.shape[1]} values, not k*a = {k}*{a}")
        ep.rejected_steps, ep.rejected_actions = steps.astype(np.int64), acts.reshape(-1, k, a)
        ep.validate()
    return ep


def episode_from_frames(
    meta: dict,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    intervention: np.ndarray,
    images: dict[str, np.ndarray],
) -> Episode:
    """A validated Episode from its metadata and T+1 frame rows (the last frame carries no action).

    ``states`` [T+1, d], ``actions`` [T+1, a], ``rewards`` / ``intervention`` [T+1], ``images`` cam ->
    [T+1, H, W, 3]. The one place the row layout maps back to an Episode (payloads and datasets).
    """
    ep = Episode(
        episode_id=meta["episode_id"],
        task_id=meta["task_id"],
        instruction=meta["instruction"],
        robot_id=meta["robot_id"],
        policy_version=int(meta["policy_version"]),
        source=meta["source"],
        success=bool(meta["success"]),
        states=np.array(states, dtype=np.float32),
        actions=np.array(actions[:-1], dtype=np.float32),
        rewards=np.array(rewards[:-1], dtype=np.float32),
        intervention=np.array(intervention[:-1], dtype=bool),
        images=images,
        seed=int(meta.get("seed", -1)),
        condition=meta.get("condition", "lab"),
        stages=int(meta.get("stages") or 0),  # absent (or None) in datasets written before stages
        stages_done=int(meta.get("stages_done") or 0),
    )
    ep.validate()
    return ep


def episode_to_bytes(ep: Episode) -> bytes:
    """Serialise one episode to a self-describing parquet payload (zstd)."""
    buf = io.BytesIO()
    pq.write_table(episode_to_table(ep), buf, compression="zstd")
    return buf.getvalue()


def read_parquet_bytes(data: bytes) -> pa.Table:
    """Read a whole parquet file held in memory, synchronously on the calling thread.

    ``pq.read_table`` goes through the dataset scanner, whose pre-buffering leaves read-ahead futures
    on Arrow's I/O threads holding references to the Python bytes; one finishing while the
    interpreter finalises must re-take the GIL, is force-unwound through noexcept C++ destructors and
    aborts the process ("terminate called without an active exception", exit -6; seen with gdb in
    ``arrow::py::PyBuffer::~PyBuffer`` under ``ReadRangeCache``). ``ParquetFile.read`` without
    pre-buffering and threads has no background work to outlive the call.
    """
    return pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).read(use_threads=False)


def episode_from_bytes(data: bytes) -> Episode:
    """Parse a payload written by :func:`episode_to_bytes`. Raises ``ValueError`` if truncated or malformed."""
    try:
        table = read_parquet_bytes(data)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"unreadable episode payload ({len(data)} bytes): {e}") from e
    return episode_from_table(table)
