"""Every entry point validates every option before doing work: one line ``error: ...``, exit 2,
nothing written (issue 13)."""

import dataclasses
import json
import socket
import subprocess
import sys

import pytest

from lwd.cli.main import main
from lwd.configs.presets import RUN
from lwd.pipeline import run as run_mod
from lwd.utils.errors import LwdError


def one_line_error(capsys, start: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"error: {start}") and err.count("\n") == 1, err
    return err


@pytest.fixture
def no_stages(monkeypatch):
    """Stop `lwd run` where the first stage would start (validation passed) with a recognisable error."""

    def reached(self, name, fn):
        raise LwdError(f"reached stage {name}")

    monkeypatch.setattr(run_mod.Stages, "run", reached)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--online.dataplane", "x.json"], "--online.dataplane data-plane config file x.json does not exist"),
        (["--suite", "nosuite"], "unknown suite 'nosuite'"),
        (["--sft.loop.batch-size", "0"], "--sft.loop.batch-size must be >= 1, got 0"),
        (["--offline.algorithm", "sac"], "unknown --offline.algorithm 'sac'"),
        (["--online.learner.device", "tpu"], "--online.learner.device: unknown device 'tpu'"),
        (["--online.budget.max-learner-steps", "0"], "--online.budget.max-learner-steps must be >= 1"),
        (["--eval.workers", "0"], "--eval.workers must be >= 1"),
        (["--collect.tasks", "fly"], "unknown task 'fly'"),
        (["--ray-detached"], "--ray-detached needs --engine ray"),
        (["--engine", "ray"], "--engine ray needs a data plane every node reaches"),
    ],
)
def test_run_validates_every_stage_before_any_stage(flags, message, tmp_path, capsys, no_stages):
    run_dir = tmp_path / "run"
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), *flags]) == 2
    one_line_error(capsys, message)
    assert not run_dir.exists()  # nothing written, not even config.json


def test_run_dataplane_file_must_be_json_data_plane_config(tmp_path, capsys, no_stages):
    run_dir = tmp_path / "run"
    bad = tmp_path / "dp.json"
    bad.write_text("{not json")
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--online.dataplane", str(bad)]) == 2
    one_line_error(capsys, f"--online.dataplane data-plane config file {bad} is not valid JSON")
    bad.write_text(json.dumps({"events": "sqlite:///x.db"}))
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--online.dataplane", str(bad)]) == 2
    one_line_error(capsys, f"--online.dataplane {bad}: expected keys events and store")
    assert not run_dir.exists() and not (tmp_path / "x.json").exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"events": f"sqlite://{tmp_path}/ev.db", "store": str(tmp_path / "store")}))
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--online.dataplane", str(good)]) == 2
    one_line_error(capsys, "reached stage collect")


def test_run_engine_ray_without_ray_fails_before_any_stage(tmp_path, capsys, monkeypatch, no_stages):
    monkeypatch.setattr(run_mod, "_ray_installed", lambda: False)
    run_dir = tmp_path / "run"
    flags = ["--engine", "ray", "--online.dataplane", "redis://127.0.0.1:1/0"]
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), *flags]) == 2
    one_line_error(capsys, "--engine ray needs the ray package")
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "flags,option",
    [
        (["--collect.out", "elsewhere"], "--collect.out"),
        (["--sft.dataset", "elsewhere"], "--sft.dataset"),
        (["--eval.checkpoint", "elsewhere"], "--eval.checkpoint"),
        (["--offline.loop.seed", "3"], "--offline.loop.seed"),
        (["--eval.shift", "lab"], "--eval.shift"),
    ],
)
def test_run_rejects_options_it_sets_itself(flags, option, tmp_path, capsys, no_stages):
    run_dir = tmp_path / "run"
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), *flags]) == 2
    err = one_line_error(capsys, f"lwd run sets {option} itself")
    assert "comes from" in err
    assert not run_dir.exists()


