"""A driver in its own process for the detached-fleet test: ``python ray_driver_child.py ONLINE_JSON
RUN_DIR DATASET INIT`` runs the online stage of that OnlineConfig (as ``lwd run`` would)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from lwd.configs.online import OnlineConfig
from lwd.pipeline.online import run_online

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    cfg_path, run_dir, dataset, init = sys.argv[1:5]
    cfg = OnlineConfig.from_dict(json.loads(Path(cfg_path).read_text()))
    print(json.dumps(run_online(cfg, run_dir, dataset, init, display=False)), flush=True)
