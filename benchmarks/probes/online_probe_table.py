"""One table of finished ``online_probe.py`` runs: per-task field success, short vs long tasks, and
paired tests against SFT and against a named probe, all on the same held-out episodes.

    .venv/bin/python benchmarks/probes/online_probe_table.py --run runs/qs_bc --episodes 30 \\
        --tags bc_rlr3e-4_pe4 frozen_pe4 hgdagger_lr3e-4 --against frozen_pe4 hgdagger_lr3e-4

Reads ``runs/bench/online_probe_<tag>.json`` and the evaluation directories the probes wrote; prints
markdown (exact two-sided McNemar p on the episodes only one of the two policies solved).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwd.envs.suites import SUITES
from lwd.eval.runner import paired_comparison


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="the quickstart run the probes started from")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--tags", nargs="+", required=True)
    ap.add_argument("--against", nargs="*", default=[], help="tags every other probe is also paired with")
    ap.add_argument("--dirs", nargs="*", default=[], metavar="NAME=EVAL_DIR",
                    help="further evaluation directories on the same episodes (e.g. a run's own eval)")
    args = ap.parse_args()
    suite = SUITES["mw8"]
    kinds = {t.task_id: t.kind for t in suite.tasks}
    sft_dir = Path("runs/probes") / f"{args.run.name}_sft_field{args.episodes}"
    dirs = {"SFT": sft_dir}
    for tag in args.tags:
        dirs[tag] = Path("runs/probes") / f"online_{tag}" / f"eval_field{args.episodes}"
    for item in args.dirs:
        name, _, path = item.partition("=")
        dirs[name] = Path(path)
    header = "| policy | " + " | ".join(suite.task_ids) + " | short | long | avg | vs SFT (only / only SFT, p) |"
    header += "".join(f" vs {a} (only / only, p) |" for a in args.against)
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, d in dirs.items():
        res = json.loads((d / "results.json").read_text())
        rates = {t: res["tasks"][t]["success_rate"] for t in suite.task_ids}
        short = [rates[t] for t in suite.task_ids if kinds[t] == "short"]
        long_ = [rates[t] for t in suite.task_ids if kinds[t] == "long"]
        row = f"| {name} | " + " | ".join(f"{rates[t]:.2f}" for t in suite.task_ids)
        row += f" | {sum(short) / len(short):.3f} | {sum(long_) / len(long_):.3f} | **{res['average_success']:.3f}** |"
        for other in ["SFT", *args.against]:
            if name == other or (name == "SFT" and other != "SFT"):
                row += " - |"
                continue
            c = paired_comparison(d, dirs[other])
            row += f" {c['a_only']} / {c['b_only']}, {c['p_value']:.2g} |"
        print(row)


if __name__ == "__main__":
    main()
