"""How good is the online learner's reference policy itself? (the BC-trained pi_ref of QAM)

Writes the reference weights of an online learner's latest checkpoint (``reference``: the EMA pi_ref
QAM tilts; with ``--trainee`` also the BC-trained copy) as policy checkpoints next to the learner and
evaluates them with the run's SFT on the same held-out field episodes (paired McNemar test):

    .venv/bin/python benchmarks/probes/reference_probe.py --learner runs/quickstart/online/learner \\
        --sft runs/quickstart/sft/policy --episodes 30

If pi_ref scores well above the published QAM policy, the policy lags its reference (QAM steps or
learning rate too few/small); if it scores like SFT, the imitation data carries little.
Writes ``runs/bench/reference_probe_<learner dir name>.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwd.configs.eval import EvalConfig
from lwd.eval.runner import evaluate, paired_comparison
from lwd.policy.checkpoint import load_policy, save_policy
from lwd.utils.io import atomic_write_json
from lwd.utils.run_state import StepCheckpoints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--learner", type=Path, required=True, help="online learner directory")
    ap.add_argument("--sft", type=Path, required=True, help="the run's SFT policy (same held-out seeds)")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--trainee", action="store_true", help="also the BC-trained copy behind the EMA")
    args = ap.parse_args()
    found = StepCheckpoints(args.learner / "checkpoints").latest()
    if found is None:
        raise SystemExit(f"error: {args.learner}: no learner checkpoint")
    step, state = found
    algo = state["algorithm"]
    policy, stats, manifest = load_policy(args.learner.parent / "policy")
    out = {"learner": str(args.learner), "learner_step": step, "episodes_per_task": args.episodes}
    evals = {}
    names = ["reference"] + (["reference_trainee"] if args.trainee and "reference_trainee" in algo else [])
    for name in names + ["policy", "sft"]:
        if name == "sft":
            ckpt = args.sft
        elif name == "policy":
            ckpt = args.learner.parent / "policy"
        else:
            ckpt = args.learner / f"probe_{name}_step{step}"
            if not ckpt.exists():
                policy.load_state_dict(algo[name])
                save_policy(ckpt, policy, stats, policy.config, version=0, parent_version=None,
                            extra={"probe": name, "learner_step": step})  # fmt: skip
        ev_dir = args.learner / f"probe_eval_{name}_field{args.episodes}"
        run_eval = args.learner.parent.parent / "eval" / {"policy": "lwd_online_field", "sft": "sft_field"}.get(name, "-")
        if (run_eval / "results.json").is_file():  # the run already evaluated it: reuse if the same size
            if json.loads((run_eval / "results.json").read_text())["episodes_per_task_per_seed"] == args.episodes:
                ev_dir = run_eval
        if not (ev_dir / "results.json").is_file():
            evaluate(EvalConfig(checkpoint=ckpt, shift="field", episodes_per_task=args.episodes, seeds=(0,),
                                workers=2, out=ev_dir, name=name), progress=False)  # fmt: skip
        evals[name] = ev_dir
        out[name] = json.loads((ev_dir / "results.json").read_text())["average_success"]
    out["paired_vs_sft"] = {n: paired_comparison(d, evals["sft"]) for n, d in evals.items() if n != "sft"}
    atomic_write_json(Path("runs/bench") / f"reference_probe_{args.learner.parent.parent.name}.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
