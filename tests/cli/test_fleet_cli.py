"""`lwd fleet ...` and `lwd status`: operator actions reach the registry, the state and the audit log."""

from __future__ import annotations

import json
import subprocess
import sys

from lwd.cli.main import main
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.rollout.state import RolloutStore


def _fleet_root(tmp_path):
    root = tmp_path / "fleet"
    reg = PolicyRegistry(root / "registry")
    for i in range(3):
        reg.publish({"w": bytes([i])})
    reg.set_default(1)
    db = CoordinatorState(root / "coordinator.db")
    for r, t in (("robot-000", "a"), ("robot-001", "b")):
        db.set_task(r, t)
    db.close()
    return root, reg


def test_fleet_actions_apply_and_are_audited(tmp_path, capsys):
    root, reg = _fleet_root(tmp_path)
    r = ["--root", str(root)]
    assert main(["fleet", "pin", *r, "--version", "2", "--robots", "robot-001", "--actor", "bob"]) == 0
    assert reg.resolve_version("robot-001") == 2
    assert main(["fleet", "promote", *r, "--version", "3", "--reason", "looks good"]) == 0
    assert reg.resolve_version("robot-000") == 3
    assert main(["fleet", "rollback", *r]) == 0  # rejects the default v3, back to v1
    assert reg.resolve_version("robot-000") == 1
    assert main(["fleet", "unpin", *r, "--robots", "robot-001"]) == 0
    assert main(["fleet", "pause", *r]) == 0
    capsys.readouterr()
    audit = RolloutStore(root).audit()
    assert [a["action"] for a in audit] == ["pin", "promote", "rollback", "unpin", "pause"]
    assert audit[0]["actor"] == "operator:bob" and audit[0]["robots"] == ["robot-001"]
    assert audit[1]["reason"] == "looks good" and audit[2]["version"] == 3
    state = json.loads((root / "rollout" / "state.json").read_text())
    assert state["rejected"] == [3] and state["incumbent"] == 1 and state["paused"] is True

    # bad input: one line, exit 2, nothing applied or audited
    assert main(["fleet", "pin", *r, "--version", "9", "--robots", "robot-000"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown policy version 9")
    assert main(["fleet", "pin", *r, "--version", "2", "--robots", "robot-999"]) == 2
    assert "unknown robot id(s) robot-999" in capsys.readouterr().err
    assert main(["fleet", "pin", *r, "--version", "2"]) == 2
    assert len(RolloutStore(root).audit()) == 5

    assert main(["fleet", "audit", *r]) == 0
    out = capsys.readouterr().out
    assert "operator:bob" in out and "rollback v3" in out and "PAUSED" in out


def test_status_shows_rollout_state_and_alerts(tmp_path):
    root, _ = _fleet_root(tmp_path)
    with RolloutStore(root).locked() as st:
        st["incumbent"] = 1
        st["paused"] = True
        st["alerts"].append(
            {"ts": 0.0, "kind": "shift", "reason": "success dropped", "stats": {}, "active": True}
        )
    proc = subprocess.run(
        [sys.executable, "-m", "lwd.cli.main", "status", "--root", str(root)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "rollout: incumbent v1 PAUSED" in proc.stdout and "ALERT (shift): success dropped" in proc.stdout


def test_a_refused_rollback_changes_nothing(tmp_path, capsys):
    root, reg = _fleet_root(tmp_path)
    r = ["--root", str(root)]
    assert main(["fleet", "pin", *r, "--version", "1", "--robots", "robot-001"]) == 0
    before = reg.assignments()
    # v1 is the fleet default and nothing older exists: refused before anything is touched
    assert main(["fleet", "rollback", *r, "--version", "1"]) == 2
    assert "no older version exists" in capsys.readouterr().err
    assert reg.assignments() == before and reg.resolve_version("robot-000") == 1
    state = json.loads((root / "rollout" / "state.json").read_text())
    assert 1 not in state.get("rejected", []) and state["pins"] == {"robot-001": 1}
    assert [a["action"] for a in RolloutStore(root).audit()] == ["pin"]
