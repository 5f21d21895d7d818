"""DatasetWriter / LwdDataset: round trip, layout, atomic commits, resume, refusal of bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from lwd_data_factories import PIXEL_SPEC, STATE_SPEC, assert_same_episode, make_episode

from lwd.data.dataset import LwdDataset
from lwd.data.dataset_writer import DatasetWriter
from lwd.data.stats import compute_norm_stats
from lwd.utils.errors import DataError


def _episodes(n, images=False):
    """``n`` episodes; every other one of a chained task (3 stages, the failures partly done)."""
    tasks = ["push", "reach", "pick"]
    sources = ["demo", "rollout", "play", "online"]
    eps = [
        make_episode(
            f"ep{i:03d}",
            length=3 + i % 5,
            task_id=tasks[i % 3],
            instruction=f"{tasks[i % 3]} variant {i % 2}",
            source=sources[i % 4],
            success=i % 3 != 1,
            images=images,
            seed=100 + i,
        )
        for i in range(n)
    ]
    return [e.replace(stages=3, stages_done=3 if e.success else i % 3) if i % 2 == 0 else e for i, e in enumerate(eps)]


def _write(root, episodes, spec=STATE_SPEC, per_file=3, **kw):
    with DatasetWriter(root, spec, fps=10.0, episodes_per_file=per_file, **kw) as w:
        for ep in episodes:
            w.add(ep)
    return w


@pytest.mark.parametrize("images", [False, True])
def test_round_trip(tmp_path, images):
    eps = _episodes(7, images=images)
    _write(tmp_path / "ds", eps, spec=PIXEL_SPEC if images else STATE_SPEC)
    ds = LwdDataset.open(tmp_path / "ds")
    assert len(ds) == 7
    assert ds.num_frames == sum(e.length + 1 for e in eps)
    assert ds.robot_spec == (PIXEL_SPEC if images else STATE_SPEC)
    assert ds.task_ids == ("push", "reach", "pick")
    assert ds.tasks["push"] == ("push variant 0", "push variant 1")
    for a, b in zip(eps, ds.load_episodes(), strict=True):
        assert_same_episode(a, b)
    want = compute_norm_stats(eps)
    for key in ("observation.state", "action"):
        np.testing.assert_allclose(ds.stats[key].mean, want[key].mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ds.stats[key].std, want[key].std, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ds.stats[key].max, want[key].max)


def test_filters_and_single_episode(tmp_path):
    eps = _episodes(8)
    _write(tmp_path / "ds", eps)
    ds = LwdDataset.open(tmp_path / "ds")
    demos = ds.load_episodes(sources=["demo"])
    assert [e.episode_id for e in demos] == [e.episode_id for e in eps if e.source == "demo"]
    pushes_ok = ds.load_episodes(task_ids=["push"], success=True)
    assert [e.episode_id for e in pushes_ok] == [
        e.episode_id for e in eps if e.task_id == "push" and e.success
    ]
    assert_same_episode(ds.load_episode(5), eps[5])
    with pytest.raises(DataError, match="no task"):
        ds.select(task_ids=["fly"])


def test_lerobot_v3_layout(tmp_path):
    eps = _episodes(5)
    _write(tmp_path / "ds", eps, per_file=2)
    root = tmp_path / "ds"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 5 and info["total_tasks"] == 3 and info["fps"] == 10.0
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [3], "names": None}
    files = sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*.parquet"))
    assert files == [f"data/chunk-000/file-00{i}.parquet" for i in range(3)]  # 2 + 2 + 1 episodes
    frames = pq.read_table(root / files[1])
    assert set(
        ["episode_index", "index", "task_index", "timestamp", "episode_id", "source", "intervention"]
    ) <= set(frames.column_names)
    assert frames.column("episode_index").to_pylist()[0] == 2
    first_global = sum(e.length + 1 for e in eps[:2])
    assert frames.column("index").to_pylist()[0] == first_global
    index = pq.read_table(root / "meta/episodes/chunk-000/file-001.parquet").to_pylist()
    assert [r["episode_id"] for r in index] == ["ep002", "ep003"]
    assert index[0]["dataset_from_index"] == first_global and index[0]["seed"] == 102
    assert (index[0]["data/chunk_index"], index[0]["data/file_index"]) == (0, 1)
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pylist()
    assert [t["task_id"] for t in tasks] == ["push", "reach", "pick"]
    assert "observation.state" in json.loads((root / "meta/stats.json").read_text())


def test_crash_between_data_write_and_commit_keeps_previous_state(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    eps = _episodes(5)
    _write(root, eps[:2], per_file=2)

    def crash(self, info):
        raise OSError("simulated power loss before info.json")

    w = DatasetWriter(root, STATE_SPEC, 10.0, resume=True, episodes_per_file=3)
    monkeypatch.setattr(DatasetWriter, "_commit", crash)
    w.add(eps[2])
    w.add(eps[3])
    with pytest.raises(OSError, match="simulated"):
        w.add(eps[4])  # triggers the flush: data + index files written, commit fails
    w._release_lock()
    monkeypatch.undo()
    orphan = root / "data/chunk-000/file-001.parquet"
    assert orphan.is_file()  # written, but not committed
    (root / "data/chunk-000/.file-002.parquet.x.tmp").write_bytes(b"torn")

    ds = LwdDataset.open(root)  # readers ignore uncommitted files
    assert [e.episode_id for e in ds.load_episodes()] == ["ep000", "ep001"]

    with DatasetWriter(root, STATE_SPEC, 10.0, resume=True, episodes_per_file=3) as w2:
        assert not orphan.exists() and not list(root.rglob("*.tmp"))  # cleaned on reopen
        assert w2.episode_ids == {"ep000", "ep001"}
        w2.add_many(eps[2:])
    ds = LwdDataset.open(root)
    assert [e.episode_id for e in ds.load_episodes()] == [e.episode_id for e in eps]


def test_resume_continues_and_knows_done_work(tmp_path):
    root = tmp_path / "ds"
    eps = _episodes(6)
    _write(root, eps[:4])
    w = DatasetWriter.open_or_create(root, STATE_SPEC, 10.0, resume=True)
    assert w.num_episodes == 4
    assert w.done_seeds() == {100, 101, 102, 103}
    assert w.done_seeds("push") == {100, 103}
    assert not w.add(eps[1])  # already committed: no-op
    assert w.add(eps[4]) and not w.add(eps[4])  # buffered duplicate: no-op
    w.add(eps[5])
    w.close()
    ds = LwdDataset.open(root)
    assert [r["episode_index"] for r in ds.episode_records] == list(range(6))
    assert [e.episode_id for e in ds.load_episodes()] == [e.episode_id for e in eps]


def test_open_or_create_creates_missing_dir(tmp_path):
    with DatasetWriter.open_or_create(tmp_path / "new", STATE_SPEC, 10.0) as w:
        w.add(_episodes(1)[0])
    assert len(LwdDataset.open(tmp_path / "new")) == 1


def test_refuses_non_empty_non_dataset_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"not empty.*choose another --out"):
        DatasetWriter(tmp_path, STATE_SPEC, 10.0)
    with pytest.raises(DataError, match="not empty"):
        DatasetWriter(tmp_path, STATE_SPEC, 10.0, resume=True)


def test_refuses_existing_dataset_without_resume_and_mismatched_spec(tmp_path):
    root = tmp_path / "ds"
    _write(root, _episodes(1))
    with pytest.raises(DataError, match=r"--resume"):
        DatasetWriter(root, STATE_SPEC, 10.0)
    with pytest.raises(DataError, match="robot spec mismatch"):
        DatasetWriter(root, PIXEL_SPEC, 10.0, resume=True)
    with pytest.raises(DataError, match="fps"):
        DatasetWriter(root, STATE_SPEC, 30.0, resume=True)


def test_second_writer_is_locked_out(tmp_path):
    w = DatasetWriter(tmp_path / "ds", STATE_SPEC, 10.0)
    try:
        with pytest.raises(DataError, match="another writer"):
            DatasetWriter(tmp_path / "ds", STATE_SPEC, 10.0, resume=True)
    finally:
        w.close()


def test_episode_not_matching_spec_is_refused(tmp_path):
    with DatasetWriter(tmp_path / "ds", PIXEL_SPEC, 10.0) as w:
        with pytest.raises(ValueError, match="cameras"):
            w.add(make_episode("x", images=False))


def test_truncated_data_file_is_refused(tmp_path):
    root = tmp_path / "ds"
    _write(root, _episodes(4))
    path = root / "data/chunk-000/file-000.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"data/chunk-000/file-000.parquet is truncated.*restore it"):
        LwdDataset.open(root)
    # Had the commit record matched the torn file, the parquet reader's failure is still a DataError.
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["lwd"]["files"]["data/chunk-000/file-000.parquet"]["bytes"] = len(data) // 2
    info_path.write_text(json.dumps(info))
    ds = LwdDataset.open(root, verify_checksums=False)
    with pytest.raises(DataError, match=r"cannot read data/chunk-000/file-000.parquet"):
        ds.load_episodes()


def test_checksum_mismatch_is_refused(tmp_path):
    root = tmp_path / "ds"
    _write(root, _episodes(4))
    path = root / "data/chunk-000/file-001.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"file-001.parquet is corrupt \(sha256"):
        LwdDataset.open(root)


def test_garbled_or_missing_meta_is_refused(tmp_path):
    root = tmp_path / "ds"
    _write(root, _episodes(2))
    info = root / "meta/info.json"
    text = info.read_text()
    info.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"info.json is garbled"):
        LwdDataset.open(root)
    info.unlink()
    with pytest.raises(DataError, match="not an lwd dataset"):
        LwdDataset.open(root)
    with pytest.raises(DataError, match="does not exist"):
        LwdDataset.open(tmp_path / "nowhere")


def test_missing_episodes_index_is_refused(tmp_path):
    root = tmp_path / "ds"
    _write(root, _episodes(2))
    (root / "meta/episodes/chunk-000/file-000.parquet").unlink()
    with pytest.raises(DataError, match=r"meta/episodes/chunk-000/file-000.parquet is missing"):
        LwdDataset.open(root)


@pytest.mark.parametrize("fail_at", ["data", "index", "commit", "mirrors"])
def test_crash_at_each_step_of_a_flush(tmp_path, monkeypatch, fail_at):
    """Whatever step a flush dies at, the dataset opens either before or after the flush, never between."""
    import lwd.data.dataset_files as files_mod
    import lwd.data.dataset_writer as writer_mod

    root = tmp_path / "ds"
    eps = _episodes(4)
    _write(root, eps[:2], per_file=2)
    real_bytes, real_json = writer_mod.atomic_write_bytes, writer_mod.atomic_write_json
    calls = []

    def failing_bytes(path, data):
        calls.append(path)
        real_bytes(path, data)  # the file lands, then the process "dies"
        if (fail_at == "data" and len(calls) == 1) or (fail_at == "index" and len(calls) == 2):
            raise OSError("crash")

    def failing_json(path, obj):
        if fail_at == "commit":
            raise OSError("crash")
        real_json(path, obj)

    def failing_mirrors(root_, info):
        raise OSError("crash")

    w = DatasetWriter(root, STATE_SPEC, 10.0, resume=True, episodes_per_file=2)
    monkeypatch.setattr(writer_mod, "atomic_write_bytes", failing_bytes)
    monkeypatch.setattr(writer_mod, "atomic_write_json", failing_json)
    if fail_at == "mirrors":
        monkeypatch.setattr(writer_mod, "write_mirrors", failing_mirrors)
    w.add(eps[2])
    with pytest.raises(OSError, match="crash"):
        w.add(eps[3])
    w._release_lock()
    monkeypatch.undo()
    committed = ["ep000", "ep001"] + (["ep002", "ep003"] if fail_at == "mirrors" else [])
    ds = LwdDataset.open(root)
    assert [e.episode_id for e in ds.load_episodes()] == committed
    with DatasetWriter(root, STATE_SPEC, 10.0, resume=True) as w2:
        assert w2.episode_ids == set(committed)
        w2.add_many(eps)
    tasks = pq.read_table(root / "meta/tasks.parquet").column("task_id").to_pylist()
    assert tasks == list(LwdDataset.open(root).task_ids)
    assert [e.episode_id for e in LwdDataset.open(root).load_episodes()] == [e.episode_id for e in eps]
    assert files_mod.remove_unreferenced(root, LwdDataset.open(root).info) == []
