"""Does the critic learn to use the action with many more updates on the fleet's data?

Starts from a learner stage (offline LWD or the online learner of a finished ``lwd run``), loads that
run's offline buffer and every online episode of its data plane's latest snapshot (autonomous rollouts and
interventions in the field), and runs value + critic updates only (no QAM, so ~10x cheaper per step), with
the online learner's settings (offline:online 1:1, tau_base 0.9, n = 1, batch 128). After each count in
``--steps`` it reports :func:`critic_ranking_probe.ranking` on field expert demonstrations: does the
critic prefer the expert's field action to pi_ref's, and does its gradient point that way?

    .venv/bin/python benchmarks/probes/critic_steps_probe.py --run runs/quickstart --stage runs/quickstart/offline_lwd \
        --field-data runs/probes/field_demos40/data --steps 0 1000 3000

Writes ``runs/bench/critic_steps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from critic_ranking_probe import field_tensors, load_stage, ranking
from lwd.algorithms.batching import to_tensors
from lwd.algorithms.divl import DIVLConfig
from lwd.algorithms.lwd import LWDConfig
from lwd.configs.online import LearnerSettings
from lwd.data import LwdDataset, ReplayBuffer
from lwd.data.mixer import ReplayMixer
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.learner.algorithms import sample_batches
from lwd.fleet.learner.reader import SnapshotReader
from lwd.utils.io import atomic_write_json, read_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished lwd run (offline_data/, online/)")
    ap.add_argument("--stage", type=Path, required=True, help="learner stage to start from")
    ap.add_argument("--field-data", type=Path, required=True)
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 1000, 3000])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--states", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/critic_steps.json"))
    ap.add_argument("--online", type=Path, default=None,
                    help="online stage whose fleet data to use (default: RUN/online), e.g. an online_probe run")
    ap.add_argument("--contrast-weight", type=float, default=0.0,
                    help="weight of the take-over contrast (divl.contrast_loss); needs episodes with rejected proposals")
    ap.add_argument("--contrast-margin", type=float, default=0.05)
    ap.add_argument("--reference-contrast-weight", type=float, default=0.0,
                    help="weight of the reference contrast (LWDConfig.reference_contrast_weight): a pi_ref sample "
                         "ranked below the human's chunk at demo and intervention states")
    ap.add_argument("--reference-contrast-slope", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    s = LearnerSettings()
    cfg = LWDConfig(divl=DIVLConfig(tau_base=s.tau_base), contrast_weight=args.contrast_weight,
                    contrast_margin=args.contrast_margin, reference_contrast_weight=args.reference_contrast_weight,
                    reference_contrast_slope=args.reference_contrast_slope)  # fmt: skip
    algo, enc, stats = load_stage(args.stage, args.run / "sft" / "policy", cfg)
    offline = ReplayBuffer(balance="task")
    offline.add_episodes(LwdDataset.open(args.run / "offline_data").iter_episodes(), online=False)
    online_dir = args.online or args.run / "online"
    dp = open_dataplane(read_json(online_dir / "configs" / "dataplane.json"))
    reader = SnapshotReader(dp)
    online = ReplayBuffer(balance="task")
    online.add_episodes(reader.read_snapshot(reader.latest()), online=True)
    mixer = ReplayMixer(offline, online, s.online_fraction, 0)
    if args.contrast_weight > 0 and not online.num_rejections:
        raise SystemExit(f"error: {online_dir}: no take-over with a rejected proposal to contrast")
    field = field_tensors(args.field_data, args.states, algo, enc, stats)
    rng = np.random.default_rng(0)
    rows, done, t0 = [], 0, time.perf_counter()
    h = algo.policy.config.chunk_len
    for target in sorted(args.steps):
        for _ in tqdm(range(target - done), desc=f"critic steps -> {target}", leave=False):
            # the learner process's batches (lwd.fleet.learner.service), value and critic steps only
            batch, imitation, contrast = sample_batches(algo.needs, mixer, s, rng, h, batch_size=args.batch)
            t = to_tensors(batch, enc, stats)
            pairs = algo.critic_contrasts(imitation, contrast)
            algo.value_critic.update(t.obs, t.actions, t.reward, t.discount, t.next_obs, t.mask, pairs)
        done = target
        row = {"critic_steps": target, "wall_s": round(time.perf_counter() - t0, 1), **ranking(algo, field)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    atomic_write_json(args.out, {"run": str(args.run), "stage": str(args.stage), "online": str(online_dir),
                                 "contrast_weight": args.contrast_weight, "contrast_margin": args.contrast_margin,
                                 "reference_contrast_weight": args.reference_contrast_weight,
                                 "reference_contrast_slope": args.reference_contrast_slope,
                                 "take_overs": online.num_rejections, "online_transitions": len(online),
                                 "batch": args.batch, "cpu_count": os.cpu_count(), "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
