"""Data plane micro-measurements behind the design choices in docs/dataplane.md.

* directory fsyncs: hard-linking a batch of 64 durable files into 64 directories + 64 directory
  fsyncs, vs into one directory + one fsync (why the store fans out by one character);
* CPU time per episode (``time.process_time``, one process, fresh dirs): the raw
  ``write + fsync + rename + dir fsync`` loop, ``Outbox.put``, the outbox's batched send, and the
  synchronous per-episode ``put_bytes + announce`` path (SQLite event log).

Usage: ``python benchmarks/dataplane_micro.py [--episodes 300]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dataplane_bench import META, episode  # noqa: E402
from lwd.data.episode_io import episode_to_bytes  # noqa: E402
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane  # noqa: E402
from lwd.fleet.robot.outbox import Outbox  # noqa: E402
from lwd.utils.io import atomic_write_bytes, fsync_dir  # noqa: E402


def dir_fsyncs(work: Path, batches: int = 5, width: int = 64) -> dict:
    dirs = [work / "fan" / f"{i:02x}" for i in range(width)]
    for d in dirs:
        d.mkdir(parents=True)
    src = work / "src"
    src.write_bytes(os.urandom(37_000))
    fd = os.open(src, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    fsync_dir(work)
    for d in dirs:
        fsync_dir(d)
    t = time.perf_counter()
    for r in range(batches):
        for i, d in enumerate(dirs):
            os.link(src, d / f"{r}-{i}")
        for d in dirs:
            fsync_dir(d)
    spread = (time.perf_counter() - t) / batches
    t = time.perf_counter()
    for r in range(batches):
        for i in range(width):
            os.link(src, dirs[0] / f"one-{r}-{i}")
        fsync_dir(dirs[0])
    one = (time.perf_counter() - t) / batches
    return {"batch": width, "spread_ms_per_batch": spread * 1e3, "one_dir_ms_per_batch": one * 1e3}


def cpu_per_episode(work: Path, n: int) -> dict:
    payloads = [(e.episode_id, episode_to_bytes(e)) for e in (episode("r", i) for i in range(n))]
    out = {}
    c = time.process_time()
    for eid, data in payloads:
        atomic_write_bytes(work / "raw" / eid[:2] / f"{eid}.parquet", data)
    out["raw_ms"] = (time.process_time() - c) / n * 1e3
    box = Outbox(work / "outbox", open_dataplane(DataPlaneConfig.local(work / "fleet-box")), start=False)
    c = time.process_time()
    for eid, data in payloads:
        box.put_bytes(eid, data, META)  # as Outbox.put: the robot knows the metadata
    c2 = time.process_time()
    box.send_pending()
    out["outbox_put_ms"] = (c2 - c) / n * 1e3
    out["outbox_send_ms"] = (time.process_time() - c2) / n * 1e3
    box.close()
    dp = open_dataplane(DataPlaneConfig.local(work / "fleet-sync"))
    c = time.process_time()
    for eid, data in payloads:
        dp.announce(dp.store.put_bytes(eid, data), "r", "t", 0)
    out["per_episode_ingest_ms"] = (time.process_time() - c) / n * 1e3
    dp.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=300)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("LWD_BENCH_TMP")) as tmp:
        work = Path(tmp)
        res = {"dir_fsyncs": dir_fsyncs(work), "cpu_per_episode": cpu_per_episode(work, a.episodes)}
    res["load_avg"] = os.getloadavg()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
