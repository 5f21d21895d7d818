"""lwd <-> LeRobot v3.0 checked by LeRobot itself: the real ``lerobot-dataset`` package (import name
``ledataset``) reads what ``lwd export-lerobot`` writes, and ``lwd import-lerobot`` reads what LeRobot's
own ``LeRobotDataset.create`` + ``add_frame`` + ``save_episode`` wrote, offline.

LeRobot's dependencies conflict with lwd's (huggingface-hub < 0.36, packaging < 26, setuptools < 81), so
it lives in its own environment, ``.venv/lerobot`` (``make lerobot-env``, run by ``make test``); the
tests talk to one long-lived worker process there (tests/data/lerobot_worker.py) so LeRobot's import cost
is paid once. ``LWD_LEROBOT_PYTHON`` points at another interpreter with ``lerobot-dataset`` installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lwd_data_factories import PIXEL_SPEC, assert_same_episode, make_episode

from lwd.data import DatasetWriter, LwdDataset
from lwd.data.lerobot_export import export_lerobot
from lwd.data.lerobot_import import import_lerobot
from lwd.utils.errors import DataError

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("lerobot_worker.py")
PYTHON = Path(os.environ.get("LWD_LEROBOT_PYTHON", REPO / ".venv" / "lerobot" / "bin" / "python"))
FPS = 10


def _has_ledataset() -> bool:
    if not PYTHON.is_file():
        return False
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('ledataset') is None)"
    return subprocess.run([str(PYTHON), "-c", probe], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(
    not _has_ledataset(),
    reason=f"lerobot-dataset is not installed at {PYTHON}: `make lerobot-env` creates it (`make test` does)",
)


class Worker:
    """One LeRobot process answering JSON requests (see lerobot_worker.py)."""

    def __init__(self, home: Path) -> None:
        env = {
            **os.environ,
            "HF_HOME": str(home / "hf"),
            "HF_LEROBOT_HOME": str(home / "lerobot"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "TQDM_DISABLE": "1",
            "PYTHONPATH": "",
        }
        self.log = open(home / "worker.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(PYTHON), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )

    def __call__(self, op: str, **kwargs) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            pytest.fail(f"LeRobot worker died:\n{self.log.read()[-4000:]}")
        reply = json.loads(line)
        assert reply.pop("ok"), reply["error"]
        return reply

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def lerobot(tmp_path_factory):
    worker = Worker(tmp_path_factory.mktemp("lerobot-home"))
    yield worker
    worker.close()


def lwd_episodes() -> list:
    return [
        make_episode("a", length=5, images=True, intervention=np.array([0, 1, 1, 0, 0], bool)),
        make_episode("b", length=3, images=True, success=False, task_id="pick", seed=4),
        make_episode("c", length=4, images=True, source="play", instruction="push it now"),
    ]


def read(lerobot, root: Path) -> tuple[dict, dict[str, np.ndarray]]:
    meta = lerobot("read", root=str(root), out=str(root.parent / f"{root.name}.npz"))
    with np.load(root.parent / f"{root.name}.npz", allow_pickle=False) as z:
        return meta, dict(z)


def test_lerobot_loads_lwd_export(tmp_path, lerobot):
    eps = lwd_episodes()
    with DatasetWriter(tmp_path / "lwd", PIXEL_SPEC, float(FPS), episodes_per_file=2) as w:
        w.add_many(eps)
    export_lerobot(tmp_path / "lwd", tmp_path / "lr", episodes_per_file=2)  # two data files
    meta, cols = read(lerobot, tmp_path / "lr")
    assert (meta["fps"], meta["fps_type"]) == (FPS, "int")
    assert meta["num_episodes"] == 3 and meta["num_frames"] == sum(e.length for e in eps)
    assert meta["camera_keys"] == ["observation.images.corner"]
    first = 0
    for i, (ep, got) in enumerate(zip(eps, meta["episodes"], strict=True)):
        rows = slice(first, first + ep.length)
        assert (got["dataset_from_index"], got["dataset_to_index"], got["tasks"]) == (
            first,
            first + ep.length,
            [ep.instruction],
        )
        assert (got["lwd/episode_id"], got["lwd/source"], got["lwd/success"]) == (
            ep.episode_id,
            ep.source,
            ep.success,
        )
        assert meta["tasks"][rows] == [ep.instruction] * ep.length
        np.testing.assert_array_equal(cols["observation.state"][rows], ep.states[:-1])
        np.testing.assert_array_equal(cols["action"][rows], ep.actions)
        np.testing.assert_array_equal(cols["observation.images.corner"][rows], ep.images["corner"][:-1])
        np.testing.assert_array_equal(cols["next.reward"][rows], ep.rewards)
        np.testing.assert_array_equal(cols["intervention"][rows], ep.intervention)
        np.testing.assert_array_equal(
            cols["next.success"][rows], (np.arange(ep.length) == ep.length - 1) & ep.success
        )
        np.testing.assert_array_equal(cols["episode_index"][rows], i)
        np.testing.assert_array_equal(cols["frame_index"][rows], np.arange(ep.length))
        np.testing.assert_array_equal(cols["index"][rows], np.arange(first, first + ep.length))
        np.testing.assert_allclose(cols["timestamp"][rows], np.arange(ep.length) / FPS, atol=1e-6)
        first += ep.length


def native_frames() -> tuple[dict, dict[str, np.ndarray], list[list[str]]]:
    """Features, frame arrays and per-frame tasks of a small dataset LeRobot records itself."""
    rng = np.random.default_rng(7)
    n = 4 + 3 + 5
    ends = np.zeros(n, bool)
    ends[[3, 6, 11]] = True
    features = {
        "observation.state": {"dtype": "float32", "shape": [3], "names": None},
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "observation.images.top": {
            "dtype": "image",
            "shape": [6, 6, 3],
            "names": ["height", "width", "channels"],
        },
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
        "intervention": {"dtype": "bool", "shape": [1], "names": None},
    }
    arrays = {
        "observation.state": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(n, 2)).astype(np.float32),
        "observation.images.top": rng.integers(0, 256, size=(n, 6, 6, 3), dtype=np.uint8),
        "next.success": ends & np.array([True] * 4 + [False] * 3 + [True] * 5),
        "intervention": rng.random(n) < 0.4,
    }
    tasks = [["Pick the red cube."] * 4, ["push it"] * 3, ["Pick the red cube."] * 5]
    return features, arrays, tasks


@pytest.fixture(scope="module")
def native(tmp_path_factory, lerobot):
    """A LeRobot dataset written by LeRobot's own recording API."""
    root = tmp_path_factory.mktemp("native")
    features, arrays, tasks = native_frames()
    np.savez(root / "frames.npz", **arrays)
    lerobot(
        "create",
        root=str(root / "ds"),
        data=str(root / "frames.npz"),
        fps=FPS,
        features=features,
        episodes=tasks,
    )
    return root / "ds", arrays, tasks


