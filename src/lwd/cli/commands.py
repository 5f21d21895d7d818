"""Subcommand registry: a plain dict from name to :class:`Command` (config type, presets, function)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lwd.configs import presets
from lwd.configs.dashboard import DASHBOARD, DashboardConfig
from lwd.configs.fleet import FLEET, FleetConfig
from lwd.configs.lerobot import EXPORT_LEROBOT, IMPORT_LEROBOT, ExportLeRobotConfig, ImportLeRobotConfig


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    config_type: type
    presets: dict[str, Any]
    fn: Callable[[Any], None]
    default_preset: str = "quickstart"


def _collect(cfg) -> None:
    from lwd.pipeline.collect import collect

    summary = collect(cfg)
    print(json.dumps(asdict(summary), indent=2))


def _pretrain(cfg) -> None:
    from lwd.pipeline.pretrain import pretrain

    print(f"reference policy: {pretrain(cfg)}")


def _eval(cfg) -> None:
    from lwd.eval.runner import evaluate

    evaluate(cfg)


def _run(cfg) -> None:
    from lwd.pipeline.run import run, stop

    if cfg.stop:
        print(json.dumps(stop(cfg), indent=2))
        return
    print(f"report: {run(cfg)}")


def _train(cfg) -> None:
    from lwd.pipeline.train_offline import train_offline

    print(f"policy: {train_offline(cfg)}")


def _status(cfg) -> None:
    from lwd.fleet.ops.status import format_status, status
    from lwd.utils.errors import ConfigError

    if not cfg.root.is_dir():
        raise ConfigError(f"fleet root {cfg.root} does not exist; pass --root <run_dir>/online/fleet")
    st = status(cfg.root, robot_timeout_s=cfg.robot_timeout_s)
    print(json.dumps(st, indent=2, default=str) if cfg.json else format_status(st))


def _fleet(cfg) -> None:
    from lwd.cli.fleet_cmd import run_fleet

    run_fleet(cfg)


def _dashboard(cfg) -> None:
    from lwd.cli.dashboard_cmd import run_dashboard

    run_dashboard(cfg)


def _export_lerobot(cfg) -> None:
    from lwd.data.lerobot_export import export_lerobot

    summary = export_lerobot(
        cfg.src, cfg.out, fps=cfg.fps, episodes_per_file=cfg.episodes_per_file, robot_type=cfg.robot_type
    )
    print(json.dumps(asdict(summary), indent=2))


def _import_lerobot(cfg) -> None:
    from lwd.data.lerobot_import import import_lerobot

    summary = import_lerobot(
        cfg.src,
        cfg.out,
        success=cfg.success,
        source=cfg.source,
        cameras=cfg.cameras,
        state_key=cfg.state_key,
        action_key=cfg.action_key,
        episodes_per_file=cfg.episodes_per_file,
    )
    print(json.dumps(asdict(summary), indent=2))


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "run",
            "The main job: collect offline data if absent, SFT, evaluate, report (resumable).",
            presets.RunConfig,
            presets.RUN,
            _run,
        ),
        Command(
            "collect",
            "Generate the offline dataset (demos, rollouts, play) in the lab condition.",
            presets.CollectConfig,
            presets.COLLECT,
            _collect,
        ),
        Command(
            "pretrain",
            "Behaviour-clone (SFT) the flow policy on the demonstrations; the result is the reference policy.",
            presets.SFTConfig,
            presets.SFT,
            _pretrain,
        ),
        Command(
            "train",
            "Offline RL (DIVL + QAM, or the IQL / constant-tau ablations) from the SFT reference policy.",
            presets.RLConfig,
            presets.OFFLINE,
            _train,
        ),
        Command(
            "status",
            "Fleet status from a fleet root: robots, episodes, snapshots, quarantine, policy versions.",
            presets.StatusConfig,
            presets.STATUS,
            _status,
        ),
        Command(
            "fleet",
            "Operate the canary rollout: pin, unpin, promote, rollback, pause, resume, audit (logged).",
            FleetConfig,
            FLEET,
            _fleet,
        ),
        Command(
            "dashboard",
            "Serve a live fleet web page on 127.0.0.1 (read-only unless --allow-control with a token).",
            DashboardConfig,
            DASHBOARD,
            _dashboard,
        ),
        Command(
            "export-lerobot",
            "Write an lwd dataset as a LeRobot v3.0 dataset (frames, actions, tasks, images, lwd extras).",
            ExportLeRobotConfig,
            EXPORT_LEROBOT,
            _export_lerobot,
        ),
        Command(
            "import-lerobot",
            "Turn a LeRobot v3.0 dataset into an lwd offline dataset (--success says how episodes ended).",
            ImportLeRobotConfig,
            IMPORT_LEROBOT,
            _import_lerobot,
        ),
        Command(
            "eval",
            "Evaluate a policy checkpoint (or the scripted expert) per task on held-out seeds.",
            presets.EvalConfig,
            presets.EVAL,
            _eval,
        ),
    )
}
