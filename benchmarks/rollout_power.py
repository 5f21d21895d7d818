"""Canary decision rule (lwd.fleet.rollout.decide) on simulated outcomes: false-rollback rate, power.

Simulates the quickstart fleet's allocation (16 robots, mw8: 1 robot on each of 4 short tasks, 3 on
each of 4 long tasks; canary share 0.25 -> 4 canary robots, one per long task) with Bernoulli
episode outcomes. Every robot finishes one episode per round; the decision rule runs after every
round with the default RolloutSettings. Per scenario: share of canaries promoted / rolled back for
harm / rolled back as inconclusive, and the median number of canary episodes until the decision.

    .venv/bin/python benchmarks/rollout_power.py --trials 400

Pure CPU, no fleet needed. Writes ``runs/bench/rollout_power.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from lwd.configs.online import RolloutSettings
from lwd.fleet.rollout.decide import decide

TASKS = {f"short{i}": (1, 0.8) for i in range(4)} | {f"long{i}": (3, 0.5) for i in range(4)}
"""task -> (robots, incumbent success rate)."""
INTERVENTION = 0.3
"""Incumbent probability that an episode has a take-over."""
SCENARIOS = {
    "equal": (0.0, 0.0),
    "success -0.15": (-0.15, 0.0),
    "success -0.3": (-0.3, 0.0),
    "interventions +0.3": (0.0, 0.3),
    "broken (0 success, always taken over)": (-1.0, 1.0),
    "better +0.15": (0.15, 0.0),
}


def simulate(
    d_success: float, d_interv: float, s: RolloutSettings, rng: np.random.Generator
) -> tuple[str, int]:
    arms = {t: {"canary": [0, 0, 0], "incumbent": [0, 0, 0]} for t in TASKS}
    canary_tasks = sorted(t for t, (n, _) in TASKS.items() if n > 1)[:4]
    done = 0
    while True:
        for t, (n, p) in TASKS.items():
            k_canary = 1 if t in canary_tasks else 0
            for arm, k in (("canary", k_canary), ("incumbent", n - k_canary)):
                ps = float(np.clip(p + (d_success if arm == "canary" else 0.0), 0, 1))
                pi = float(np.clip(INTERVENTION + (d_interv if arm == "canary" else 0.0), 0, 1))
                for _ in range(k):
                    c = arms[t][arm]
                    c[0] += 1
                    c[1] += rng.random() < ps
                    c[2] += rng.random() < pi
        v = decide(arms, s, done)
        if v.look is not None:
            done = v.look + 1
        if v.action != "watch":
            kind = (
                "promote"
                if v.action == "promote"
                else ("harm" if v.reason.startswith("harm") else "inconclusive")
            )
            return kind, sum(a["canary"][0] for a in arms.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/rollout_power.json"))
    a = ap.parse_args()
    s = RolloutSettings()
    rng = np.random.default_rng(a.seed)
    rows = {}
    for name, (ds, di) in SCENARIOS.items():
        res = [simulate(ds, di, s, rng) for _ in range(a.trials)]
        kinds = [k for k, _ in res]
        rows[name] = {
            "promoted": kinds.count("promote") / a.trials,
            "rolled_back_harm": kinds.count("harm") / a.trials,
            "rolled_back_inconclusive": kinds.count("inconclusive") / a.trials,
            "median_canary_episodes": float(np.median([n for _, n in res])),
        }
    out = {"settings": s.__dict__, "trials": a.trials, "seed": a.seed, "results": rows,
           "machine": f"{platform.machine()} {os.cpu_count()} cpu"}  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(
        "| canary vs incumbent | promoted | rolled back (harm) | rolled back (inconclusive) | median canary episodes |"
    )
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['promoted']:.2f} | {r['rolled_back_harm']:.2f} | {r['rolled_back_inconclusive']:.2f} "
              f"| {r['median_canary_episodes']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
