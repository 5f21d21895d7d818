"""Data plane benchmark: ingest throughput, episode-end -> sampleable latency, publish -> loaded latency.

For each event log backend (sqlite, redis) on one machine:

* ingest: C concurrent robot clients (threads, each with its own DataPlane connection) upload
  realistic payloads (150 steps, 39-d state, 4-d action) and announce them; episodes/s and MB/s,
  as a ratio to a raw ``write + fsync + rename`` loop over the same payloads with the same C
  (measured in the same run, fresh directories per variant and repetition, best of ``--reps``
  interleaved runs). Goal: ratio >= 0.7. Announcing every 8 uploads with one append and the full
  outbox path (durable local put, then upload + announce in batches) are reported too.
* episode end -> sampleable: robots put episodes in their outbox; a coordinator *process* commits
  snapshots; a reader thread follows snapshots (woken by the snapshot notice). Latency = reader
  yield time - episode end time, timed after a warm-up episode went through (its latency, which
  includes the coordinator process's start-up, is reported as ``cold_start_s``), with a per-hop
  breakdown.
* policy publish -> loaded: the registry publishes a 2 MB version; a robot thread waiting in
  ``watch`` resolves and fetches (verifies) it. Latency = loaded - publish start.
Goal for both latencies: P99 < 2 s.

Usage: ``python benchmarks/dataplane_bench.py [--quick] [--backends sqlite,redis]``
Writes ``runs/bench/dataplane.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import lwd
from lwd.data.episode_io import episode_to_bytes
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.dataplane.redis_server import RedisServer, redis_binary
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.robot.outbox import Outbox
from lwd.types import Episode, new_episode_id
from lwd.utils.io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]


def episode(robot: str, seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    t = 150
    return Episode(
        episode_id=new_episode_id(), task_id="pick-place", instruction="pick the puck", robot_id=robot,
        policy_version=0, source="online", success=False,
        states=rng.standard_normal((t + 1, 39)).astype(np.float32),
        actions=rng.uniform(-1, 1, (t, 4)).astype(np.float32), rewards=np.zeros(t, np.float32),
        intervention=np.zeros(t, bool),
    )  # fmt: skip


META = {"robot_id": "r", "task_id": "pick-place", "policy_version": 0}
"""The metadata of :func:`episode` payloads made with robot ``"r"``."""


def parallel(n: int, fn) -> float:
    """Run ``fn(k)`` for k < n in threads; return wall seconds."""
    threads = [threading.Thread(target=fn, args=(k,)) for k in range(n)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


# ------------------------------------------------------------------------------------------ services
def start_redis(workdir: Path) -> RedisServer:
    """A durable local redis-server (``scripts/ensure_redis.sh`` installs one if missing)."""
    binary = redis_binary(REPO / "scripts" / "ensure_redis.sh")
    if binary is None:
        raise RuntimeError("redis-server is missing and scripts/ensure_redis.sh could not install it")
    return RedisServer(binary, workdir)


# ------------------------------------------------------------------------------------------ measurements
def processes(n: int, prepare) -> float:
    """Run ``prepare(k)()`` for k < n in forked processes released together; return wall seconds of the
    work. ``prepare(k)`` runs before the release (a robot's connections are made once per lifetime,
    not per episode) and returns the work; workers report their own monotonic start and end times, so
    process start-up and connection set-up are excluded for every variant alike."""
    ctx = mp.get_context("fork")
    barrier, times = ctx.Barrier(n), ctx.Queue()

    def worker(k: int) -> None:
        work = prepare(k)
        barrier.wait()
        t0 = time.monotonic()
        work()
        times.put((t0, time.monotonic()))

    procs = [ctx.Process(target=worker, args=(k,)) for k in range(n)]
    for pr in procs:
        pr.start()
    spans = [times.get(timeout=600) for _ in procs]
    for pr in procs:
        pr.join()
        if pr.exitcode != 0:
            raise RuntimeError(f"benchmark worker failed with exit code {pr.exitcode}")
    return max(e for _, e in spans) - min(s for s, _ in spans)


def bench_ingest(cfg_for, work: Path, clients: int, payloads: list[tuple[str, bytes]], reps: int = 3) -> dict:
    """Robot clients are separate processes (like real robots); so is the raw baseline.

    Every variant writes into its own fresh directory / data plane in every repetition (so nothing is
    ever a re-upload), with the ``<id[:2]>`` fan-out directories of both the raw loop and the store
    created before the clock starts (a long-running store has them; creating them durably is a
    one-off). The variants are interleaved in a rotating order and each keeps its best of ``reps``
    runs, so disk noise from other processes on the machine hits all of them alike."""
    per = len(payloads) // clients
    fanout = sorted({eid[:2] for eid, _ in payloads})

    def raw_fn(d: Path):
        for f in fanout:
            (d / f).mkdir(parents=True, exist_ok=True)

        def raw(k: int):
            def work() -> None:
                for eid, data in payloads[k * per : (k + 1) * per]:
                    atomic_write_bytes(d / eid[:2] / f"{eid}.parquet", data)

            return work

        return raw

    def ready(d: Path) -> DataPlaneConfig:
        cfg = cfg_for(d)
        dp = open_dataplane(cfg)  # create schema / group and the store's fan-out dirs outside the clock
        if hasattr(dp.store, "_local_dir"):  # (stores before the flat layout make them per episode)
            for eid, _ in payloads:
                dp.store._local_dir(dp.store._path(dp.store.key(eid, "0" * 64)))
        dp.close()
        return cfg

    def publish_fn(d: Path):
        cfg = ready(d)

        def publish(k: int):
            dp = open_dataplane(cfg)

            def work() -> None:
                for eid, data in payloads[k * per : (k + 1) * per]:
                    dp.announce(dp.store.put_bytes(eid, data), f"robot-{k}", "pick-place", 0)

            return work

        return publish

    def batched_fn(d: Path):  # announce every 8 uploads with one append (group commit)
        cfg = ready(d)

        def publish_batched(k: int):
            dp = open_dataplane(cfg)
            mine = payloads[k * per : (k + 1) * per]

            def work() -> None:
                for i in range(0, len(mine), 8):
                    stored = [dp.store.put_bytes(eid, data) for eid, data in mine[i : i + 8]]
                    dp.announce_many([(st, f"robot-{k}", "pick-place", 0, None) for st in stored])

            return work

        return publish_batched

    def outbox_fn(d: Path):  # full robot path: durable local put, then upload + announce + delete
        cfg = ready(d)

        def outbox(k: int):
            box = Outbox(d / f"outbox-{k}", open_dataplane(cfg), start=False)

            def work() -> None:
                for eid, data in payloads[k * per : (k + 1) * per]:
                    box.put_bytes(eid, data, META)  # a robot knows its episode's metadata (Outbox.put)
                box.send_pending()

            return work

        return outbox

    variants = {"raw": raw_fn, "ingest": publish_fn, "batched": batched_fn, "outbox": outbox_fn}
    best = dict.fromkeys(variants, float("inf"))
    names = list(variants)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            d = work / f"{name}-{clients}-{rep}"
            best[name] = min(best[name], processes(clients, variants[name](d)))
            shutil.rmtree(d, ignore_errors=True)
    t_raw, t_dp, t_batch, t_box = best["raw"], best["ingest"], best["batched"], best["outbox"]
    n = per * clients
    mb = sum(len(d) for _, d in payloads[:n]) / 1e6
    return {
        "clients": clients, "episodes": n, "payload_mb": round(mb, 3), "reps": reps,
        "raw_eps": n / t_raw, "raw_mbps": mb / t_raw,
        "ingest_eps": n / t_dp, "ingest_mbps": mb / t_dp, "ratio": t_raw / t_dp,
        "batched_eps": n / t_batch, "batched_ratio": t_raw / t_batch,
        "outbox_eps": n / t_box, "outbox_ratio": t_raw / t_box,
    }  # fmt: skip


def bench_episode_latency(
    root: Path, cfg: DataPlaneConfig, robots: int, per_robot: int, period_s: float
) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    cfg_file = root / "dataplane.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    coord = subprocess.Popen(
        [sys.executable, "-m", "lwd.fleet.coordinator", "--root", str(root), "--events", cfg.events,
         "--lease-s", "5"],
        env=dict(os.environ, PYTHONPATH=str(Path(lwd.__file__).resolve().parents[1])),  # the lwd we run
    )  # fmt: skip
    dp = open_dataplane(cfg)
    reader = SnapshotReader(dp, prefetch=64, poll_s=0.05).start()
    # steady state: the coordinator process has started (imports, connections) and a warm-up
    # episode went all the way through before anything is timed
    warm, t_warm = episode("warm-up", 10**6), time.time()
    dp.publish(warm)
    first = reader.get(timeout=120)
    assert first is not None and first.episode_id == warm.episode_id, "warm-up episode never sampleable"
    cold_s = time.time() - t_warm  # includes the coordinator process's start-up
    ended: dict[str, float] = {}
    read: dict[str, float] = {}
    total = robots * per_robot

    def consume() -> None:
        while len(read) < total:
            ep = reader.get(timeout=30)
            if ep is None:
                return
            read[ep.episode_id] = time.time()

    consumer = threading.Thread(target=consume)
    consumer.start()
    eps = [[episode(f"robot-{k}", k * 1000 + i) for i in range(per_robot)] for k in range(robots)]

    def robot(k: int) -> None:
        box = Outbox(root / f"outbox-{k}", open_dataplane(cfg))
        for ep in eps[k]:
            ended[ep.episode_id] = time.time()  # episode end
            box.put(ep)
            time.sleep(period_s)
        box.flush(60)
        box.close()

    parallel(robots, robot)
    consumer.join(timeout=60)
    reader.close()
    coord.terminate()
    coord.wait()
    lat = [read[e] - ended[e] for e in ended if e in read]
    out = {"episodes": total, "sampleable": len(lat), "p50_s": pct(lat, 50), "p99_s": pct(lat, 99),
           "max_s": max(lat) if lat else float("nan")}  # fmt: skip
    out["cold_start_s"] = cold_s
    out["stages"] = stage_breakdown(root, cfg, ended, read)
    return out


def stage_breakdown(root: Path, cfg: DataPlaneConfig, ended: dict, read: dict) -> dict:
    """P50/P99 of each hop: episode end -> event appended (outbox persist + upload + append),
    appended -> decided (coordinator read + fetch + validate), decided -> snapshot published
    (commit + manifest + LATEST), published -> read by the learner (reader wake-up + fetch)."""
    import sqlite3

    appended: dict[str, float] = {}
    if cfg.events.startswith("sqlite://"):
        con = sqlite3.connect(cfg.events[len("sqlite://") :])
        rows = con.execute("SELECT raw, appended_at FROM events").fetchall()
        con.close()
        for raw, at in rows:
            ev = json.loads(raw)
            appended.setdefault(ev.get("episode_id", ""), at)
    else:
        import redis

        client = redis.Redis.from_url(cfg.events)
        for sid, fields in client.xrange(cfg.stream):
            ev = json.loads(fields[b"e"])
            appended.setdefault(ev.get("episode_id", ""), int(sid.split(b"-")[0]) / 1000)
        client.close()
    con = sqlite3.connect(root / "coordinator.db")
    decided = dict(con.execute("SELECT episode_id, decided_at FROM episodes").fetchall())
    con.close()
    published = {}
    store = open_dataplane(cfg).store
    for k in store.list_keys("snapshots"):
        if k.endswith(".json"):
            path = Path(store.root) / k
            for e in store.get_json(k)["added"]:
                published[e["episode_id"]] = path.stat().st_mtime
    hops = {"end_to_appended": (ended, appended), "appended_to_decided": (appended, decided),
            "decided_to_published": (decided, published), "published_to_read": (published, read)}  # fmt: skip
    out = {}
    for name, (a, b) in hops.items():
        d = [b[e] - a[e] for e in ended if e in a and e in b]
        out[name] = {"p50_s": round(pct(d, 50), 4), "p99_s": round(pct(d, 99), 4)}
    return out


def bench_publish_latency(root: Path, index: str | None, n: int, size: int) -> dict:
    reg = PolicyRegistry(root / "registry", index=index)
    robot_reg = PolicyRegistry(root / "registry", index=index)
    starts: dict[int, float] = {}
    loaded: dict[int, float] = {}
    stop = threading.Event()

    def robot() -> None:
        have = 0
        while not stop.is_set():
            new = robot_reg.watch(have, timeout_s=0.5)
            if new:
                v = robot_reg.resolve_version("robot-0")
                robot_reg.fetch(v)  # verified local path
                loaded[v] = time.time()
                have = v

    th = threading.Thread(target=robot)
    th.start()
    import torch
    from safetensors.torch import save

    weights = torch.from_numpy(np.random.default_rng(0).standard_normal(size // 4).astype(np.float32))
    for i in range(n):
        blob = save({"w": weights + i})  # a readable, finite checkpoint (the registry checks both)
        starts[i + 1] = time.time()
        reg.publish({"model.safetensors": blob, "config.json": b"{}"}, learner_step=i)
        time.sleep(0.25)
    time.sleep(1.0)
    stop.set()
    th.join()
    lat = [loaded[v] - starts[v] for v in starts if v in loaded]
    return {"versions": n, "loaded": len(lat), "bytes": size, "p50_s": pct(lat, 50), "p99_s": pct(lat, 99)}


def main() -> None:
    faulthandler.dump_traceback_later(1800, exit=True)  # a hung run dumps stacks instead of hanging
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="sqlite,redis")
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p.add_argument("--parts", default="ingest,latency,publish", help="which measurements to run")
    p.add_argument("--reps", type=int, default=3, help="ingest repetitions (best of) per variant")
    p.add_argument("--episodes", type=int, default=480, help="ingest payloads per run (split over the clients)")
    p.add_argument("--out", default="runs/bench/dataplane.json")
    a = p.parse_args()
    if a.episodes < 16 or a.reps < 1:
        print("error: --episodes must be >= 16 and --reps >= 1", file=sys.stderr)
        sys.exit(2)
    n_ingest = 96 if a.quick else a.episodes
    robots, per_robot = (2, 5) if a.quick else (4, 25)
    n_pub = 4 if a.quick else 20
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "backends": {},
    }
    payloads = [(ep.episode_id, episode_to_bytes(ep)) for ep in (episode("r", i) for i in range(n_ingest))]
    for backend in a.backends.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"lwd-bench-{backend}-", dir=os.environ.get("LWD_BENCH_TMP")))
        redis = start_redis(work / "redis") if backend == "redis" else None
        try:

            def cfg(root: Path, redis=redis) -> DataPlaneConfig:
                base = DataPlaneConfig.local(root)
                return base if redis is None else DataPlaneConfig(events=redis.url, store=base.store)

            res = {"ingest": []}
            for c in (1, 4, 16) if "ingest" in a.parts else ():
                res["ingest"].append(bench_ingest(cfg, work / f"ingest-{c}", c, payloads, a.reps))
                print(backend, res["ingest"][-1], flush=True)
            if redis:
                redis.flush()
            if "latency" in a.parts:
                res["episode_to_sampleable"] = bench_episode_latency(work / "latency", cfg(work / "latency"), robots,
                                                                     per_robot, 0.05)  # fmt: skip
                print(backend, res["episode_to_sampleable"], flush=True)
            if "publish" in a.parts:
                res["publish_to_loaded"] = bench_publish_latency(work / "publish", redis.url if redis else None,
                                                                 n_pub, 2_000_000)  # fmt: skip
                print(backend, res["publish_to_loaded"], flush=True)
            results["backends"][backend] = res
        finally:
            if redis:
                redis.stop()
            shutil.rmtree(work, ignore_errors=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict) -> str:
    lines = ["| backend | clients | raw eps/s (MB/s) | ingest eps/s (MB/s) | ratio | batched-8 eps/s | ratio "
             "| outbox eps/s | ratio |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for b, res in results["backends"].items():
        for r in res["ingest"]:
            lines.append(f"| {b} | {r['clients']} | {r['raw_eps']:.0f} ({r['raw_mbps']:.1f}) | {r['ingest_eps']:.0f} "
                         f"({r['ingest_mbps']:.1f}) | {r['ratio']:.2f} | {r['batched_eps']:.0f} | "
                         f"{r['batched_ratio']:.2f} | {r['outbox_eps']:.0f} | {r['outbox_ratio']:.2f} |")  # fmt: skip
    lines += ["", "| backend | episode end -> sampleable P50 / P99 (s) | publish -> loaded P50 / P99 (s) |",
              "|---|---|---|"]  # fmt: skip
    nan = {"p50_s": float("nan"), "p99_s": float("nan"), "sampleable": 0, "episodes": 0, "loaded": 0,
           "versions": 0}  # fmt: skip
    for b, res in results["backends"].items():
        e, pu = res.get("episode_to_sampleable", nan), res.get("publish_to_loaded", nan)
        lines.append(f"| {b} | {e['p50_s']:.3f} / {e['p99_s']:.3f} ({e['sampleable']}/{e['episodes']}) | "
                     f"{pu['p50_s']:.3f} / {pu['p99_s']:.3f} ({pu['loaded']}/{pu['versions']}) |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
