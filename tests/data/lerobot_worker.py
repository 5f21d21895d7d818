"""Runs inside the LeRobot environment (``make lerobot-env``: ``lerobot-dataset`` + torch + torchvision),
never under the lwd test suite's interpreter: it drives LeRobot's own ``LeRobotDataset`` for the interop
tests (tests/data/test_lerobot_interop.py), one JSON request per stdin line, one JSON reply per stdout line.

Requests:
  {"op": "read", "root": DIR, "out": NPZ}     load DIR with LeRobotDataset, save every frame's features
                                             (images as uint8 [N, H, W, 3]) to NPZ, reply with the metadata
  {"op": "create", "root": DIR, "data": NPZ, "fps": INT, "features": {...}, "episodes": [[TASK, ...], ...]}
                                             record a dataset with LeRobotDataset.create + add_frame +
                                             save_episode from the frame arrays in NPZ (one task per frame)
Arrays travel as .npz without pickle (numeric arrays only; loaded with allow_pickle=False).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

# PyPI's torchvision wheels are CUDA builds; next to the CPU torch their C++ ops do not load and
# ``import torchvision`` then fails registering fake kernels for two of them. LeRobot's dataset code
# only uses torchvision's pure-Python transforms, so declaring the two schemas lets the import finish.
_tv = torch.library.Library("torchvision", "DEF")
for _op in ("nms", "qnms"):
    _tv.define(f"{_op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

from ledataset.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def read(root: str, out: str) -> dict:
    ds = LeRobotDataset("local/lwd-test", root=root)
    cams = list(ds.meta.camera_keys)
    cols: dict[str, list] = {}
    tasks = []
    for i in range(len(ds)):
        item = ds[i]
        tasks.append(item.pop("task"))
        for key, value in item.items():
            arr = value.numpy()
            if key in cams:  # float [3, H, W] in [0, 1] -> uint8 [H, W, 3]
                arr = np.round(arr.transpose(1, 2, 0) * 255.0).astype(np.uint8)
            cols.setdefault(key, []).append(arr)
    np.savez(out, **{k: np.stack(v) for k, v in cols.items()})
    episodes = ds.meta.episodes
    lwd_cols = [c for c in episodes.column_names if c in ("lwd/episode_id", "lwd/success", "lwd/source")]
    return {
        "fps": ds.fps,
        "fps_type": type(ds.fps).__name__,
        "num_frames": ds.num_frames,
        "num_episodes": ds.num_episodes,
        "camera_keys": cams,
        "tasks": tasks,
        "episodes": [
            {
                k: episodes[e][k]
                for k in ("episode_index", "tasks", "dataset_from_index", "dataset_to_index", *lwd_cols)
            }
            for e in range(len(episodes))
        ],
    }


def create(root: str, data: str, fps: int, features: dict, episodes: list[list[str]]) -> dict:
    arrays = dict(np.load(data, allow_pickle=False))
    feats = {k: {**v, "shape": tuple(v["shape"])} for k, v in features.items()}
    ds = LeRobotDataset.create("local/lwd-test", fps=fps, features=feats, root=root, use_videos=False)
    row = 0
    for tasks in episodes:
        for task in tasks:
            frame = {k: (arr[row] if arr[row].ndim else np.array([arr[row]])) for k, arr in arrays.items()}
            ds.add_frame({**frame, "task": task})
            row += 1
        ds.save_episode()
    ds.finalize()
    return {"frames": row}


def main() -> None:
    replies, sys.stdout = sys.stdout, sys.stderr  # library prints must not corrupt the reply stream
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        try:
            reply = {"ok": True, **(read(**req) if op == "read" else create(**req))}
        except Exception:  # reported to the test, which fails with the traceback
            reply = {"ok": False, "error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
