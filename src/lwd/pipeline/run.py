"""``lwd run``: the main job. Collect offline data if absent, SFT, offline LWD, learn online while a
simulated fleet deploys the policy, evaluate every stage's policy on held-out seeds, report.

Every stage writes under ``run_dir`` and is resumable; a stage that finished leaves a marker
(``run_dir/stages/<name>.json``) and is skipped on the next ``lwd run``. Ctrl-C stops cleanly (the
running stage checkpoints) and ``lwd run`` again resumes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lwd.configs.checks import load_json_object
from lwd.configs.run import SET_BY_RUN, RunConfig
from lwd.eval.runner import evaluate
from lwd.fleet.dataplane import DataPlaneConfig
from lwd.pipeline.collect import collect
from lwd.pipeline.online import run_online, stop_online
from lwd.pipeline.pretrain import pretrain
from lwd.pipeline.report import write_report
from lwd.pipeline.train_offline import train_offline
from lwd.pipeline.trainer import option_differences
from lwd.utils.device import resolve_device
from lwd.utils.errors import ConfigError
from lwd.utils.io import atomic_write_json, read_json

log = logging.getLogger(__name__)


def resolve(cfg: RunConfig) -> RunConfig:
    """Point every stage at ``run_dir`` and the run's suite and seed (:meth:`RunConfig.resolved`)."""
    return cfg.resolved()


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
    """Every option of every stage must be valid before any stage runs (:meth:`RunConfig.validate`)."""
    cfg.validate()


def check_dataplane(spec: str, option: str = "--online.dataplane") -> str:
    """A data-plane option is ``""`` (embedded), a ``redis://`` URL (the event log; the store stays
    under the run), a directory (an embedded data plane lives there; created if missing) or an
    existing ``.json`` file holding a valid :class:`DataPlaneConfig`. Returns the event-log URL kind:
    ``"redis"`` or ``"sqlite"``."""
    if spec.startswith(("redis://", "rediss://")):
        return "redis"
    s = spec[len("file://") :] if spec.startswith("file://") else spec
    if not s:
        return "sqlite"
    if "://" in s:
        raise ConfigError(f"{option} {spec!r}: expected a redis:// URL, a data-plane JSON config file or a "
                          "directory")  # fmt: skip
    p = Path(s)
    if p.is_dir():
        return "sqlite"
    if p.suffix != ".json":
        if p.exists():
            raise ConfigError(f"{option} {p} is a file; a data-plane config file must end in .json")
        return "sqlite"  # a new embedded data plane in that directory
    d = load_json_object(p, f"{option} data-plane config file")
    known = {f.name for f in dataclasses.fields(DataPlaneConfig)}
    if set(d) - known or not {"events", "store"} <= set(d):
        raise ConfigError(f"{option} {p}: expected keys events and store (optional: "
                          f"{', '.join(sorted(known - {'events', 'store'}))}), got {sorted(d)}")  # fmt: skip
    events = str(d["events"])
    if not events.startswith(("sqlite://", "redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"{option} {p}: events must be a sqlite://, redis:// or unix:// URL, got {events!r}"
        )
    return "sqlite" if events.startswith("sqlite://") else "redis"


def _ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def check_environment(cfg: RunConfig) -> None:
    """What the online stage needs, checked before the first stage: a valid data-plane option, and
    for ``engine="ray"`` the ray package and a Redis event log every node reaches; for a local fleet,
    the learner's device on this machine. ``cfg`` is resolved."""
    if cfg.skip_online:
        return
    events = check_dataplane(cfg.online.dataplane)
    if cfg.online.engine == "ray":
        if not _ray_installed():
            raise ConfigError("--engine ray needs the ray package (pip install 'lwd[scale]'), which is not "
                              "installed; use --engine local")  # fmt: skip
        if events != "redis":
            raise ConfigError("--engine ray needs a data plane every node reaches: set --online.dataplane "
                              "to a redis:// URL or a data-plane JSON config with Redis events")  # fmt: skip
    else:
        resolve_device(cfg.online.learner.device)  # the learner runs on this machine


IGNORED_ON_RERUN = ("run_dir", "stop", "ray_address", "online.ray_address")
"""Keys of ``config.json`` a re-run may change: the directory itself, the action, and where the Ray
cluster is (it may move between invocations). The stage options the run sets (``SET_BY_RUN``) are
not compared either: they follow ``run_dir``, ``--suite`` and ``--seed``."""


def check_rerun(run_dir: Path, record: dict[str, Any]) -> bool:
    """``True`` if ``run_dir`` already holds a run; a ConfigError naming the options that differ
    from that run's ``config.json`` (the record must keep matching what ran)."""
    path = run_dir / "config.json"
    if not path.exists():
        return False
    skip = set(IGNORED_ON_RERUN) | set(SET_BY_RUN)  # those follow run_dir, --suite and --seed
    shown = option_differences(load_json_object(path, "run record"), record, skip, "before")
    if shown:
        raise ConfigError(f"{run_dir} holds a run made with other options ({shown}); re-run with "
                          "the same options to resume it, or choose a new --run-dir")  # fmt: skip
    return True


def run(cfg: RunConfig) -> Path:
    """Run (or resume) the main job; returns the report path.

    Every option is checked before the first stage and before anything is written: the stages'
    options (:meth:`RunConfig.validate`), this machine (:func:`check_environment`) and, for an
    existing ``run_dir``, that the options equal the ones it was started with (:func:`check_rerun`).
    """
    check_conditions(cfg)
    cfg = resolve(cfg)
    check_environment(cfg)
    record = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    if not check_rerun(cfg.run_dir, record):
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cfg.run_dir / "config.json", record)
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