def test_run_rerun_with_other_options_is_refused_same_options_resume(tmp_path, capsys, no_stages):
    run_dir = tmp_path / "run"
    base = ["run", "--preset", "debug", "--run-dir", str(run_dir)]
    assert main(base) == 2
    one_line_error(capsys, "reached stage collect")  # first run: config.json written, stages start
    record = json.loads((run_dir / "config.json").read_text())
    assert main([*base, "--seed", "1", "--sft.lr", "0.01"]) == 2
    err = one_line_error(capsys, f"{run_dir} holds a run made with other options")
    assert "--seed: 0 before, 1 now" in err and "--sft.lr: 0.001 before, 0.01 now" in err
    assert "--collect.seed" not in err  # derived from --seed: named once
    assert json.loads((run_dir / "config.json").read_text()) == record  # the record still matches
    assert main(base) == 2
    one_line_error(capsys, "reached stage collect")  # the same options resume


def test_resolve_still_points_stages_at_the_run_dir(tmp_path):
    cfg = run_mod.resolve(dataclasses.replace(RUN["debug"], run_dir=tmp_path, seed=3, suite="fake4"))
    assert cfg.collect.out == tmp_path / "offline_data" and cfg.collect.resume and cfg.collect.seed == 3
    assert cfg.sft.out == tmp_path / "sft" and cfg.offline.init == tmp_path / "sft" / "policy"
    assert cfg.online.seed == 3 and cfg.eval.suite == "fake4"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["collect", "--episodes-per-file", "0"], "--episodes-per-file must be >= 1, got 0"),
        (["collect", "--demo-fraction", "nan"], "data-mix fractions must be finite"),
        (["pretrain", "--lr", "-1"], "--lr must be > 0, got -1.0"),
        (["pretrain", "--loop.batch-size", "0"], "--loop.batch-size must be >= 1, got 0"),
        (["pretrain", "--policy.text-encoder", "bert"], "unknown --policy.text-encoder 'bert'"),
        (["pretrain", "--sources", "dreams"], "unknown source 'dreams' in --sources"),
        (["train", "--gamma", "1.5"], "--gamma must be in (0, 1], got 1.5"),
        (["train", "--loop.threads", "-1"], "--loop.threads must be >= 0"),
        (["eval", "--workers", "0"], "--workers must be >= 1"),
        (["eval", "--seeds", "5000"], "evaluation --seeds must be integers in [0, 1000)"),
        (["status", "--robot-timeout-s", "0"], "--robot-timeout-s must be > 0"),
        (["dashboard", "--port", "70000"], "--port must be < 65536"),
    ],
)
def test_bad_options_are_one_line_errors_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # presets write under runs/: nothing may appear there
    assert main([argv[0], "--preset", "debug", *argv[1:]]) == 2
    one_line_error(capsys, message)
    assert not (tmp_path / "runs").exists()


def tiny_pretrain(dataset, out, *extra):
    return ["pretrain", "--preset", "debug", "--dataset", str(dataset), "--out", str(out), "--loop.steps", "2",
            "--loop.batch-size", "8", "--loop.checkpoint-every", "1", *extra]  # fmt: skip


