"""One online LWD variant at quickstart scale, next to the run's SFT on the same held-out field seeds.

Re-runs the online stage of a finished ``lwd run --preset quickstart`` (its offline data and offline LWD
stage) with learner overrides, in ``runs/probes/online_<tag>``, then evaluates the final policy and the
run's SFT policy on ``--episodes`` held-out field episodes per task (``lwd eval`` seeds):

    .venv/bin/python benchmarks/probes/online_probe.py --run runs/quickstart --tag pe8_lam0.01 --policy-every 8 --lam 0.01
    .venv/bin/python benchmarks/probes/online_probe.py --run runs/quickstart --tag frozen --policy-every 8 --lam 0.01 \
        --set reference=frozen

Unset options are the quickstart preset's. Re-running with the same tag resumes / reuses finished
parts. Writes ``runs/bench/online_probe_<tag>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from lwd.configs.eval import EvalConfig
from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.eval.runner import evaluate, paired_comparison
from lwd.pipeline.online import run_online
from lwd.utils.io import atomic_write_json, read_json


def _eval(checkpoint: Path, out: Path, episodes: int, name: str) -> Path:
    if not (out / "results.json").is_file():
        evaluate(EvalConfig(checkpoint=checkpoint, shift="field", episodes_per_task=episodes, seeds=(0,),
                            workers=2, out=out, name=name), progress=False)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/quickstart"))
    ap.add_argument("--tag", required=True)
    preset = ONLINE["quickstart"].learner  # defaults: the quickstart preset's learner
    ap.add_argument("--lam", type=float, default=preset.lam)
    ap.add_argument("--policy-every", type=int, default=preset.policy_every)
    ap.add_argument("--policy-lr", type=float, default=preset.policy_lr)
    ap.add_argument("--max-wall-s", type=float, default=360.0)
    ap.add_argument("--max-learner-steps", type=int, default=None)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="fleet and learner seed of the online run")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="further LearnerSettings overrides, e.g. reference=frozen contrast_weight=1.0")
    args = ap.parse_args()
    base = ONLINE["quickstart"]
    fields = {f.name: f for f in dataclasses.fields(base.learner)}
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields or not value:
            raise SystemExit(f"error: --set {item!r}: expected FIELD=VALUE with FIELD in LearnerSettings")
        current = getattr(base.learner, key)
        extra[key] = value if isinstance(current, str) else type(current)(value)
    learner = dataclasses.replace(base.learner, lam=args.lam, policy_every=args.policy_every,
                                  policy_lr=args.policy_lr, seed=args.seed, **extra)  # fmt: skip
    cfg = dataclasses.replace(base, learner=learner, seed=args.seed,
                              budget=Budget(max_learner_steps=args.max_learner_steps, max_wall_s=args.max_wall_s))  # fmt: skip
    run_dir = Path("runs/probes") / f"online_{args.tag}"
    summary_file = run_dir / "online" / "summary.json"
    summary = read_json(summary_file) if summary_file.is_file() else run_online(
        cfg, run_dir, args.run / "offline_data", args.run / "offline_lwd", display=False)
    online_dir = _eval(run_dir / "online" / "policy", run_dir / f"eval_field{args.episodes}", args.episodes,
                       f"online-{args.tag}")  # fmt: skip
    sft_dir = _eval(args.run / "sft" / "policy", Path("runs/probes") / f"{args.run.name}_sft_field{args.episodes}",
                    args.episodes, "sft")  # fmt: skip
    online, sft = read_json(online_dir / "results.json"), read_json(sft_dir / "results.json")
    res = {"tag": args.tag, "run": str(args.run), "lam": args.lam, "policy_every": args.policy_every,
           "policy_lr": args.policy_lr, "seed": args.seed, "settings": dataclasses.asdict(learner),
           "learner_steps": summary.get("learner_step"),
           "robot_hours": summary.get("robot_hours"), "stop_reason": summary.get("stop_reason"),
           "episodes_per_task": args.episodes, "online_field": online["average_success"],
           "sft_field": sft["average_success"], "paired_vs_sft": paired_comparison(online_dir, sft_dir),
           "cpu_count": os.cpu_count(),
           "per_task": {t: (online["tasks"][t]["success_rate"], sft["tasks"][t]["success_rate"]) for t in online["tasks"]}}  # fmt: skip
    atomic_write_json(Path("runs/bench") / f"online_probe_{args.tag}.json", res)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
