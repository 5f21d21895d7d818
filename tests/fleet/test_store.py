"""EpisodeStore: checksummed, atomic, idempotent payloads on a local dir and on S3 (moto server)."""

from __future__ import annotations

import numpy as np
import pytest
from fleet_support import make_episode

from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.dataplane.store import EpisodeStore, PayloadMissing
from lwd.fleet.learner.reader import SnapshotReader
from lwd.utils.errors import DataError
from lwd.utils.io import sha256_bytes


def _roundtrip(store: EpisodeStore) -> None:
    ep = make_episode(seed=3)
    stored = store.put(ep)
    assert stored.uri == f"episodes/{ep.episode_id[0]}/{ep.episode_id}.{stored.sha256}.parquet"
    back = store.get(stored.uri, stored.sha256)
    assert back.episode_id == ep.episode_id
    np.testing.assert_array_equal(back.states, ep.states)
    np.testing.assert_array_equal(back.actions, ep.actions)
    again = store.put(ep)  # idempotent: same name, same bytes
    assert again == stored
    assert store.versions(ep.episode_id) == [stored.uri]
    with pytest.raises(DataError, match="checksum mismatch"):
        store.get_bytes(stored.uri, "0" * 64)
    with pytest.raises(PayloadMissing):
        store.get_bytes("episodes/zz/none/" + "0" * 64 + ".parquet", "0" * 64)
    with pytest.raises(DataError, match="over the"):
        store.get_bytes(stored.uri, stored.sha256, max_bytes=10)


def test_local_store_roundtrip(tmp_path):
    store = EpisodeStore(str(tmp_path / "store"))
    assert store.local
    _roundtrip(store)
    assert not list((tmp_path / "store").rglob("*.tmp"))  # no temp leftovers


def test_local_store_corrupt_file_never_reads_as_valid(tmp_path):
    store = EpisodeStore(str(tmp_path / "store"))
    stored = store.put(make_episode())
    path = tmp_path / "store" / stored.uri
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # torn write behind our back
    with pytest.raises(DataError, match="checksum mismatch"):
        store.get(stored.uri, stored.sha256)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit
    with pytest.raises(DataError, match="checksum mismatch"):
        store.get(stored.uri, stored.sha256)


def test_invalid_episode_ids_refused(tmp_path):
    store = EpisodeStore(str(tmp_path))
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            store.key(bad, "0" * 64)


def test_s3_store_against_moto_server(moto_s3):
    bucket = moto_s3.make_bucket("lwd-store-test")
    store = EpisodeStore(f"{bucket}/fleet", moto_s3.storage_options())
    assert not store.local
    _roundtrip(store)
    store.put_json("snapshots/LATEST", {"number": 0})
    assert store.get_json("snapshots/LATEST") == {"number": 0}


def test_s3_dataplane_publish_and_read(moto_s3, tmp_path):
    """Full path at scale shape: sqlite events + S3 store, coordinator commits, reader reads from S3."""
    from lwd.fleet.coordinator.service import Coordinator

    bucket = moto_s3.make_bucket("lwd-dp-test")
    cfg = DataPlaneConfig(
        events=f"sqlite://{tmp_path / 'events.db'}",
        store=f"{bucket}/fleet",
        storage_options=moto_s3.storage_options(),
    )
    dp = open_dataplane(cfg)
    eps = [make_episode(seed=i) for i in range(3)]
    for ep in eps:
        ev = dp.publish(ep)
        assert ev.sha256 == sha256_bytes(dp.store.get_object(ev.uri))
    coord = Coordinator(dp, str(tmp_path / "coordinator.db"))
    res = coord.step()
    assert res.committed == 3 and res.snapshot == 1
    reader = SnapshotReader(open_dataplane(cfg))
    assert reader.latest() == 1
    got = {ep.episode_id for ep in reader.read_snapshot(1)}
    assert got == {ep.episode_id for ep in eps}
    coord.close()
    dp.close()
