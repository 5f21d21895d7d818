import numpy as np
import pytest
import torch

from lwd.utils.errors import DataError
from lwd.utils.state_io import load_state_dir, save_state_dir


def test_optimizer_and_rng_state_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = np.random.default_rng(5)
    state = {
        "model": net.state_dict(),
        "opt": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "np_rng": rng.bit_generator.state,
        "step": 7,
        "arr": np.arange(5, dtype=np.int64),
        "pair": (1, "a"),
    }
    save_state_dir(tmp_path / "s", state, {"kind": "test"})
    back, manifest = load_state_dir(tmp_path / "s")
    assert manifest["kind"] == "test"
    assert back["step"] == 7 and back["pair"] == (1, "a")
    np.testing.assert_array_equal(back["arr"], state["arr"])
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(back["opt"])
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = back["np_rng"]
    assert rng2.random() == rng.random()
    assert torch.equal(back["torch_rng"], state["torch_rng"])


def test_refuses_objects_that_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="without pickle"):
        save_state_dir(tmp_path / "s", {"f": object()})
    assert not (tmp_path / "s").exists()


def test_corrupt_state_is_refused(tmp_path):
    save_state_dir(tmp_path / "s", {"w": torch.ones(10)})
    p = tmp_path / "s" / "tensors.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt"):
        load_state_dir(tmp_path / "s")
