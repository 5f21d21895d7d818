"""Suites from a JSON file or an ``lwd.suites`` entry point: loading, strict validation, registration,
and every caller following (config checks, make_robot, allocation weights, report order, ``lwd eval``)."""

import copy
import json
from importlib import metadata

import pytest

from lwd.envs import suite_files, suites
from lwd.envs.suites import SUITES, get_suite, get_task, held_out_instructions, make_robot, task_weights
from lwd.specs import SuiteSpec
from lwd.types import TaskSpec
from lwd.utils.errors import ConfigError

KITCHEN = {
    "name": "kitchen",
    "description": "two of fake4's reach tasks, renamed instructions, own weights",
    "robot": "fake4",
    "tasks": [
        {"id": "reach-red", "kind": "short", "max_steps": 20, "weight": 2,
         "instructions": ["fetch the tomato", "grab the red thing"],
         "held_out_instructions": ["bring me the tomato"]},
        {"id": "reach-blue", "kind": "long", "max_steps": 30,
         "instructions": ["fetch the blueberry"]},
    ],
}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(suites, "_registered", dict(suites._registered))  # registrations stay in the test
    suites.reset_suite_cache()
    yield
    suites.reset_suite_cache()


def write(tmp_path, data, name="kitchen.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_file_round_trips_to_a_suite_spec(tmp_path):
    path = write(tmp_path, KITCHEN)
    assert get_suite(path) == SuiteSpec(
        name="kitchen",
        tasks=(
            TaskSpec("reach-red", ("fetch the tomato", "grab the red thing"), "short", 20),
            TaskSpec("reach-blue", ("fetch the blueberry",), "long", 30),
        ),
    )
    assert get_task(path, "reach-blue").max_steps == 30
    assert held_out_instructions(path, "reach-red") == ("bring me the tomato",)
    with pytest.raises(ConfigError, match="'reach-blue' of suite .* declares no held_out_instructions"):
        held_out_instructions(path, "reach-blue")
    assert path in SUITES and SUITES[path].name == "kitchen" and path in list(SUITES)
    assert "nope.json" not in SUITES


def test_file_is_reloaded_when_it_changes(tmp_path):
    path = write(tmp_path, KITCHEN)
    assert get_task(path, "reach-red").max_steps == 20
    changed = copy.deepcopy(KITCHEN)
    changed["tasks"][0]["max_steps"] = 21
    write(tmp_path, changed)
    assert get_task(path, "reach-red").max_steps == 21


def _edit(fn):
    data = copy.deepcopy(KITCHEN)
    fn(data)
    return data


BAD = {
    "unknown top key": (_edit(lambda d: d.update(robots="fake4")), "key 'robots' is unknown"),
    "unknown task key": (_edit(lambda d: d["tasks"][1].update(max_step=3)), "key 'tasks[1].max_step' is unknown"),
    "duplicate id": (_edit(lambda d: d["tasks"][1].update(id="reach-red")), "'tasks[1].id' duplicates task id"),
    "empty instructions": (_edit(lambda d: d["tasks"][0].update(instructions=[])), "'tasks[0].instructions' must not"),
    "blank instruction": (_edit(lambda d: d["tasks"][0].update(instructions=[" "])), "'tasks[0].instructions' must"),
    "max_steps 0": (_edit(lambda d: d["tasks"][1].update(max_steps=0)), "'tasks[1].max_steps' must be an integer"),
    "max_steps float": (_edit(lambda d: d["tasks"][1].update(max_steps=2.5)), "'tasks[1].max_steps' must"),
    "bad kind": (_edit(lambda d: d["tasks"][0].update(kind="medium")), "'tasks[0].kind' must be one of short, long"),
    "negative weight": (_edit(lambda d: d["tasks"][0].update(weight=-1)), "'tasks[0].weight' must be a finite"),
    "string weight": (_edit(lambda d: d["tasks"][0].update(weight="2")), "'tasks[0].weight' must be a finite"),
    "all weights 0": (
        _edit(lambda d: [t.update(weight=0) for t in d["tasks"]]), "'tasks[0].weight' is 0 like every"
    ),
    "missing kind": (_edit(lambda d: d["tasks"][0].pop("kind")), "key 'tasks[0].kind' is required"),
    "no tasks": (_edit(lambda d: d.update(tasks=[])), "key 'tasks' must be a non-empty list"),
    "no name": (_edit(lambda d: d.pop("name")), "key 'name' must be a non-empty string"),
    "bad id": (_edit(lambda d: d["tasks"][0].update(id="reach red")), "key 'tasks[0].id' must be a non-empty id"),
    "shared instruction": (
        _edit(lambda d: d["tasks"][1].update(instructions=["fetch the tomato"])), "'tasks[1].instructions' reuses"
    ),
    "held-out seen in training": (
        _edit(lambda d: d["tasks"][0].update(held_out_instructions=["fetch the tomato"])),
        "'tasks[0].held_out_instructions' repeats",
    ),
    "unknown simulator": (_edit(lambda d: d.update(robot="ur5")), "key 'robot' must be one of fake4"),
    "task the simulator lacks": (_edit(lambda d: d["tasks"][0].update(id="push")), "'tasks[0].id' 'push' is not"),
    "robot and factory": (_edit(lambda d: d.update(robot_factory="a.b:c")), "'robot_factory' cannot be combined"),
    "factory format": (
        _edit(lambda d: (d.pop("robot"), d.update(robot_factory="ab"))), "'robot_factory' must be 'package"
    ),
    "options without factory": (_edit(lambda d: d.update(robot_options={"a": 1})), "'robot_options' must be"),
    "not an object": ([1, 2], "a suite file must hold a JSON object"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_validation_error_is_one_line_naming_file_and_key(case, tmp_path):
    data, message = BAD[case]
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        get_suite(path)
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match=r"^suite file 'nope/k\.json' does not exist"):
        get_suite("nope/k.json")
    with pytest.raises(ConfigError, match=r"^unknown suite 'mw9'; valid: mw8, fake4, scene8, or the path"):
        get_suite("mw9")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON"):
        get_suite(str(bad))


class FakeEntryPoint:
    def __init__(self, name, obj):
        self.name, self.value, self._obj = name, f"acme_lwd.suites:{name}", obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_points_register_named_suites(tmp_path, monkeypatch):
    path = write(tmp_path, {**KITCHEN, "name": "from-file"})
    spec = SuiteSpec("as-spec", (TaskSpec("t", ("do t",), "short", 5),))
    eps = [
        FakeEntryPoint("kitchen", KITCHEN),
        FakeEntryPoint("from-file", lambda: path),
        FakeEntryPoint("as-spec", spec),
        FakeEntryPoint("renamed", KITCHEN),
        FakeEntryPoint("broken", ImportError("no module named acme_lwd")),
        FakeEntryPoint("fake4", {"name": "fake4"}),  # a shipped name is never replaced
    ]
    calls = []

    def entry_points(**kw):
        calls.append(kw)
        return eps

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    suites.reset_suite_cache()
    assert get_suite("fake4") is suites.SHIPPED["fake4"].spec and not calls  # shipped: no discovery
    assert get_suite("kitchen").task_ids == ("reach-red", "reach-blue")
    assert get_suite("from-file").name == "from-file"
    assert get_suite("as-spec") == spec
    assert calls == [{"group": "lwd.suites"}]  # discovered once
    assert task_weights("kitchen") == {"reach-red": 2.0, "reach-blue": 3.0}
    with pytest.raises(ConfigError, match="suite name 'kitchen' differs from the entry point name"):
        get_suite("renamed")
    with pytest.raises(ConfigError, match=r"entry point 'broken' .* cannot be loaded: ImportError"):
        get_suite("broken")
    # iteration lists what resolves (a broken plugin must not break code that walks every suite)
    assert [n for n in SUITES if n not in suites._registered] == [
        "mw8",
        "fake4",
        "scene8",
        "kitchen",
        "from-file",
        "as-spec",
    ]
    with pytest.raises(ConfigError, match="valid: mw8, fake4, scene8, kitchen, from-file"):
        get_suite("mw9")


def test_register_suite_in_process():
    spec = SuiteSpec("lab-bench", (TaskSpec("t", ("do t",), "short", 5),))
    SUITES["lab-bench"] = spec
    assert get_suite("lab-bench") == spec
    with pytest.raises(ConfigError, match="already registered with different tasks"):
        suites.register_suite(SuiteSpec("lab-bench", (TaskSpec("u", ("do u",), "short", 5),)))
    with pytest.raises(ConfigError, match="shipped suite"):
        suites.register_suite(SuiteSpec("fake4", ()))


def test_file_suite_runs_on_its_simulator_and_config_checks_accept_it(tmp_path):
    from lwd.configs.checks import check_tasks
    from lwd.envs.episode_loop import run_episode

    path = write(tmp_path, KITCHEN)
    check_tasks(path, ("reach-blue",), "--tasks")
    with pytest.raises(ConfigError, match="unknown task 'reach-green'"):
        check_tasks(path, ("reach-green",), "--tasks")
    robot = make_robot(path, "state", "lab")
    assert robot.suite == get_suite(path)
    task = get_task(path, "reach-red")
    expert = robot.expert("reach-red")
    ep = run_episode(
        robot, lambda obs: expert.action(robot.privileged_state())[None], task, "fetch the tomato", 3
    )
    assert ep.task_id == "reach-red" and ep.length <= 20


def test_robot_factory_and_robotless_suites(tmp_path):
    data = {k: v for k, v in KITCHEN.items() if k != "robot"}
    nobody = write(tmp_path, data, "nobody.json")
    with pytest.raises(ConfigError, match="names no robot to build"):
        make_robot(nobody)
    factory = write(
        tmp_path, {**data, "robot_factory": f"{__name__}:stub_factory", "robot_options": {"x": 1}}, "f.json"
    )
    robot = make_robot(factory, "state", "field")
    assert robot.suite.name == "kitchen" and robot.options == {"x": 1} and robot.shift.name == "field"
    missing = write(tmp_path, {**data, "robot_factory": "no_such_module_xyz:make"}, "m.json")
    with pytest.raises(
        ConfigError, match=r"m\.json: robot_factory 'no_such_module_xyz:make' cannot be loaded"
    ):
        make_robot(missing)


def stub_factory(suite, obs_mode, shift, options):
    """A suite-file robot factory: the fake simulator over the file's tasks (stands in for a gym robot)."""
    from lwd.envs.fake import FakeRobot

    robot = FakeRobot(suite, obs_mode=obs_mode, shift=shift)
    robot.options = options
    return robot


def test_allocation_weights_follow_the_file(tmp_path):
    from lwd.fleet.dataplane.allocator import balanced_counts, choose_task
    from lwd.fleet.robot.client import task_weights_for

    path = write(tmp_path, KITCHEN)
    # reach-red: the file's weight 2 (not short=1); reach-blue: no weight, long -> 3
    weights = task_weights_for(path)
    assert weights == {"reach-red": 2.0, "reach-blue": 3.0}
    assert task_weights_for(path, ("reach-blue",), 1.0, 5.0) == {"reach-blue": 5.0}
    assignments: dict[str, str] = {}
    for i in range(10):
        assignments[f"r{i}"] = choose_task(balanced_counts(assignments, weights), weights)
    assert balanced_counts(assignments, weights) == {"reach-red": 4, "reach-blue": 6}


def test_report_orders_tasks_by_the_file_suite(tmp_path):
    from lwd.pipeline.report import _summaries

    path = write(tmp_path, KITCHEN)

    def row(t):
        return {"task_id": t, "episodes": 1, "successes": 1, "success_rate": 1.0, "ci95": [0.2, 1.0],
                "mean_length": 5.0, "mean_cycle_time_s": 0.1, "intervention_rate": 0.0}  # fmt: skip

    results = {"suite": path, "tasks": {"reach-blue": row("reach-blue"), "reach-red": row("reach-red")}}
    assert list(_summaries(results)) == ["reach-red", "reach-blue"]


def test_lwd_eval_accepts_a_suite_file(tmp_path, capsys):
    from lwd.cli.main import main

    path = write(tmp_path, KITCHEN)
    out = tmp_path / "ev"
    argv = ["eval", "--expert", "--suite", path, "--shift", "lab", "--tasks", "reach-red",
            "--episodes-per-task", "1", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["suite"] == path and list(results["tasks"]) == ["reach-red"]
    assert main([*argv[:3], str(tmp_path / "none.json"), *argv[4:], "--overwrite"]) == 2
    assert "suite file" in capsys.readouterr().err


def test_shipped_suites_are_definitions_too():
    assert suite_files.SIMULATORS[:2] == ("fake4", "metaworld")
    assert (
        suites.suite_definition("mw8").robot == "metaworld" and suites.suite_definition("fake4").weights == {}
    )
    assert task_weights("mw8")["hammer"] == 3.0 and task_weights("mw8")["push"] == 1.0


def test_collect_runs_a_file_suite(tmp_path):
    from lwd.configs.collect import CollectConfig
    from lwd.data import LwdDataset
    from lwd.pipeline.collect import collect

    path = write(tmp_path, KITCHEN)
    out = tmp_path / "data"
    collect(CollectConfig(out=out, suite=path, episodes_per_task=2, shift="lab"), progress=False)
    records = LwdDataset.open(out).episode_records
    assert {r["task_id"] for r in records} == {"reach-red", "reach-blue"} and len(records) == 4
    assert {r["instruction"] for r in records} <= {
        "fetch the tomato",
        "grab the red thing",
        "fetch the blueberry",
    }
