"""LeRobotFlowPolicy around LeRobot's real SmolVLA core (lerobot 0.4.4 ``VLAFlowMatching``) at a tiny
size with random weights (lerobot_tiny.py; nothing downloaded).

lerobot is not a dependency of lwd (it pins torch < 2.11 and transformers < 5), so the check runs in
the LeRobot environment, ``.venv/lerobot`` (``make lerobot-env``, run by ``make test``: lerobot 0.4.4
installed without its dependencies next to lerobot-dataset, transformers 4.57 and lwd's torch 2.13),
with lwd's ``src`` on PYTHONPATH: one worker process (tests/policy/lerobot_model_worker.py) builds the
model, runs every check once and prints one JSON object, which the tests below assert on.
``LWD_LEROBOT_PYTHON`` points at another interpreter with lerobot installed. Skipped only when that
interpreter is missing; an environment that is there but cannot run the worker fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("lerobot_model_worker.py")
PYTHON = Path(os.environ.get("LWD_LEROBOT_PYTHON", REPO / ".venv" / "lerobot" / "bin" / "python"))

pytestmark = pytest.mark.skipif(
    not PYTHON.is_file(),
    reason=f"no LeRobot environment at {PYTHON}: `make lerobot-env` creates it (`make test` does)",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("lerobot-model-home")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "HF_HOME": str(home / "hf"),
        "HF_LEROBOT_HOME": str(home / "lerobot"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    proc = subprocess.run(
        [str(PYTHON), str(WORKER)], capture_output=True, text=True, env=env, cwd=home, timeout=240
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(
            f"LeRobot model worker failed in {PYTHON} (rc {proc.returncode}; `make lerobot-env` "
            f"rebuilds it):\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _close(d: dict, rtol: float, atol: float) -> None:
    assert d["shapes"][0] == d["shapes"][1], d
    assert d["max_abs_diff"] <= atol + rtol * d["ref_max_abs"], d


def test_real_lerobot_is_what_ran(report) -> None:
    assert report["versions"]["lerobot"] == "0.4.4"
    assert report["versions"]["transformers"].startswith("4.")
    assert report["versions"]["torch"].split("+")[0] == "2.13.0"
    assert Path(report["lerobot_file"]).parts[-2:] == ("lerobot", "__init__.py")
    r = report["masks_velocity_and_sampling"]
    assert r["model_is_lerobots"]
    assert r["model_class"] == "lerobot.policies.smolvla.modeling_smolvla.VLAFlowMatching"


def test_masks_velocity_and_sampling_match_lerobot(report) -> None:
    r = report["masks_velocity_and_sampling"]
    assert r["masks_equal"]  # lwd's _att_2d_masks == LeRobot's make_att_2d_masks
    # velocity(cond, x, w) == -denoise_step(x, t = 1 - w)  (assert_close's float32 defaults)
    _close(r["velocity"], rtol=1.3e-6, atol=1e-5)
    assert r["velocity"]["ref_max_abs"] > 0
    assert r["velocity"]["shapes"][0] == [2, 4, 8]
    # lwd's Euler sampler == LeRobot's sample_actions from the same noise
    _close(r["sample"], rtol=1e-4, atol=1e-4)
    assert r["sample"]["ref_max_abs"] > 0


def test_checkpoint_inference_sft_and_lwd(report) -> None:
    r = report["checkpoint_inference_sft_and_lwd"]
    # safetensors round trip: same class, every tensor equal
    assert r["loaded_class"] == "lwd.policy.lerobot_adapter.LeRobotFlowPolicy"
    assert r["state_keys_equal"] and r["state_tensors"] > 0 and r["state_unequal"] == []
    # InferencePolicy.act gives one chunk of the robot's action dim
    assert r["act_shape"] == [4, 2] and r["act_finite"]
    # one SFT step, then one DIVL + QAM update that moves the action expert
    assert np.isfinite(r["sft_bc_loss"])
    assert np.isfinite(r["adjoint_loss"]) and np.isfinite(r["td_loss"])
    assert r["expert_tensors"] > 0 and r["expert_tensors_moved"] > 0