def test_lwd_imports_what_lerobot_recorded(tmp_path, native):
    ds, arrays, tasks = native
    with pytest.raises(DataError, match="no success signal"):
        import_lerobot(ds, tmp_path / "none")
    summary = import_lerobot(ds, tmp_path / "lwd", success="column:next.success")
    assert (summary.episodes, summary.steps, summary.cameras, summary.lwd_export) == (3, 9, ("top",), False)
    got = LwdDataset.open(tmp_path / "lwd")
    assert got.fps == FPS and got.robot_spec.image_size == 6 and got.robot_spec.cameras == ("top",)
    first = 0
    for ep, ep_tasks, success in zip(got.load_episodes(), tasks, (True, False, True), strict=True):
        rows = slice(first, first + len(ep_tasks))
        np.testing.assert_array_equal(ep.states, arrays["observation.state"][rows])
        np.testing.assert_array_equal(ep.actions, arrays["action"][rows][:-1])
        np.testing.assert_array_equal(ep.images["top"], arrays["observation.images.top"][rows])
        np.testing.assert_array_equal(ep.intervention, arrays["intervention"][rows][:-1])
        assert ep.success == success and ep.rewards[-1] == float(success) and ep.rewards[:-1].sum() == 0
        assert (ep.instruction, ep.source, ep.policy_version) == (ep_tasks[0], "demo", 0)
        first += len(ep_tasks)
    assert got.tasks == {"pick-the-red-cube": ("Pick the red cube.",), "push-it": ("push it",)}


def test_lerobot_reads_back_its_dataset_through_lwd(tmp_path, native, lerobot):
    """LeRobot -> lwd -> LeRobot: every row but each episode's last comes back unchanged; the last row's
    observation becomes the final observation (``lwd/final_*``) and its action is dropped (no
    observation follows it, so lwd has no step for it)."""
    ds, arrays, tasks = native
    import_lerobot(ds, tmp_path / "lwd", success="all")
    export_lerobot(tmp_path / "lwd", tmp_path / "again")
    meta, cols = read(lerobot, tmp_path / "again")
    keep = np.concatenate([np.arange(len(t)) < len(t) - 1 for t in tasks])
    assert meta["num_frames"] == keep.sum() and meta["fps"] == FPS
    for key in ("observation.state", "action", "observation.images.top", "intervention"):
        np.testing.assert_array_equal(cols[key], arrays[key][keep])
    assert meta["tasks"] == [t for ep in tasks for t in ep[:-1]]
    assert [e["lwd/success"] for e in meta["episodes"]] == [True] * 3


def test_round_trip_through_lerobot_reader_is_lossless(tmp_path, lerobot):
    """lwd -> LeRobot (checked readable by LeRobot) -> lwd gives back every episode exactly."""
    eps = lwd_episodes()
    with DatasetWriter(tmp_path / "lwd", PIXEL_SPEC, float(FPS)) as w:
        w.add_many(eps)
    export_lerobot(tmp_path / "lwd", tmp_path / "lr")
    assert read(lerobot, tmp_path / "lr")[0]["num_episodes"] == len(eps)
    import_lerobot(tmp_path / "lr", tmp_path / "back")
    for a, b in zip(eps, LwdDataset.open(tmp_path / "back").load_episodes(), strict=True):
        assert_same_episode(a, b)
