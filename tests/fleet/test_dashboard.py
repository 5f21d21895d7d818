"""lwd dashboard without a browser: state aggregation from a hand-made run directory, the HTTP API
over real loopback sockets (read-only default, token checks, input validation, Host/Origin checks,
loopback-only binding) and real operator actions through the token-gated endpoint."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from lwd.cli.main import main
from lwd.fleet.dataplane.events import HeartbeatEvent
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.ops.dashboard import (
    DashboardServer,
    FleetState,
    check_bind_host,
    resolve_paths,
    validate_action,
)
from lwd.fleet.ops.dashboard.outcomes import OutcomeLog
from lwd.fleet.ops.dashboard.sources import JsonlTail
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.utils.errors import ConfigError
from lwd.utils.io import atomic_write_json

TOKEN = "t" * 12 + "-secret-token"


def make_run(tmp_path: Path) -> Path:
    """A run directory as `lwd run` leaves it: robots, learner files, coordinator db, registry, rollout."""
    run = tmp_path / "run"
    online = run / "online"
    fleet = online / "fleet"
    robots = {
        "robot-000": {"task_id": "reach-red", "version": 2, "episodes": 5, "steps": 500, "recent_success": 0.6,
                      "pending": 1},
        "robot-001": {"task_id": "reach-blue", "version": 1, "episodes": 3, "steps": 300, "recent_success": None,
                      "pending": 0},
    }  # fmt: skip
    atomic_write_json(
        online / "robots" / "client-0.json", {"client": "client-0", "time": 0, "robots": robots}
    )
    ld = online / "learner"
    atomic_write_json(ld / "status.json", {"state": "training", "time": time.time(), "step": 20, "version": 2,
                                           "versions_published": 2, "online_transitions": 800, "snapshot": 3})  # fmt: skip
    atomic_write_json(ld / "versions.json", {
        "1": {"episodes": 4, "success_rate": {"reach-red": 0.5, "reach-blue": 0.25}, "intervention_rate": 0.3},
        "2": {"episodes": 2, "success_rate": {"reach-red": 1.0}, "intervention_rate": 0.1},
    })  # fmt: skip
    lines = [json.dumps({"step": s, "time": 1000.0 + s, "learner/step": s, "learner/steps_per_s": 2.0 + s,
                         "fleet/intervention_rate": 0.3}) for s in (5, 10, 15)]  # fmt: skip
    (ld / "metrics.jsonl").write_text(
        "\n".join(lines) + "\n" + '{"step": 20, "ti'
    )  # last line still being written
    db = CoordinatorState(fleet / "coordinator.db")
    now = time.time()
    db.commit([], [], [HeartbeatEvent("robot-000", "reach-red", "running", 2, now),
                       HeartbeatEvent("robot-001", "reach-blue", "running", 1, now - 100)])  # fmt: skip
    db.close()
    with sqlite3.connect(fleet / "coordinator.db") as c:  # robot-001's last heartbeat arrived 100 s ago
        c.execute("UPDATE robots SET received_at = received_at - 100 WHERE robot_id = 'robot-001'")
    reg = PolicyRegistry(fleet / "registry")
    for step in (0, 10):
        reg.publish({"weights.bin": b"w%d" % step}, learner_step=step)
    reg.set_default(1)
    rollout = fleet / "rollout"
    atomic_write_json(rollout / "state.json", {
        "incumbent": 1, "canary": {"version": 2, "robots": ["robot-000"], "started_at": now,
                                   "per_task": {"reach-red": {"canary": [3, 2, 1], "incumbent": [4, 2, 2]}}},
        "rejected": [], "paused": False, "alerts": [], "updated_at": now,
    })  # fmt: skip
    audit = [{"ts": now - 5, "actor": "auto", "action": "promote", "version": 1, "robots": [], "reason": "bootstrap"},
             {"ts": now, "actor": "auto", "action": "canary", "version": 2, "robots": ["robot-000"], "reason": "new"}]  # fmt: skip
    (rollout / "audit.jsonl").write_text("".join(json.dumps(a) + "\n" for a in audit))
    return run


# ---------------------------------------------------------------------------------------------- state
def test_state_aggregates_every_source(tmp_path):
    run = make_run(tmp_path)
    fs = FleetState(resolve_paths(run_dir=run), robot_timeout_s=30.0)
    st = fs.build()
    fs.close()
    assert st["errors"] == []
    rows = {r["id"]: r for r in st["robots"]}
    assert set(rows) == {"robot-000", "robot-001"}
    assert rows["robot-000"] | {"heartbeat_age_s": None} == {
        "id": "robot-000", "task": "reach-red", "status": "running", "version": 2, "pinned": None, "episodes": 5,
        "steps": 500, "recent_success": 0.6, "outbox_pending": 1, "heartbeat_age_s": None}  # fmt: skip
    assert rows["robot-001"]["status"] == "stale"  # heartbeat 100 s old, timeout 30 s
    f = st["fleet"]
    assert (f["robots"], f["running"], f["stale"], f["episodes"]) == (2, 1, 1, 8)
    assert f["tasks"] == ["reach-blue", "reach-red"]
    assert st["learner"]["step"] == 20 and st["learner"]["version"] == 2
    assert st["learner"]["steps_per_s"] == 17.0  # from the last complete metrics line
    assert [p["step"] for p in st["series"]["metrics"]] == [5, 10, 15]  # the partial line is not read yet
    # no outcome rows in coordinator.db: per-version rates come from the learner's versions.json
    assert [r["version"] for r in st["versions"]["rows"]] == [1, 2]
    assert st["versions"]["tasks"] == ["reach-blue", "reach-red"]
    assert st["versions"]["rows"][0]["success_rate"] == {"reach-blue": 0.25, "reach-red": 0.5}
    assert st["series"]["task_success"] == {"reach-red": [[pytest.approx(time.time(), abs=60), 0.6]]}
    assert st["registry"] == {"latest_version": 2, "default_version": 1, "pins": {}}
    assert st["dataplane"]["outbox_pending"] == 1 and st["dataplane"]["learner_snapshot"] == 3
    assert st["rollout"]["state"]["canary"]["version"] == 2
    assert [a["action"] for a in st["rollout"]["audit"]] == ["canary", "promote"]  # newest first
    assert st["control"] == {"enabled": False}
    json.dumps(st)  # JSON-ready


def test_state_of_an_empty_run_has_empty_sections(tmp_path):
    (tmp_path / "run").mkdir()
    st = FleetState(resolve_paths(run_dir=tmp_path / "run")).build()
    assert st["robots"] == [] and st["rollout"] == {"state": None, "audit": []}
    assert st["versions"]["rows"] == [] and st["series"]["metrics"] == [] and st["errors"] == []


def test_unreadable_source_is_reported_not_fatal(tmp_path):
    run = make_run(tmp_path)
    (run / "online" / "learner" / "status.json").write_text("{not json")
    st = FleetState(resolve_paths(run_dir=run)).build()
    assert any("status.json" in e for e in st["errors"])
    assert len(st["robots"]) == 2 and st["learner"]["step"] is None


def test_outcomes_give_rates_per_version_and_rolling_rates_per_task(tmp_path):
    db = tmp_path / "coordinator.db"
    state = CoordinatorState(db)  # creates the outcomes table
    state.close()
    rows = [  # (episode, task, version, success, steps, intervention steps, decided_at)
        ("e1", "a", 1, 1, 100, 0, 10.0), ("e2", "a", 1, 0, 100, 50, 11.0), ("e3", "b", 1, 1, 50, 0, 12.0),
        ("e4", "a", 2, 1, 100, 10, 13.0),
    ]  # fmt: skip
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO outcomes (episode_id, robot_id, task_id, policy_version, success, intervened, "
                      "steps, intervention_steps, decided_at) VALUES (?, 'r', ?, ?, ?, 0, ?, ?, ?)", rows[:3])  # fmt: skip
    log = OutcomeLog(db, window=2)
    log.read()
    assert log.available and log.episodes == 3
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO outcomes (episode_id, robot_id, task_id, policy_version, success, intervened, "
                  "steps, intervention_steps, decided_at) VALUES (?, 'r', ?, ?, ?, 0, ?, ?, ?)", rows[3])  # fmt: skip
    log.read()
    log.read()  # nothing new: no double counting
    per, tasks = log.per_version()
    assert tasks == ["a", "b"]
    assert per == [
        {"version": 1, "episodes": 3, "success_rate": {"a": 0.5, "b": 1.0}, "intervention_rate": 50 / 250,
         "substep": {}},
        {"version": 2, "episodes": 1, "success_rate": {"a": 1.0}, "intervention_rate": 0.1, "substep": {}},
    ]  # fmt: skip
    ts = log.task_series()
    assert ts["success"]["a"] == [[10.0, 1.0], [11.0, 0.5], [13.0, 0.5]]  # window of 2 episodes
    assert ts["intervention"]["a"] == [[10.0, 0.0], [11.0, 0.25], [13.0, 60 / 200]]
    assert ts["substep"] == {}  # no chained task
    log.close()


def test_outcomes_carry_the_substep_score_of_chained_tasks(tmp_path):
    db = tmp_path / "coordinator.db"
    CoordinatorState(db).close()
    rows = [  # (episode, task, version, success, decided_at, substep)
        ("e1", "chain", 1, 0, 10.0, 0.25), ("e2", "chain", 1, 1, 11.0, 1.0), ("e3", "atomic", 1, 1, 12.0, None),
        ("e4", "chain", 2, 0, 13.0, 0.5),
    ]  # fmt: skip
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO outcomes (episode_id, robot_id, task_id, policy_version, success, intervened, "
                      "steps, intervention_steps, decided_at, substep) VALUES (?, 'r', ?, ?, ?, 0, 10, 0, ?, ?)",
                      rows)  # fmt: skip
    log = OutcomeLog(db, window=2)
    log.read()
    per, _ = log.per_version()
    assert [r["substep"] for r in per] == [{"chain": 0.625}, {"chain": 0.5}]  # atomic: no score
    assert log.task_series()["substep"] == {"chain": [[10.0, 0.25], [11.0, 0.625], [13.0, 0.75]]}
    log.close()


def test_outcomes_of_a_database_from_before_substep_scores(tmp_path):
    """An older coordinator database has no ``substep`` column: the dashboard reads it, and opening it
    as the coordinator adds the column without losing rows."""
    db = tmp_path / "coordinator.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE outcomes (episode_id TEXT PRIMARY KEY, robot_id TEXT, task_id TEXT, "
                  "policy_version INTEGER, success INTEGER NOT NULL, intervened INTEGER NOT NULL, steps INTEGER "
                  "NOT NULL, intervention_steps INTEGER NOT NULL, decided_at REAL NOT NULL)")  # fmt: skip
        c.execute("INSERT INTO outcomes VALUES ('e1', 'r', 'a', 1, 1, 0, 10, 0, 5.0)")
    log = OutcomeLog(db)
    log.read()
    assert log.episodes == 1 and log.per_version()[0][0]["substep"] == {}
    log.close()
    CoordinatorState(db).close()
    with sqlite3.connect(db) as c:
        assert "substep" in {r[1] for r in c.execute("PRAGMA table_info(outcomes)")}
        assert c.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (1,)


def test_jsonl_tail_reads_only_complete_new_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    tail = JsonlTail(p, maxlen=3)
    assert tail.read() == []
    p.write_text('{"a": 1}\n{"a": 2')
    assert tail.read() == [{"a": 1}]
    with open(p, "a") as f:
        f.write('}\nnot json\n[1]\n{"a": 3}\n{"a": 4}\n')
    assert tail.read() == [{"a": 2}, {"a": 3}, {"a": 4}]  # maxlen 3; garbage skipped
    assert tail.skipped == 2
    p.write_text('{"a": 9}\n')  # replaced by a shorter file: read again from the start
    assert tail.read() == [{"a": 9}]


def test_resolve_paths(tmp_path):
    run = make_run(tmp_path)
    fleet = run / "online" / "fleet"
    assert resolve_paths(run_dir=run).fleet_root == fleet
    assert resolve_paths(run_dir=run / "online").fleet_root == fleet
    for p in (resolve_paths(fleet_root=fleet), resolve_paths(run_dir=fleet)):
        assert p.fleet_root == fleet and p.online_dir == run / "online"
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_paths(run_dir=tmp_path / "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_paths(fleet_root=tmp_path / "nope")


# ---------------------------------------------------------------------------------------------- HTTP
class Served:
    def __init__(self, server: DashboardServer):
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def action(self, payload, token: str | None = TOKEN, **headers):
        h = {"Content-Type": "application/json", **headers}
        if token is not None:
            h["X-LWD-Token"] = token
        status, _, body = self.request("POST", "/api/action", json.dumps(payload).encode(), h)
        return status, json.loads(body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(token=None):
        s = Served(
            DashboardServer(
                resolve_paths(run_dir=make_run(tmp_path)), "127.0.0.1", 0, token=token, cache_s=0.0
            )
        )
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def test_page_and_state_are_served_read_only_by_default(serve):
    s = serve()
    status, headers, body = s.request("GET", "/")
    assert status == 200 and b"lwd fleet" in body and headers["Content-Type"].startswith("text/html")
    assert (
        "script-src 'self'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
    )
    status, headers, body = s.request("GET", "/app.js")
    assert status == 200 and b"api/state" in body and b"innerHTML" not in body
    status, _, body = s.request("GET", "/api/state")
    assert status == 200 and {r["id"] for r in json.loads(body)["robots"]} == {"robot-000", "robot-001"}
    assert s.request("GET", "/nope")[0] == 404
    assert s.request("GET", "/../../etc/passwd")[0] == 404
    # read-only: every action is refused, whatever the token
    assert s.action({"action": "promote", "version": 2})[0] == 403
    assert s.action({"action": "promote", "version": 2}, token=None)[0] == 403
    assert PolicyRegistry(s.server.paths.fleet_root / "registry").assignments()["*"] == 1


def test_foreign_host_header_is_refused(serve):
    s = serve()
    status, _, _ = s.request("GET", "/api/state", headers={"Host": "evil.example:80"})
    assert status == 403  # DNS rebinding: a foreign name resolving to 127.0.0.1
    assert s.request("GET", "/api/state", headers={"Host": f"localhost:{s.server.port}"})[0] == 200


def test_control_needs_the_token_and_valid_input(serve):
    s = serve(token=TOKEN)
    fleet = s.server.paths.fleet_root
    assert s.action({"action": "pin", "version": 2, "robots": ["robot-001"]}, token=None) == (
        403, {"ok": False, "error": "missing or wrong X-LWD-Token header"})  # fmt: skip
    assert s.action({"action": "pin", "version": 2, "robots": ["robot-001"]}, token=TOKEN + "x")[0] == 403
    assert s.action({"action": "pin", "version": 2, "robots": ["robot-001"]}, token="")[0] == 403
    o = f"http://127.0.0.1:{s.server.port}"
    assert s.action({"action": "promote", "version": 2}, Origin="http://evil.example")[0] == 403
    assert PolicyRegistry(fleet / "registry").assignments() == {"*": 1}  # nothing changed so far
    assert not (fleet / "rollout" / "audit.jsonl").read_text().count("operator")
    for bad, msg in [
        ({"action": "delete-everything"}, "action must be one of"),
        ({"action": "pin", "version": 2}, "pin needs at least one robot"),
        ({"action": "pin", "version": "2", "robots": ["robot-001"]}, "non-negative integer"),
        ({"action": "pin", "version": 2, "robots": ["robot-001; rm -rf /"]}, "invalid robot id"),
        ({"action": "promote", "version": 2, "extra": 1}, "unknown field"),
        ({"action": "promote", "version": 99}, "unknown policy version 99"),  # operator_action's check
        ({"action": "pin", "version": 1, "robots": ["robot-999"]}, "unknown robot id"),
    ]:
        status, res = s.action(bad, Origin=o)
        assert status == 400 and msg in res["error"], (bad, res)
    status, _, _ = s.request("POST", "/api/action", b"x" * 5000,
                             {"X-LWD-Token": TOKEN, "Content-Type": "application/json"})  # fmt: skip
    assert status == 413
    status, _, _ = s.request(
        "POST", "/api/action", b"{}", {"X-LWD-Token": TOKEN, "Content-Type": "text/plain"}
    )
    assert status == 415

    # with the token, a real operator action: registry, rollout state and audit log change
    status, res = s.action(
        {"action": "pin", "version": 2, "robots": ["robot-001"], "reason": "try v2"}, Origin=o
    )
    assert status == 200 and res["ok"]
    assert res["result"]["action"] == "pin" and res["result"]["actor"] == "operator:dashboard"
    assert PolicyRegistry(fleet / "registry").assignments()["robot-001"] == 2
    last = json.loads((fleet / "rollout" / "audit.jsonl").read_text().splitlines()[-1])
    assert (last["action"], last["version"], last["robots"], last["reason"]) == (
        "pin",
        2,
        ["robot-001"],
        "try v2",
    )
    st = json.loads(s.request("GET", "/api/state")[2])
    assert {r["id"]: r["pinned"] for r in st["robots"]} == {"robot-000": None, "robot-001": 2}
    assert st["rollout"]["audit"][0]["action"] == "pin" and st["control"] == {"enabled": True}


def test_validate_action():
    assert validate_action({"action": "rollback"}) == {"action": "rollback", "version": None, "robots": None,
                                                       "reason": ""}  # fmt: skip
    assert validate_action({"action": "unpin", "robots": ["r1", "r1"]})["robots"] == ["r1"]
    for bad in (None, [], {"action": "pin", "version": True, "robots": ["r"]}, {"action": "promote", "version": -1},
                {"action": "promote", "reason": "x" * 501}, {"action": "unpin", "robots": "r1"}):  # fmt: skip
        with pytest.raises(ValueError):
            validate_action(bad)


def test_binding_is_loopback_only_unless_allowed(tmp_path):
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        check_bind_host(host, allow_remote=False)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ConfigError, match="non-loopback"):
            check_bind_host(host, allow_remote=False)
        check_bind_host(host, allow_remote=True)
    paths = resolve_paths(run_dir=make_run(tmp_path))
    with pytest.raises(ConfigError, match="non-loopback"):
        DashboardServer(paths, "0.0.0.0", 0)
    with pytest.raises(ConfigError, match="16 characters"):
        DashboardServer(paths, "127.0.0.1", 0, token="short")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["dashboard", "--run-dir", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["dashboard", "--run-dir", str(tmp_path / "run"), "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "non-loopback" in capsys.readouterr().err