def test_pretrain_batch_size_zero_leaves_no_config_behind(fake4_dataset, tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(tiny_pretrain(fake4_dataset, out, "--loop.batch-size", "0")) == 2
    one_line_error(capsys, "--loop.batch-size must be >= 1")
    assert not out.exists()


def test_pretrain_refuses_unrelated_out_and_resume_with_other_network(fake4_dataset, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(tiny_pretrain(fake4_dataset, mine)) == 2
    one_line_error(capsys, f"--out {mine} is not empty and is not a previous `lwd pretrain` stage")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    out = tmp_path / "sft"
    assert main(tiny_pretrain(fake4_dataset, out)) == 0
    capsys.readouterr()
    record = (out / "config.json").read_text()
    assert main(tiny_pretrain(fake4_dataset, out, "--policy.hidden-dim", "32")) == 2
    err = one_line_error(capsys, f"--out {out} holds a `lwd pretrain` stage made with other options")
    assert "--policy.hidden-dim: 64 there, 32 now" in err
    assert (out / "config.json").read_text() == record
    # a stopped stage (checkpoints, no policy yet) is refused the same way, before its checkpoint loads
    (out / "policy").rename(tmp_path / "done")
    assert main(tiny_pretrain(fake4_dataset, out, "--policy.expert-depth", "3")) == 2
    one_line_error(capsys, f"--out {out} holds a `lwd pretrain` stage made with other options")
    assert main(tiny_pretrain(fake4_dataset, out, "--loop.threads", "1")) == 0  # same options: resumes


def test_pretrain_checkpoint_of_another_network_is_a_one_line_error(fake4_dataset, tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(tiny_pretrain(fake4_dataset, out)) == 0
    capsys.readouterr()
    (out / "policy").rename(tmp_path / "done")
    cfg = json.loads((out / "config.json").read_text())
    del cfg["policy"]["hidden_dim"]  # an older record that does not say the width
    (out / "config.json").write_text(json.dumps(cfg))
    assert main(tiny_pretrain(fake4_dataset, out, "--policy.hidden-dim", "32")) == 2
    one_line_error(capsys, f"the checkpoint in {out / 'checkpoints'} does not fit this policy")


def test_eval_refuses_existing_results_unless_overwrite(fake4_sft_policy, tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["eval", "--preset", "debug", "--checkpoint", str(fake4_sft_policy), "--out", str(out),
            "--tasks", "reach-red", "--episodes-per-task", "1", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    results = (out / "results.json").read_text()
    capsys.readouterr()
    assert main(argv) == 2
    one_line_error(capsys, f"--out {out} holds evaluation results; pass --overwrite")
    assert (out / "results.json").read_text() == results
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main([*argv[:6], str(mine), *argv[7:]]) == 2
    one_line_error(capsys, f"--out {mine} is not empty; pass --overwrite")
    assert main([*argv, "--overwrite"]) == 0


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["lwd.fleet.robot", "lwd.fleet.learner", "lwd.fleet.coordinator"])
def test_fleet_processes_report_bad_config_files_in_one_line(module, tmp_path):
    missing = tmp_path / "missing.json"
    r = run_module(module, "--config", str(missing))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "does not exist" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run_module(module, "--config", str(bad))
    assert r.returncode == 2 and "is not valid JSON" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    bad.write_text(json.dumps({}))
    r = run_module(module, "--config", str(bad))
    assert r.returncode == 2 and "lacks required keys" in r.stderr and r.stderr.count("\n") == 1, r.stderr


CLIENT = {"client_id": "c", "dataplane": "x", "registry": "x", "status_path": "x", "suite": "fake4",
          "robot_ids": ["robot-000"], "robot_indices": [0], "task_weights": {"reach-red": 1.0}, "outbox_root": "x"}
LEARNER = {"learner_dir": "x", "init": "x", "offline_dataset": "x", "dataplane": "x", "registry": "x"}


def write_config(tmp_path, cfg) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_robot_client_reports_an_unimportable_factory_in_one_line(tmp_path):
    path = write_config(tmp_path, CLIENT | {"robot_factory": "no_such_module:make_robot"})
    r = run_module("lwd.fleet.robot", "--config", path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: factory 'no_such_module:make_robot' cannot be loaded")


@pytest.mark.parametrize(
    ("module", "cfg", "message"),
    [
        # a typo never falls back to a default (before: a simulated robot fed the real fleet)
        ("lwd.fleet.robot", CLIENT | {"robot_factroy": "my_robot:make"},
         "unknown key 'robot_factroy' (did you mean 'robot_factory'?)"),
        ("lwd.fleet.robot", CLIENT | {"intervention": {"budget_step": 5}},
         "intervention: unknown key 'budget_step' (did you mean 'budget_steps'?)"),
        ("lwd.fleet.robot", CLIENT | {"robot_ids": "robot-000"}, "robot_ids must be a list, got str"),
        ("lwd.fleet.robot", CLIENT | {"robot_indices": [0, 1]}, "robot_ids and robot_indices differ in length"),
        ("lwd.fleet.robot", CLIENT | {"heartbeat_s": -1}, "heartbeat-s must be >= 0, got -1"),
        ("lwd.fleet.robot", CLIENT | {"lease_s": 0}, "lease-s must be a positive number of seconds, got 0.0"),
        ("lwd.fleet.learner", LEARNER | {"setings": {}}, "unknown key 'setings' (did you mean 'settings'?)"),
        ("lwd.fleet.learner", LEARNER | {"settings": {"batch_size": 0}}, "settings.batch-size must be >= 1, got 0"),
        ("lwd.fleet.learner", LEARNER | {"canary_mode": "yes"}, "canary_mode must be true or false"),
        ("lwd.fleet.coordinator", {"root": "x", "rollout": {"canary_shar": 0.5}},
         "rollout: unknown key 'canary_shar' (did you mean 'canary_share'?)"),
        ("lwd.fleet.coordinator", {"root": "x", "batch": 0}, "batch must be >= 1"),
    ],
)  # fmt: skip
def test_fleet_process_configs_are_read_strictly(module, cfg, message, tmp_path):
    """Unknown keys, wrong types and bad values: one line ``error: ...``, exit 2, before any work."""
    r = run_module(module, "--config", write_config(tmp_path, cfg))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr


def test_coordinator_config_takes_no_other_option(tmp_path):
    path = write_config(tmp_path, {"root": str(tmp_path / "fleet")})
    r = run_module("lwd.fleet.coordinator", "--config", path, "--batch", "4")
    assert r.returncode == 2 and "--config takes no other option than --idle-exit-s (got --batch)" in r.stderr
    r = run_module("lwd.fleet.coordinator")
    assert r.returncode == 2 and "give --config FILE or --root DIR" in r.stderr


def test_status_on_a_corrupt_coordinator_database_is_one_line(tmp_path, capsys):
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "coordinator.db").write_bytes(bytes(range(256)) * 64)
    assert main(["status", "--root", str(root)]) == 2
    one_line_error(capsys, f"the coordinator database {root / 'coordinator.db'} cannot be read")


def test_dashboard_port_in_use_is_one_line(tmp_path, capsys):
    (tmp_path / "online" / "fleet").mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["dashboard", "--run-dir", str(tmp_path), "--port", str(port)]) == 2
    err = one_line_error(capsys, f"cannot listen on 127.0.0.1:{port}")
    assert "--port" in err


def test_train_refuses_an_unrelated_non_empty_out(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text(json.dumps({"something": "else"}))
    assert main(["train", "--preset", "debug", "--out", str(mine)]) == 2
    one_line_error(capsys, f"--out {mine} is not empty and is not a previous `lwd train` stage")
    assert sorted(p.name for p in mine.iterdir()) == ["config.json"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--max-steps", "0"], "--max-steps must be >= 1"),
        (["--lease-s", "-1"], "--lease-s must be a positive number"),
        (["--batch", "abc"], "invalid int value"),
        (["--dataplane", "/nonexistent/dataplane.json"], "no such data-plane config file"),
        (["--rollout", "/nonexistent/rollout.json"], "does not exist"),
        (["--rollout", "BAD_JSON"], "is not valid JSON"),
        (["--rollout", "UNKNOWN_KEY"], "rollout: unknown key 'warp_speed'"),
        ([], "give --config FILE or --root DIR"),
    ],
)
def test_coordinator_process_reports_bad_options_in_one_line(args, message, tmp_path):
    bad = tmp_path / "bad.json"
    args = [str(bad) if a == "BAD_JSON" else a for a in args]
    if str(bad) in args:
        bad.write_text("{not json")
    if "UNKNOWN_KEY" in args:
        bad.write_text(json.dumps({"rollout": {"warp_speed": 9}}))
        args = [str(bad) if a == "UNKNOWN_KEY" else a for a in args]
    root = [] if not args else ["--root", str(tmp_path / "fleet")]
    r = run_module("lwd.fleet.coordinator", *root, *args)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "fleet" / "coordinator.db").exists()
