"""A multi-node Ray cluster on this machine, started with ``ray start`` exactly as on real machines
(the commands of docs/multi_machine.md), and node failures by SIGKILL of a node's raylet and every
process under it (its workers, agents).

Every node runs from the test's virtualenv. Token authentication (Ray 2.60's default for
``ray start``) is switched off with ``RAY_AUTH_MODE=disabled``: the driver is this test process,
whose Ray reads its authentication mode once at import, and the cluster listens on loopback only
(docs/multi_machine.md keeps tokens on for real machines). Nothing leaves the machine and Ray
downloads nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet_support import free_port

RAY = str(Path(sys.executable).with_name("ray"))
FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
"""GCS settings of the head: a node is declared dead ~3-5 s after its raylet stops answering (Ray's
defaults take ~30 s; real clusters may want to keep them)."""


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class LocalRayCluster:
    """A head node (no CPUs: the driver and coordinator) plus worker nodes added one by one."""

    def __init__(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="/tmp/lwdray."))  # short: Ray's socket paths must fit
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        """Environment of every node (and of the driver)."""

    def _ray_start(self, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **self.env, **(extra_env or {})}
        r = subprocess.run([RAY, "start", *args], env=env, capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")

    def start_head(self, env: dict[str, str] | None = None) -> None:
        self._ray_start(
            ["--head", f"--port={self.port}", "--node-ip-address=127.0.0.1", "--num-cpus=0",
             "--resources=" + json.dumps({"node_head": 1}), "--include-dashboard=false",
             f"--ray-client-server-port={free_port()}", "--disable-usage-stats", f"--temp-dir={self.temp}"],
            {**FAST_FAILURE_DETECTION, **(env or {})},
        )  # fmt: skip

    def add_node(
        self, name: str, cpus: int, resources: dict[str, float], env: dict[str, str] | None = None
    ) -> None:
        """``ray start --address`` a worker node offering ``cpus`` CPUs, ``resources`` and its marker
        resource ``node_<name>`` (how the tests tell nodes apart)."""
        res = {**resources, f"node_{name}": 1}
        self._ray_start(
            [f"--address={self.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
             "--resources=" + json.dumps(res), "--disable-usage-stats"],
            env,
        )  # fmt: skip

    def node_ids(self, ray) -> dict[str, str]:
        """Marker name -> node id of every alive node (from the GCS)."""
        out = {}
        for n in ray.nodes():
            if n.get("Alive"):
                for r in n["Resources"]:
                    if r.startswith("node_"):
                        out[r[len("node_") :]] = n["NodeID"]
        return out

    def raylet_pid(self, node_id: str) -> int:
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                args = cmdline(int(d.name))
                if args and args[0].endswith("/raylet") and f"--node_id={node_id}" in args:
                    return int(d.name)
        raise LookupError(f"no raylet process for node {node_id}")

    def kill_node(self, node_id: str) -> list[int]:
        """SIGKILL the node's raylet and every process under it (workers, agents); returns the pids."""
        raylet = self.raylet_pid(node_id)
        pids = [raylet, *children_of(raylet)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def stop(self) -> None:
        """Kill every process of this cluster (by its temp directory or GCS port, with everything
        under those), not ``ray stop``, which would also stop other Ray instances on the machine."""
        marks = (str(self.temp), f":{self.port}")
        for _ in range(3):
            found = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and int(d.name) != os.getpid()
                     and any(m in a for a in cmdline(int(d.name)) for m in marks)]  # fmt: skip
            # with their children: agents and workers rename themselves (``ray::...``) and lose the marks
            pids = sorted({p for pid in found for p in (pid, *children_of(pid))})
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                return
            time.sleep(0.5)
