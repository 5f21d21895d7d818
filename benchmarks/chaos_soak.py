"""Chaos soak of a local fleet on the Redis data plane: random SIGKILLs of every component and broker
restarts for a configurable time, then the fleet's invariants checked from the files on disk.

Setup: a durable redis-server (``appendonly yes``, ``appendfsync always``) on a free port in its own
directory under the run dir; the tiny fake4 offline dataset and SFT policy of the test fixtures
(built once into ``<run-dir>/inputs``, reused later); a :class:`~lwd.fleet.launch.local.LocalFleet`
(coordinator, learner, robot-client processes) with the Redis event log. Chaos, for ``--minutes``:

* every ~``--kill-every-s`` seconds (uniform in [0.5x, 1.5x]) SIGKILL one component process that is
  working (coordinator: holds the leader lease; learner, robot client: wrote its status file since it
  started, i.e. reached its main loop) and has run at least ``--min-uptime-s``; victims are drawn from
  shuffled rounds of every component (coordinator, learner, each robot client), so each is killed
  about equally often; the launcher's supervisor restarts it (its restart budget is widened to the kill
  rate, see :func:`fleet_config`). Kills during start-up are left out on purpose: on a loaded machine
  a learner takes tens of seconds to start, and killing it again before it works tests nothing;
* every ``--broker-restart-every-s`` seconds SIGKILL redis-server and start it again ``--broker-down-s``
  later on the same port and data directory (the AOF is replayed).

The chaos starts once every component works, a snapshot is committed and the learner has a
checkpoint (at most ``--warmup-s``). Then a quiet ``--settle-s`` (longer until every component works
again), a clean stop (robots flush, drain, learner checkpoints), one final
coordinator pass over anything still unconsumed, and the checks:

(a) every finished episode (a payload in the store, i.e. handed to a robot's outbox and uploaded, or
    still in an outbox) is committed in exactly one snapshot, nothing else is committed, and each
    robot has at least as many committed episodes as its durable counter says it finished;
(b) snapshot numbers are contiguous from 1, each manifest's parent is the previous number, totals
    add up, ``LATEST`` is the last one and was never seen going backwards during the run;
(c) the learner never went back below the checkpoint it had when it was killed (the step it logs
    when it resumes, its metrics after each kill, and the learner step of every later version);
(d) every registry version is published once, in increasing order, and verifies file by file;
(e) no (robot id, seed) pair appears twice among the committed episodes;
and no component was given up on by the supervisor.

Usage::

    .venv/bin/python benchmarks/chaos_soak.py --minutes 15 --seed 0 --kill-every-s 8 \\
        --broker-restart-every-s 120 --out runs/bench/chaos_soak.json

Prints progress lines and the JSON report (also written to ``--out``); exits 1 if an invariant
fails, 2 (one line ``error: ...``) for bad options. Results: ``docs/chaos.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lwd.fleet.dataplane.redis_server import RedisServer
from lwd.fleet.dataplane.redis_server import redis_binary as find_redis

REPO = Path(__file__).resolve().parents[1]
RESUME_MARK = "learner resumes from its checkpoint at step "


# ---------------------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class SoakOptions:
    """What one soak does (every field is a command-line option)."""

    minutes: float = 15.0
    """Length of the chaos phase."""
    seed: int = 0
    """Seed of the chaos schedule (kill times, victims) and of the fleet."""
    kill_every_s: float = 8.0
    """Mean seconds between two component SIGKILLs."""
    broker_restart_every_s: float = 120.0
    """Seconds between two redis-server SIGKILL + restarts."""
    broker_down_s: float = 2.0
    """Seconds the broker stays down at each restart."""
    warmup_s: float = 300.0
    """At most this long before the chaos starts: it starts once the fleet committed a snapshot and the
    learner wrote its first checkpoint (so the first learner kill already has one to resume from)."""
    min_uptime_s: float = 5.0
    """A component is killed only after running this long (so restarts get somewhere)."""
    settle_s: float = 20.0
    """Quiet seconds after the chaos, before the clean stop."""
    robots: int = 4
    """Simulated robots of the fleet."""
    robot_processes: int = 2
    """Robot-client processes hosting them (each one a kill target)."""
    run_dir: str = "runs/chaos_soak"
    """Scratch directory: inputs/ (kept and reused), online/ and redis/ (replaced at every start)."""
    out: str = "runs/bench/chaos_soak.json"
    """Where the JSON report goes."""

    def validate(self) -> None:
        """Raise ``ValueError`` (one line) for the first bad option."""
        positive = ("minutes", "kill_every_s", "broker_restart_every_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0 (got {getattr(self, name)})")
        for name in ("broker_down_s", "warmup_s", "min_uptime_s", "settle_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(self, name)})")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0 (got {self.seed})")
        if self.robots < 1:
            raise ValueError(f"--robots must be >= 1 (got {self.robots})")
        if not 1 <= self.robot_processes <= self.robots:
            raise ValueError(f"--robot-processes must be in 1..--robots (got {self.robot_processes})")
        for name in ("run_dir", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name.replace('_', '-')} must not be empty")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line ``error: ...`` with exit status 2."""

    def error(self, message: str):  # noqa: D401 (argparse API)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_options(argv: list[str] | None = None) -> SoakOptions:
    """Command line -> validated :class:`SoakOptions` (exit 2 with one line on a bad value)."""
    p = OneLineParser(description="Chaos soak of a local fleet on Redis (see the module docstring).")
    defaults = SoakOptions()
    for name, value in asdict(defaults).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    opts = SoakOptions(**vars(p.parse_args(argv)))
    try:
        opts.validate()
    except ValueError as e:
        p.error(str(e))
    return opts


