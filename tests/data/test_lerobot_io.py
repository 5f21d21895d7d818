"""lwd <-> LeRobot v3.0 conversion without LeRobot itself: lossless round trip, the mapping of datasets
lwd did not write, and every refusal (one DataError, nothing left at ``out``). The same files checked by
LeRobot's own reader and writer: tests/data/test_lerobot_interop.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from lwd_data_factories import PIXEL_SPEC, STATE_SPEC, assert_same_episode, make_episode

from lwd.data import DatasetWriter, LwdDataset
from lwd.data.lerobot_export import export_lerobot
from lwd.data.lerobot_import import import_lerobot, parse_success, task_slug
from lwd.utils.errors import DataError


def lwd_episodes(images: bool = True) -> list:
    return [
        make_episode("a", length=5, images=images, intervention=np.array([0, 1, 1, 0, 0], bool)),
        make_episode("b", length=3, images=images, success=False, task_id="pick", seed=4).replace(
            stages=4, stages_done=2
        ),
        make_episode("c", length=4, images=images, source="play", instruction="push it now"),
        make_episode("d", length=2, images=images, source="demo", task_id="pick"),
    ]


def write_lwd(root: Path, episodes: list, spec=PIXEL_SPEC, fps: float = 10.0) -> Path:
    with DatasetWriter(root, spec, fps, episodes_per_file=2) as w:
        w.add_many(episodes)
    return root


def foreign(tmp_path: Path, episodes: list) -> Path:
    """An export with what marks it as lwd's removed: a plain LeRobot dataset at ``tmp_path/lr``."""
    export_lerobot(write_lwd(tmp_path / "lwd", episodes), tmp_path / "lr", episodes_per_file=2)
    edit_info(tmp_path / "lr", lambda info: info.pop("lwd_export"))
    return tmp_path / "lr"


def edit_info(root: Path, fn) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    fn(info)
    (root / "meta/info.json").write_text(json.dumps(info))


def test_round_trip_is_lossless(tmp_path):
    eps = lwd_episodes()
    src = write_lwd(tmp_path / "lwd", eps)
    summary = export_lerobot(src, tmp_path / "lr", episodes_per_file=3)
    assert (summary.episodes, summary.frames, summary.tasks, summary.fps) == (4, 14, 3, 10)
    back = import_lerobot(tmp_path / "lr", tmp_path / "back")
    assert back.lwd_export and (back.episodes, back.steps) == (4, 14)
    a, b = LwdDataset.open(src), LwdDataset.open(tmp_path / "back")
    for x, y in zip(a.load_episodes(), b.load_episodes(), strict=True):
        assert_same_episode(x, y)
    assert (b.fps, b.robot_spec, b.tasks) == (a.fps, a.robot_spec, a.tasks)
    for key, stats in a.stats.items():
        np.testing.assert_allclose(b.stats[key].mean, stats.mean, rtol=1e-6)


def test_export_rows_follow_lerobot(tmp_path):
    eps = lwd_episodes(images=False)
    export_lerobot(write_lwd(tmp_path / "lwd", eps, STATE_SPEC), tmp_path / "lr")
    table = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet")
    rows = [r for r in table.to_pylist() if r["episode_index"] == 0]
    ep = eps[0]
    assert len(rows) == ep.length  # T rows, no final-observation row
    np.testing.assert_array_equal([r["observation.state"] for r in rows], ep.states[:-1])
    assert [r["next.done"] for r in rows] == [False] * 4 + [True]
    assert [r["next.success"] for r in rows] == [False] * 4 + [True]
    assert [r["intervention"] for r in rows] == ep.intervention.tolist()
    assert [r["frame_index"] for r in rows] == list(range(5))
    np.testing.assert_allclose([r["timestamp"] for r in rows], np.arange(5) / 10)
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["fps"] == 10 and isinstance(info["fps"], int) and info["total_frames"] == 14
    assert set(info["features"]) == set(table.column_names)


def test_fractional_fps_needs_an_integer(tmp_path):
    src = write_lwd(tmp_path / "lwd", lwd_episodes(images=False)[:1], STATE_SPEC, fps=12.5)
    with pytest.raises(DataError, match="fps 12.5 is not a whole number.*--fps N"):
        export_lerobot(src, tmp_path / "lr")
    assert not (tmp_path / "lr").exists()
    assert export_lerobot(src, tmp_path / "lr", fps=12).fps == 12
    import_lerobot(tmp_path / "lr", tmp_path / "back")
    assert LwdDataset.open(tmp_path / "back").fps == 12.5  # the original comes back


