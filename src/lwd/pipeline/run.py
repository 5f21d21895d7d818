"""``lwd run``: the main job. Collect offline data if absent, SFT, offline LWD, learn online while a
simulated fleet deploys the policy, evaluate every stage's policy on held-out seeds, report.

Every stage writes under ``run_dir`` and is resumable; a stage that finished leaves a marker
(``run_dir/stages/<name>.json``) and is skipped on the next ``lwd run``. Ctrl-C stops cleanly (the
running stage checkpoints) and ``lwd run`` again resumes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lwd.configs.run import RunConfig
from lwd.envs.shift import load_shift
from lwd.eval.runner import evaluate
from lwd.pipeline.collect import collect
from lwd.pipeline.online import run_online, stop_online
from lwd.pipeline.pretrain import pretrain
from lwd.pipeline.report import write_report
from lwd.pipeline.train_offline import train_offline
from lwd.utils.errors import ConfigError
from lwd.utils.io import atomic_write_json, read_json

log = logging.getLogger(__name__)


def resolve(cfg: RunConfig) -> RunConfig:
    """Point every stage at ``run_dir`` and the run's suite and seed."""
    rd = cfg.run_dir
    rep = dataclasses.replace
    collect_cfg = rep(cfg.collect, out=rd / "offline_data", suite=cfg.suite, seed=cfg.seed, resume=True)
    sft = rep(cfg.sft, dataset=rd / "offline_data", out=rd / "sft", loop=rep(cfg.sft.loop, seed=cfg.seed))
    offline = rep(
        cfg.offline,
        dataset=rd / "offline_data",
        init=rd / "sft" / "policy",
        out=rd / "offline_lwd",
        loop=rep(cfg.offline.loop, seed=cfg.seed),
    )
    online = rep(cfg.online, suite=cfg.suite, seed=cfg.seed)
    if cfg.engine is not None:
        online = rep(online, engine=cfg.engine)
    if cfg.ray_address is not None:
        online = rep(online, ray_address=cfg.ray_address)
    if cfg.ray_detached:
        online = rep(online, ray_detached=True)
    ev = rep(cfg.eval, suite=cfg.suite)
    return rep(cfg, collect=collect_cfg, sft=sft, offline=offline, online=online, eval=ev)


class Stages:
    """Runs named stages once, recording their results in ``run_dir/stages``."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, name: str) -> dict | None:
        p = self.dir / f"{name}.json"
        return read_json(p) if p.is_file() else None

    def run(self, name: str, fn: Callable[[], Any]) -> dict:
        prev = self.done(name)
        if prev is not None:
            log.info("stage %s: already done, skipping", name)
            return prev
        log.info("stage %s: starting", name)
        t0 = time.monotonic()
        result = fn()
        rec = {"stage": name, "seconds": time.monotonic() - t0, "result": result}
        atomic_write_json(self.dir / f"{name}.json", rec)
        log.info("stage %s: done in %.0f s", name, rec["seconds"])
        return rec


def check_conditions(cfg: RunConfig) -> None:
    """Every evaluation condition must load (shipped name or shift file) before any stage runs."""
    for cond in (*cfg.eval_conditions, *cfg.generalisation_conditions):
        load_shift(cond)  # ConfigError naming the condition and what is expected
    if cfg.generalisation_conditions and cfg.generalisation_episodes < 1:
        raise ConfigError(f"--generalisation-episodes must be >= 1, got {cfg.generalisation_episodes}")


def run(cfg: RunConfig) -> Path:
    """Run (or resume) the main job; returns the report path."""
    check_conditions(cfg)
    cfg = resolve(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        cfg.run_dir / "config.json", json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    )
    stages = Stages(cfg.run_dir)
    stages.run("collect", lambda: dataclasses.asdict(collect(cfg.collect)))
    stages.run("sft", lambda: {"policy": str(pretrain(cfg.sft))})
    stages.run("offline", lambda: {"policy": str(train_offline(cfg.offline))})
    policies = {"sft": cfg.run_dir / "sft" / "policy", "lwd_offline": cfg.run_dir / "offline_lwd" / "policy"}
    if not cfg.skip_online:
        stages.run(
            "online",
            lambda: run_online(
                cfg.online, cfg.run_dir, cfg.run_dir / "offline_data", cfg.run_dir / "offline_lwd"
            ),
        )
        policies["lwd_online"] = cfg.run_dir / "online" / "policy"
    for name, ckpt in policies.items():
        if name == "lwd_offline" and not cfg.eval_offline:
            continue
        conds = list(cfg.eval_conditions)
        lab_later = "lab" in cfg.generalisation_conditions  # SFT's lab evaluation comes with those
        if name == "sft" and cfg.eval_sft_in_lab and "lab" not in conds and not lab_later:
            conds.insert(0, "lab")
        for cond in conds:
            ev = dataclasses.replace(
                cfg.eval, checkpoint=ckpt, shift=cond, out=cfg.run_dir / "eval" / f"{name}_{cond}", name=name
            )
            stages.run(f"eval_{name}_{cond}", lambda ev=ev: _summary(evaluate(ev)))
    for cond in cfg.generalisation_conditions:  # never trained on: SFT and the final policy, paired
        for name in ("sft", "lwd_online" if "lwd_online" in policies else "lwd_offline"):
            ev = dataclasses.replace(cfg.eval, checkpoint=policies[name], shift=cond, name=name,
                                     out=cfg.run_dir / "eval" / f"{name}_{cond}",
                                     episodes_per_task=cfg.generalisation_episodes)  # fmt: skip
            stages.run(f"eval_{name}_{cond}", lambda ev=ev: _summary(evaluate(ev)))
    conditions = tuple(dict.fromkeys((("lab",) if cfg.eval_sft_in_lab else ()) + tuple(cfg.eval_conditions)
                                     + tuple(cfg.generalisation_conditions)))  # fmt: skip
    evaluated = [p for p in policies if p != "lwd_offline" or cfg.eval_offline]
    return write_report(cfg.run_dir, evaluated, conditions)


def stop(cfg: RunConfig) -> dict[str, Any]:
    """``lwd run --engine ray --stop``: stop the detached Ray fleet of ``cfg.run_dir``; runs no stage."""
    cfg = resolve(cfg)
    if cfg.online.engine != "ray":
        raise ConfigError("--stop stops a detached Ray fleet: add --engine ray")
    return stop_online(cfg.run_dir, cfg.ray_address)


def _summary(res: dict) -> dict:
    return {
        "average_success": res["average_success"],
        "episodes": res["episodes"],
        "per_task": {t: s["success_rate"] for t, s in res["tasks"].items()},
    }
