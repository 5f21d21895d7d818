"""How reliable is the scene8 scripted expert under each setting of OGBench's oracle ``min_norm``?

The drawer and window oracles command at least ``min_norm`` x gain of end-effector displacement. This
probe runs the noiseless stage-aware expert (``SceneRobot.oracle_action``) on the chained tasks that
open the drawer or the window, in the lab, for ``--seeds`` episode seeds per task, under three
settings: OGBench's default (0.4 for both), the shipped one (drawer 0.1, window 0.4) and 0.1 for both.
It prints, per setting and task, the failed seeds and the stage each one stopped at. Needs the
``ogbench`` extra::

    .venv/bin/python benchmarks/probes/scene_oracle_probe.py --seeds 40

Writes ``runs/bench/scene_oracle_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

OTHER_SETTINGS = {
    "ogbench default": {},
    "both 0.1": {"drawer": {"min_norm": 0.1}, "window": {"min_norm": 0.1}},
}
"""Oracle options compared with the shipped ones (``lwd.envs.scene_robot.ORACLE_OPTIONS``)."""
TASKS = ("open-both", "cube-in-drawer", "open-window-cube")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=40, help="episode seeds per task per setting")
    p.add_argument("--shift", default="lab")
    p.add_argument("--out", type=Path, default=Path("runs/bench/scene_oracle_probe.json"))
    a = p.parse_args()
    if a.seeds < 1:
        print("error: --seeds must be >= 1", file=sys.stderr)
        raise SystemExit(2)
    warnings.filterwarnings("ignore")
    from lwd.envs.scene_robot import ORACLE_OPTIONS, SceneRobot
    from lwd.envs.shift import load_shift
    from lwd.envs.suites import get_suite
    from lwd.utils.errors import ConfigError

    try:
        suite, shift = get_suite("scene8"), load_shift(a.shift)
        SceneRobot(suite, shift=shift).close()  # OGBench installed?
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    out: dict = {"command": "benchmarks/probes/scene_oracle_probe.py " + " ".join(sys.argv[1:]), "settings": {}}
    shipped = {kind: dict(opts) for kind, opts in ORACLE_OPTIONS.items()}
    settings = {"ogbench default": OTHER_SETTINGS["ogbench default"], "shipped": shipped,
                "both 0.1": OTHER_SETTINGS["both 0.1"]}  # fmt: skip
    for name, options in settings.items():
        robot = SceneRobot(suite, shift=shift, oracle_options=options)
        out["settings"][name] = {"options": options}
        for task in TASKS:
            failed = []
            for seed in range(a.seeds):
                robot.reset(task, "probe", seed)
                while True:
                    res = robot.step(robot.oracle_action())
                    if res.done:
                        break
                if not res.success:
                    failed.append({"seed": seed, "stages_done": robot.stages_done})
            out["settings"][name][task] = {"episodes": a.seeds, "failed": failed}
            print(f"{name:16s} {task:18s} failed {len(failed)}/{a.seeds} {failed}", flush=True)
        robot.close()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