# ---------------------------------------------------------------------------------------------------------
# the broker


def redis_binary() -> str | None:
    """redis-server on the PATH, else what ``scripts/ensure_redis.sh`` finds or installs (None: neither)."""
    return find_redis(REPO / "scripts" / "ensure_redis.sh")


# ---------------------------------------------------------------------------------------------------------
# the fleet


def build_inputs(directory: Path) -> tuple[Path, Path]:
    """The fake4 offline dataset and SFT policy of the test fixtures (``tests/conftest.py``), built once
    under ``directory`` and reused when already there."""
    from lwd.configs.collect import CollectConfig
    from lwd.configs.presets import DEBUG_ARCH
    from lwd.configs.train import LoopConfig, SFTConfig
    from lwd.pipeline.collect import collect
    from lwd.pipeline.pretrain import pretrain

    data, sft = directory / "offline_data", directory / "sft"
    done = directory / "inputs.json"
    if done.is_file():
        d = json.loads(done.read_text())
        return Path(d["dataset"]), Path(d["init"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    collect(CollectConfig(out=data, suite="fake4", episodes_per_task=24), progress=False)
    loop = LoopConfig(steps=150, batch_size=64, log_every=50, checkpoint_every=50, threads=1)
    init = pretrain(SFTConfig(dataset=data, out=sft, policy=DEBUG_ARCH, loop=loop, lr=1e-3, warmup_steps=10),
                    progress=False)  # fmt: skip
    done.write_text(json.dumps({"dataset": str(data), "init": str(init)}))
    return data, Path(init)


def fleet_config(opts: SoakOptions, events_url: str):
    """The tests' small fake4 fleet (``tests/fleet/online_support.py``) on the Redis event log.

    Differences, all forced by the kill rate: a short event lease (5 s) so a killed coordinator's
    leased events come back soon, and a restart budget that a SIGKILL every few seconds never spends
    (500 restarts per 60 s window, backoff 0.5 s doubling to at most 4 s); no wall or step budget
    (the soak stops the fleet itself)."""
    from lwd.configs.online import Budget, LearnerSettings, OnlineConfig, RolloutSettings

    learner = LearnerSettings(publish_every=10, checkpoint_every=10, log_every=5, batch_size=16,
                              min_online_transitions=100, utd=0.5, seed=opts.seed)  # fmt: skip
    return OnlineConfig(
        suite="fake4", num_robots=opts.robots, robot_processes=opts.robot_processes, long_task_weight=1.0,
        heartbeat_s=1.0, status_every_s=5.0, stop_timeout_s=60.0, learner=learner,
        budget=Budget(max_wall_s=opts.minutes * 60 + 3600), rollout=RolloutSettings(enabled=False),
        dataplane=events_url, lease_s=5.0, max_restarts=500, restart_window_s=60.0,
        restart_backoff_s=0.5, restart_backoff_max_s=4.0, seed=opts.seed,
    )  # fmt: skip


def kind_of(name: str) -> str:
    """Component kind of a child name: ``coordinator``, ``learner`` or ``robot-client``."""
    return "robot-client" if name.startswith("client-") else name


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def leader_pid(fleet_root: Path) -> int | None:
    """Pid of the coordinator holding the leader lease (None: no one, or unreadable right now)."""
    try:
        con = sqlite3.connect(f"file:{fleet_root / 'coordinator.db'}?mode=ro", uri=True, timeout=1.0)
        try:
            row = con.execute("SELECT owner, expires_at FROM leader").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return int(row[0].split(":")[1]) if row and row[1] > time.time() else None


def checkpoint_step(online: Path) -> int:
    """The learner's newest checkpointed step (0: none yet)."""
    return int((read_json(online / "learner" / "checkpoints" / "latest.json", {}) or {}).get("step", 0))


class LatestWatcher:
    """Polls ``snapshots/LATEST`` in the background; :attr:`seen` must never go backwards."""

    def __init__(self, store_dir: Path, every_s: float = 0.05):
        self.path = store_dir / "snapshots" / "LATEST"
        self.every_s = every_s
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            n = (read_json(self.path, {}) or {}).get("number")
            if isinstance(n, int) and (not self.seen or n != self.seen[-1]):
                self.seen.append(n)
            time.sleep(self.every_s)

    def stop(self) -> list[int]:
        self._stop.set()
        self._t.join()
        return self.seen


class Chaos:
    """The chaos schedule on one running fleet: component SIGKILLs and broker restarts."""

    def __init__(self, fleet, broker: RedisServer, opts: SoakOptions, say=print):
        self.fleet, self.broker, self.opts, self.say = fleet, broker, opts, say
        self.rng = random.Random(opts.seed)
        self.kills: Counter = Counter()
        self.learner_kills: list[dict[str, float]] = []
        """``{"time", "checkpoint"}`` of each learner SIGKILL: the checkpointed step at that moment."""
        self._bag: list[str] = []
        self._started: dict[str, tuple[int, float, float]] = {}
        """child name -> (pid, monotonic, wall clock) of its current process, as first seen here."""
        self._broker_up_at: float | None = None

    def _seen(self, child) -> tuple[int, float, float] | None:
        if not child.alive:
            return None
        pid = child.proc.pid
        if self._started.get(child.name, (None,))[0] != pid:
            self._started[child.name] = (pid, time.monotonic(), time.time())
        return self._started[child.name]

    def uptime(self, child) -> float:
        """Seconds since this child's current process started (as first seen here)."""
        seen = self._seen(child)
        return 0.0 if seen is None else time.monotonic() - seen[1]

    def ready(self, child) -> bool:
        """Up and working: the coordinator holds the leader lease; the learner and robot clients wrote
        their status file since their current process started (they are in their main loop)."""
        seen = self._seen(child)
        if seen is None:
            return False
        if child.name == "coordinator":
            return leader_pid(self.fleet.fleet_root) == seen[0]
        path = (self.fleet.learner_dir / "status.json" if child.name == "learner"
                else self.fleet.dir / "robots" / f"{child.name}.json")  # fmt: skip
        return float((read_json(path, {}) or {}).get("time", 0)) >= seen[2]

    def not_ready(self) -> list[str]:
        return [c.name for c in self.fleet.children if not self.ready(c)]

    def next_victim(self):
        """A component from the current shuffled round of all of them that is ready and has run at least
        ``min_uptime_s`` (None if none is); rounds keep the kills per component balanced."""
        if not self._bag:
            self._bag = [c.name for c in self.fleet.children]
            self.rng.shuffle(self._bag)
        for name in reversed(self._bag):
            child = self.fleet.child(name)
            if self.uptime(child) >= self.opts.min_uptime_s and self.ready(child):
                self._bag.remove(name)
                return child
        return None

    def kill(self, child) -> None:
        online = self.fleet.dir
        if child.name == "learner":
            self.learner_kills.append({"time": time.time(), "checkpoint": checkpoint_step(online)})
        os.kill(child.proc.pid, signal.SIGKILL)
        self.kills[child.name] += 1
        self.say(f"SIGKILL {child.name} (pid {child.proc.pid}; kill #{self.kills[child.name]})")

    def broker_down(self) -> None:
        self.broker.kill()  # the next start counts as a restart
        self._broker_up_at = time.monotonic() + self.opts.broker_down_s
        self.say(f"SIGKILL redis-server (restart #{self.broker.restarts + 1})")

    def tick(self, now: float) -> None:
        """Restart the broker if due; refresh the supervisor."""
        if self._broker_up_at is not None and now >= self._broker_up_at:
            self.broker.start()
            self._broker_up_at = None
        self.fleet.supervise()
        for c in self.fleet.children:
            self._seen(c)

    def run(self, seconds: float, progress_every_s: float = 30.0) -> None:
        """Chaos for ``seconds``; the broker is up again when this returns."""
        start = time.monotonic()
        end = start + seconds
        next_kill = start + self.rng.uniform(0.5, 1.5) * self.opts.kill_every_s
        next_broker = start + self.opts.broker_restart_every_s
        next_note = start + progress_every_s
        while (now := time.monotonic()) < end:
            self.tick(now)
            if now >= next_kill and (victim := self.next_victim()) is not None:
                self.kill(victim)
                next_kill = now + self.rng.uniform(0.5, 1.5) * self.opts.kill_every_s
            if now >= next_broker and self._broker_up_at is None:
                self.broker_down()
                next_broker = now + self.opts.broker_restart_every_s
            if now >= next_note:
                self.say(progress_line(self.fleet, now - start))
                next_note += progress_every_s
            time.sleep(0.1)
        if self._broker_up_at is not None:
            time.sleep(max(0.0, self._broker_up_at - time.monotonic()))
            self.tick(time.monotonic())

    def warm_up(self, timeout_s: float) -> float:
        """Supervise until every component is ready, a snapshot is committed and the learner has a
        checkpoint (or ``timeout_s``); returns the seconds it took."""
        start = time.monotonic()
        latest = self.fleet.fleet_root / "store" / "snapshots" / "LATEST"
        while time.monotonic() - start < timeout_s:
            if latest.is_file() and checkpoint_step(self.fleet.dir) > 0 and not self.not_ready():
                break
            self.tick(time.monotonic())
            time.sleep(0.2)
        return time.monotonic() - start

    def settle(self, seconds: float, timeout_s: float = 300.0) -> float:
        """No chaos: keep supervising for ``seconds`` and until every component is ready again (at most
        ``timeout_s``); returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < seconds or (
            self.not_ready() and time.monotonic() - start < timeout_s
        ):
            self.tick(time.monotonic())
            time.sleep(0.2)
        return time.monotonic() - start


def progress_line(fleet, elapsed_s: float) -> str:
    robots = fleet.robot_status()
    lst = fleet.learner_status()
    latest = (read_json(fleet.fleet_root / "store" / "snapshots" / "LATEST", {}) or {}).get("number", 0)
    return (f"[{elapsed_s:6.0f}s] episodes {sum(r.get('episodes', 0) for r in robots.values())}, "
            f"snapshot {latest}, learner step {lst.get('step', 0)}, version {lst.get('version', 0)}, "
            f"restarts {sum(c.restarts for c in fleet.children)}")  # fmt: skip


def final_coordinator_pass(fleet, timeout_s: float = 180.0) -> None:
    """One more coordinator over whatever the stopped fleet left unconsumed (normally nothing): the
    plan's coordinator command plus ``--idle-exit-s 3``."""
    comp = next(c for c in fleet.plan.components if c.kind == "coordinator")
    log_path = fleet.dir / "logs" / "coordinator-final.log"
    with open(log_path, "ab") as out:
        subprocess.run([sys.executable, "-m", comp.module, *comp.argv(), "--idle-exit-s", "3"], stdout=out,
                       stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# invariants (from the files on disk)


def check_snapshots(store_dir: Path, seen: list[int]) -> dict[str, Any]:
    """(b): manifests 1..LATEST contiguous, parent = previous, totals add up, LATEST monotonic."""
    latest = (read_json(store_dir / "snapshots" / "LATEST", {}) or {}).get("number", 0)
    names = sorted(p.name for p in (store_dir / "snapshots").glob("*.json") if not p.name.startswith("."))
    problems, entries, total = [], [], 0
    if names != [f"{n:08d}.json" for n in range(1, latest + 1)]:
        problems.append(f"manifest files are not exactly 1..LATEST={latest}: {names[:3]}...{names[-3:]}")
    for n in range(1, latest + 1):
        m = read_json(store_dir / "snapshots" / f"{n:08d}.json")
        if not m or m.get("number") != n or m.get("parent") != n - 1:
            problems.append(f"manifest {n}: number/parent wrong or unreadable")
            continue
        entries += m["added"]
        total += len(m["added"])
        if m.get("total") != total:
            problems.append(f"manifest {n}: total {m.get('total')} != {total}")
    if seen != sorted(seen):
        problems.append(f"LATEST went backwards while watched: {seen}")
    return {"ok": not problems, "problems": problems[:10], "count": latest, "latest_seen": len(seen),
            "entries": entries}  # fmt: skip


def stored_ids(store_dir: Path) -> set[str]:
    """Ids of every episode payload in the store (each was finished and handed to an outbox)."""
    return {
        p.name.split(".")[0]
        for p in (store_dir / "episodes").rglob("*.parquet")
        if not p.name.startswith(".")
    }


def outbox_ids(online: Path, sub: str) -> set[str]:
    """Ids still in the robots' outboxes (``pending`` or ``quarantine``)."""
    return {
        p.name[21:-8] for p in (online / "outbox").glob(f"*/{sub}/*.parquet") if not p.name.startswith(".")
    }


def robot_counters(online: Path, robots: dict[str, dict]) -> dict[str, dict[str, int]]:
    """robot id -> its durable episode counter (``episode_counter.json``), else its status file's count."""
    out = {}
    for rid, st in robots.items():
        c = read_json(online / "outbox" / rid / "episode_counter.json")
        out[rid] = c if c else {"episodes": st.get("episodes", 0), "next": st.get("episodes", 0), "killed": 0}
    return out


def coordinator_rows(fleet_root: Path) -> dict[str, Any]:
    with sqlite3.connect(fleet_root / "coordinator.db") as c:
        quarantined = c.execute(
            "SELECT episode_id, reason FROM episodes WHERE status = 'quarantined'"
        ).fetchall()
        committed = c.execute("SELECT COUNT(*) FROM episodes WHERE status = 'committed'").fetchone()[0]
    return {"committed": committed, "quarantined": dict(quarantined)}


def check_episodes(online: Path, entries: list[dict], robots: dict[str, dict]) -> dict[str, Any]:
    """(a): every finished episode committed exactly once, nothing else, per-robot counts cover the
    robots' own finished counters."""
    store_dir = online / "fleet" / "store"
    membership = Counter(e["episode_id"] for e in entries)
    committed = set(membership)
    pending, outbox_quarantined = outbox_ids(online, "pending"), outbox_ids(online, "quarantine")
    finished = stored_ids(store_dir) | pending | outbox_quarantined
    duplicates = sorted(i for i, k in membership.items() if k > 1)
    lost = sorted(finished - committed)
    invented = sorted(committed - finished)
    per_robot = Counter(e["robot_id"] for e in entries)
    counters = robot_counters(online, robots)
    short = {
        rid: (per_robot[rid], c["episodes"]) for rid, c in counters.items() if per_robot[rid] < c["episodes"]
    }
    coord = coordinator_rows(online / "fleet")
    ok = not (duplicates or lost or invented or short) and coord["committed"] == len(committed)
    return {
        "ok": ok, "finished": len(finished), "committed": len(committed), "lost": len(lost),
        "duplicates": len(duplicates), "invented": len(invented), "pending_in_outboxes": len(pending),
        "quarantined_in_outboxes": len(outbox_quarantined), "coordinator_quarantined": coord["quarantined"],
        "coordinator_committed_rows": coord["committed"], "robots_short_of_their_counter": short,
        "robot_finished_counters": {rid: c["episodes"] for rid, c in counters.items()},
        "robot_killed_episodes": {rid: c.get("killed", 0) for rid, c in counters.items()},
        "examples": {"lost": lost[:5], "duplicates": duplicates[:5], "invented": invented[:5]},
    }  # fmt: skip


def check_seeds(store_dir: Path, entries: list[dict]) -> dict[str, Any]:
    """(e): no (robot id, seed) pair twice among the committed episodes (payloads read and verified)."""
    from lwd.fleet.dataplane.store import EpisodeStore

    store = EpisodeStore(str(store_dir))
    pairs: Counter = Counter()
    unreadable, mismatched = [], []
    for e in entries:
        try:
            ep = store.get(e["uri"], e["sha256"])
        except Exception as err:  # noqa: BLE001 (reported, not raised)
            unreadable.append(f"{e['episode_id']}: {err}")
            continue
        if ep.robot_id != e["robot_id"] or ep.episode_id != e["episode_id"]:
            mismatched.append(e["episode_id"])
        pairs[(ep.robot_id, int(ep.seed))] += 1
    reused = sorted(f"{r}:{s} x{k}" for (r, s), k in pairs.items() if k > 1)
    return {"ok": not (reused or unreadable or mismatched), "seed_reuses": len(reused), "examples": reused[:5],
            "unreadable": unreadable[:5], "mismatched": mismatched[:5], "read": sum(pairs.values())}  # fmt: skip


def resume_events(log_path: Path) -> list[tuple[float, int]]:
    """(time, step) of every 'resumes from its checkpoint' line of the learner's log."""
    out = []
    text = log_path.read_text(errors="replace") if log_path.is_file() else ""
    for line in text.splitlines():
        if RESUME_MARK not in line:
            continue
        try:
            t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((t, int(line.rsplit(" ", 1)[-1])))
        except ValueError:
            continue
    return out


def metric_steps(path: Path) -> list[tuple[float, int]]:
    """(time, step) of every complete record of the learner's metrics.jsonl."""
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            r = json.loads(line)
            out.append((float(r["time"]), int(r["step"])))
        except (ValueError, KeyError, TypeError):
            continue  # a record cut by a SIGKILL
    return out


def check_learner(online: Path, registry, kills: list[dict[str, float]]) -> dict[str, Any]:
    """(c): after each SIGKILL the learner resumed at or above the checkpoint it had, its logged steps
    and the learner step of every version published later stayed above it."""
    resumes = resume_events(online / "logs" / "learner.log")
    metrics = metric_steps(online / "learner" / "metrics.jsonl")
    infos = [registry.info(v) for v in registry.versions()]
    problems = []
    for k in kills:
        t, c = k["time"], int(k["checkpoint"])
        after = [s for tr, s in resumes if tr > t]
        if c > 0 and not after:
            problems.append(f"no resume logged after the kill at {t:.0f} (checkpoint {c})")
        problems += [f"resumed at {s} < checkpoint {c}" for s in after if s < c]
        problems += [
            f"metrics step {s} <= checkpoint {c} after the kill" for tm, s in metrics if tm > t and s <= c
        ]
        problems += [f"version {i['version']} at learner step {i['learner_step']} <= checkpoint {c}"
                     for i in infos if c > 0 and i.get("created_at", 0) > t and i["learner_step"] <= c]  # fmt: skip
    return {"ok": not problems, "problems": problems[:10], "kills": len(kills),
            "kills_with_checkpoint": sum(1 for k in kills if k["checkpoint"] > 0), "resumes": len(resumes),
            "final_step": checkpoint_step(online), "metrics_records": len(metrics)}  # fmt: skip


def check_registry(registry) -> dict[str, Any]:
    """(d): versions increasing and unique, every one fetched and verified file by file."""
    versions = registry.versions()
    problems = [] if versions == sorted(set(versions)) else [f"versions not increasing/unique: {versions}"]
    verified = 0
    for v in versions:
        try:
            registry.fetch(v)  # checks every sha256 against registry.json
            verified += 1
        except Exception as err:  # noqa: BLE001 (reported)
            problems.append(f"version {v}: {err}")
    return {"ok": not problems, "versions": len(versions), "verified": verified, "problems": problems[:10]}


def check_supervision(fleet, chaos: Chaos) -> dict[str, Any]:
    """After the chaos and the quiet period, before the stop: every component is ready again (none was
    given up on by the supervisor). Exits that were not our SIGKILLs are reported, not failures."""
    unplanned = {c.name: [code for code in c.history if code != -signal.SIGKILL] for c in fleet.children}
    not_ready = chaos.not_ready()
    return {"ok": not not_ready, "not_ready": not_ready, "gave_up": [c.name for c in fleet.children if c.finished],
            "unplanned_exits": {k: v for k, v in unplanned.items() if v},
            "restarts": {c.name: c.restarts for c in fleet.children}}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# the soak


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def run_soak(opts: SoakOptions, dataset: Path | None = None, init: Path | None = None,
             redis_server: str | None = None, say=print) -> dict[str, Any]:  # fmt: skip
    """Run one soak (see the module docstring) and return its report (``report["ok"]``: all invariants)."""
    from lwd.data import LwdDataset
    from lwd.fleet.launch.local import LocalFleet
    from lwd.fleet.registry.registry import PolicyRegistry

    opts.validate()
    binary = redis_server or redis_binary()
    if binary is None:
        raise RuntimeError("redis-server is missing and scripts/ensure_redis.sh could not install it")
    run_dir = Path(opts.run_dir).resolve()
    if dataset is None or init is None:
        say("building the fake4 dataset and SFT policy (once per run dir)")
        dataset, init = build_inputs(run_dir / "inputs")
    online, redis_dir = run_dir / "online", run_dir / "redis"
    for d in (online, redis_dir):
        shutil.rmtree(d, ignore_errors=True)
    broker = RedisServer(binary, redis_dir)
    fps = LwdDataset.open(dataset, verify_checksums=False).fps
    fleet = LocalFleet(fleet_config(opts, broker.url), online, Path(dataset), Path(init), fps)
    chaos = Chaos(fleet, broker, opts, say)
    t0, m0 = time.monotonic(), machine()
    say(f"fleet on {broker.url}, run dir {online}; chaos for {opts.minutes} min")
    fleet.start()
    watcher = LatestWatcher(fleet.fleet_root / "store")
    try:
        warmup = chaos.warm_up(opts.warmup_s)
        say(f"warm-up {warmup:.0f}s (learner checkpoint at step {checkpoint_step(online)}); chaos starts")
        t_chaos = time.monotonic()
        chaos.run(opts.minutes * 60)
        chaos_s = time.monotonic() - t_chaos
        say(f"chaos over; settling {opts.settle_s:.0f}s")
        settled = chaos.settle(opts.settle_s)
        say(f"settled in {settled:.0f}s; stopping the fleet")
        supervision = check_supervision(fleet, chaos)
    finally:
        if not broker.up:
            broker.start()
        fleet.stop()
        final_coordinator_pass(fleet)
        seen = watcher.stop()
        broker.kill()
    say("fleet stopped; checking invariants")
    registry = PolicyRegistry(fleet.registry)
    snaps = check_snapshots(fleet.fleet_root / "store", seen)
    entries = snaps.pop("entries")
    checks = {
        "snapshots_contiguous_monotonic": snaps,
        "episodes_exactly_once": check_episodes(online, entries, fleet.robot_status()),
        "no_seed_reuse": check_seeds(fleet.fleet_root / "store", entries),
        "learner_resumes_at_checkpoint": check_learner(online, registry, chaos.learner_kills),
        "registry_versions_verify": check_registry(registry),
        "supervision": supervision,
    }
    report = make_report(opts, chaos, checks, t0, chaos_s, m0)
    report["warmup_s"] = round(warmup, 1)
    return report


def make_report(opts: SoakOptions, chaos: Chaos, checks: dict[str, dict], t0: float, chaos_s: float,
                m0: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The JSON report: options, machine, kills, broker restarts, episode accounting, every check."""
    ep = checks["episodes_exactly_once"]
    by_kind = Counter()
    for name, n in chaos.kills.items():
        by_kind[kind_of(name)] += n
    return {
        "ok": all(c["ok"] for c in checks.values()),
        "invariants": {name: c["ok"] for name, c in checks.items()},
        "options": asdict(opts),
        "kills": dict(sorted(chaos.kills.items())),
        "kills_by_kind": dict(sorted(by_kind.items())),
        "broker_restarts": chaos.broker.restarts,
        "episodes": {k: ep[k] for k in ("finished", "committed", "lost", "duplicates", "invented")},
        "seed_reuses": checks["no_seed_reuse"]["seed_reuses"],
        "registry_versions_verified": checks["registry_versions_verify"]["verified"],
        "registry_versions": checks["registry_versions_verify"]["versions"],
        "snapshots": checks["snapshots_contiguous_monotonic"]["count"],
        "learner_final_step": checks["learner_resumes_at_checkpoint"]["final_step"],
        "wall_s": round(time.monotonic() - t0, 1),
        "chaos_s": round(chaos_s, 1),
        "machine": {**m0, "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[chaos {time.monotonic() - t0:7.1f}s] {msg}", flush=True)

    try:
        report = run_soak(opts, say=say)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "checks"}, indent=2, default=str))
    bad = [name for name, ok in report["invariants"].items() if not ok]
    print(
        f"invariants failed: {', '.join(bad)} (details in {out})" if bad else f"all invariants hold ({out})"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
