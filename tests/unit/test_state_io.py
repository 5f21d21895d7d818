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


def test_non_finite_state_is_never_saved_and_never_loaded(tmp_path):
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    with pytest.raises(DataError, match="1 of 2 tensors are non-finite"):
        save_state_dir(tmp_path / "bad", {"model": net.state_dict()})
    assert not (tmp_path / "bad").exists()
    # a checkpoint written by something else with inf inside (valid checksums) is refused on load
    from safetensors.torch import save as st_save

    from lwd.utils.checkpoint import write_checkpoint_dir
    from lwd.utils.state_io import TENSORS, state_to_bytes

    files = state_to_bytes({"w": torch.zeros(2)})
    files[TENSORS] = st_save({"w": torch.tensor([1.0, float("inf")])})
    write_checkpoint_dir(tmp_path / "inf", files, {})
    with pytest.raises(DataError, match="non-finite"):
        load_state_dir(tmp_path / "inf")


def test_unreadable_tensors_file_is_a_data_error_not_a_safetensors_crash(tmp_path):
    from lwd.utils.checkpoint import write_checkpoint_dir
    from lwd.utils.state_io import state_to_bytes

    files = state_to_bytes({"w": torch.zeros(2)})
    name = next(n for n in files if n.endswith(".safetensors"))
    files[name] = b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage"  # right checksum (in the manifest), bad content
    write_checkpoint_dir(tmp_path / "c", files, {})
    with pytest.raises(DataError, match="unreadable"):
        load_state_dir(tmp_path / "c")


def test_step_checkpoints_fall_back_to_the_newest_readable_one(tmp_path, caplog):
    from lwd.utils.run_state import StepCheckpoints

    ck = StepCheckpoints(tmp_path / "ck", keep=2)
    ck.save(10, {"w": torch.full((2,), 10.0)})
    ck.save(20, {"w": torch.full((2,), 20.0)})
    assert ck.latest()[0] == 20
    blob = next((tmp_path / "ck" / "step-0000020").glob("*.safetensors"))
    blob.write_bytes(blob.read_bytes()[:-3] + b"xyz")  # corrupt the newest: checksum mismatch
    with caplog.at_level("WARNING"):
        step, state = ck.latest()
    assert step == 10 and torch.equal(state["w"], torch.full((2,), 10.0))
    assert "falling back" in caplog.text and "step-0000020" in caplog.text
    (tmp_path / "ck" / "latest.json").write_text("{not json")  # a corrupt pointer too
    assert ck.latest()[0] == 10
    blob10 = next((tmp_path / "ck" / "step-0000010").glob("*.safetensors"))
    blob10.write_bytes(b"")
    with pytest.raises(DataError, match="no readable checkpoint"):
        ck.latest()


def test_a_diverging_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    from lwd.pipeline.trainer import TrainLoop
    from lwd.utils.errors import TrainingDiverged
    from lwd.utils.run_state import StepCheckpoints

    w = torch.zeros(1)

    def step_fn(step):
        w.add_(1.0)
        return {"loss": float("nan") if step == 4 else 1.0}

    tr = TrainLoop(tmp_path / "stage", total_steps=10, log_every=1, checkpoint_every=2, desc="sft", progress=False)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5 \(non-finite loss\).*step-0000004"):
        tr.run(0, step_fn, lambda s: {"w": w.clone()})
    step, state = StepCheckpoints(tmp_path / "stage" / "checkpoints").latest()
    assert step == 4 and float(state["w"]) == 4.0
