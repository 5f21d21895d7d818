"""``lwd fleet ...``: operator actions on the rollout (thin wrapper of :func:`lwd.fleet.ops.operator.operator_action`)."""

from __future__ import annotations

import json
import time

from lwd.configs.fleet import FleetConfig
from lwd.fleet.ops.operator import operator_action
from lwd.fleet.ops.status import format_rollout
from lwd.fleet.rollout.state import RolloutStore
from lwd.utils.errors import LwdError


def run_fleet(cfg: FleetConfig) -> None:
    if not cfg.root.is_dir():
        raise LwdError(f"fleet root {cfg.root} does not exist; pass --root <run_dir>/online/fleet")
    if cfg.action == "audit":
        store = RolloutStore(cfg.root)
        records = store.audit(cfg.limit or None)
        state = store.load()
        if cfg.json:
            print(json.dumps({"state": state, "audit": records}, indent=2))
            return
        for r in records:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
            robots = f" robots={','.join(r['robots'])}" if r.get("robots") else ""
            v = f" v{r['version']}" if r.get("version") is not None else ""
            print(f"{when} {r['actor']:<16} {r['action']:<8}{v}{robots}: {r['reason']}")
        print(format_rollout(state))
        return
    rec = operator_action(
        cfg.root, cfg.action, version=cfg.version, robots=list(cfg.robots), actor=cfg.actor, reason=cfg.reason,
        registry=cfg.registry or None,
    )  # fmt: skip
    print(json.dumps(rec, indent=2) if cfg.json else f"{rec['action']} v{rec['version']} {rec['robots']}: ok")