def test_foreign_dataset_maps_t_rows_to_t_minus_one_steps(tmp_path):
    eps = lwd_episodes()
    out = import_lerobot(
        foreign(tmp_path, eps), tmp_path / "back", success="column:next.success", source="rollout"
    )
    assert not out.lwd_export and out.steps == sum(e.length - 1 for e in eps)
    for ep, got in zip(eps, LwdDataset.open(tmp_path / "back").load_episodes(), strict=True):
        assert got.length == ep.length - 1
        np.testing.assert_array_equal(got.states, ep.states[:-1])  # the last row is the final observation
        np.testing.assert_array_equal(got.actions, ep.actions[:-1])
        np.testing.assert_array_equal(got.images["corner"], ep.images["corner"][:-1])
        np.testing.assert_array_equal(got.intervention, ep.intervention[:-1])
        assert got.success == ep.success and got.rewards.tolist() == [0.0] * (got.length - 1) + [
            float(ep.success)
        ]
        assert (got.source, got.instruction, got.task_id) == (
            "rollout",
            ep.instruction,
            task_slug(ep.instruction),
        )


def test_success_rules():
    assert parse_success("column:next.success").column == "next.success"
    assert [parse_success(s).kind for s in ("auto", "all", "none")] == ["auto", "all", "none"]
    for bad in ("yes", "column:", "last-frame"):
        with pytest.raises(ValueError, match="auto, all, none or column:NAME"):
            parse_success(bad)
    assert task_slug("Pick the RED cube!") == "pick-the-red-cube" and task_slug("??") == "task"


@pytest.mark.parametrize(
    "edit,kwargs,message",
    [
        (None, {}, "no success signal lwd can read; say where it is with --success all|none|column:NAME"),
        (None, {"success": "column:nope"}, "--success column:nope: LeRobot dataset .* has no per-frame bool"),
        (None, {"success": "all", "cameras": "wrist"}, "has no camera 'wrist'"),
        (None, {"success": "all", "state_key": "obs"}, "has no state feature 'obs'.*--state-key"),
        (
            lambda i: i["features"]["observation.images.corner"].update(dtype="video"),
            {"success": "all"},
            "stored as video, which lwd does not decode",
        ),
        (
            lambda i: i.update(codebase_version="v2.1"),
            {"success": "all"},
            "codebase_version 'v2.1' is not 'v3.0'",
        ),
        (None, {"success": "none", "source": "robot"}, "unknown source 'robot'"),
    ],
)
def test_import_refusals_leave_nothing(tmp_path, edit, kwargs, message):
    lr = foreign(tmp_path, lwd_episodes())
    if edit:
        edit_info(lr, edit)
    with pytest.raises(DataError, match=message):
        import_lerobot(lr, tmp_path / "back", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr", "lwd"]


def test_failure_half_way_leaves_nothing(tmp_path):
    """The second data file is truncated: the import fails after committing the first file's episodes."""
    lr = foreign(tmp_path, lwd_episodes())
    second = lr / "data/chunk-000/file-001.parquet"
    second.write_bytes(second.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot read data/chunk-000/file-001.parquet"):
        import_lerobot(lr, tmp_path / "back", success="all", episodes_per_file=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr", "lwd"]


def test_export_refusals(tmp_path):
    empty = tmp_path / "empty"
    DatasetWriter(empty, STATE_SPEC, 10.0).close()
    with pytest.raises(DataError, match="has no episodes; nothing to export"):
        export_lerobot(empty, tmp_path / "lr")
    src = write_lwd(tmp_path / "lwd", lwd_episodes(images=False)[:1], STATE_SPEC)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/x").write_text("x")
    with pytest.raises(DataError, match="is not an empty directory"):
        export_lerobot(src, tmp_path / "busy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty", "lwd"]


@pytest.mark.parametrize(("value", "message"), [(3.0, r"reaches \|a\| = 3; lwd policies act in \[-1, 1\]"),
                                                (float("nan"), "non-finite")])  # fmt: skip
def test_import_refuses_actions_lwd_cannot_act(tmp_path, value, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lr = foreign(tmp_path, lwd_episodes())
    for f in sorted((lr / "data").rglob("*.parquet"))[:1]:  # one step of the first file's first episode
        table = pq.read_table(f)
        rows = table.column("action").to_pylist()
        rows[0] = [value] + rows[0][1:]
        col = table.schema.get_field_index("action")
        table = table.set_column(col, table.schema.field(col), pa.array(rows, type=table.schema.field(col).type))
        pq.write_table(table, f)
    with pytest.raises(DataError, match=message):
        import_lerobot(lr, tmp_path / "back", success="all")
    assert not (tmp_path / "back").exists()
