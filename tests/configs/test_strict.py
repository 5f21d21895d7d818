"""configs/strict.py: typed configs from JSON objects, with every key, presence and type checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from lwd.configs.processes import CoordinatorConfig, LearnerConfig, RobotClientConfig, process_config
from lwd.configs.strict import from_json_file, from_mapping, to_json_dict
from lwd.envs.intervention import InterventionConfig
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    steps: int = 3
    rate: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str
    ids: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None
    on: bool = False


def test_values_are_coerced_to_the_field_types():
    cfg = from_mapping(Outer, {"name": "a", "ids": ["x", "y"], "weights": {"t": 1}, "inner": {"rate": 2},
                               "limit": None, "on": True}, "outer")  # fmt: skip
    assert cfg == Outer("a", ("x", "y"), {"t": 1.0}, Inner(3, 2.0), None, True)
    assert isinstance(cfg.weights["t"], float) and isinstance(cfg.inner.rate, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a", "nmae": "b"}, "outer: unknown key 'nmae' (did you mean 'name'?)"),
        ({"name": "a", "zzz": 1}, "outer: unknown key 'zzz'; known keys: ids, inner, limit, name, on, weights"),
        ({"ids": []}, "outer lacks required keys: name"),
        ({"name": 3}, "outer: name must be a string, got 3"),
        ({"name": "a", "ids": "xy"}, "outer: ids must be a list, got str"),
        ({"name": "a", "on": 1}, "outer: on must be true or false, got 1"),
        ({"name": "a", "limit": 2.5}, "outer: limit must be an integer, got 2.5"),
        ({"name": "a", "limit": True}, "outer: limit must be an integer, got True"),
        ({"name": "a", "inner": {"step": 1}}, "outer: inner: unknown key 'step' (did you mean 'steps'?)"),
        ({"name": "a", "inner": [1]}, "outer: inner: must be a JSON object, got list"),
        ({"name": "a", "weights": {"t": "x"}}, "outer: weights.t must be a number, got 'x'"),
    ],
)
def test_bad_input_is_a_config_error_that_names_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        from_mapping(Outer, data, "outer")
    assert str(e.value) == message


def test_process_configs_round_trip_through_json(tmp_path):
    """What a launcher writes (to_json_dict) is what the process reads back (from_json_file)."""
    robot = RobotClientConfig(
        client_id="c", dataplane={"events": "redis://h:1/0", "store": "s3://b"}, registry="r", status_path="s",
        suite="mw8", robot_ids=("robot-000", "robot-001"), robot_indices=(0, 1), task_weights={"push": 1.0},
        outbox_root="o", intervention=InterventionConfig(budget_steps=7), max_episodes=3,
    )  # fmt: skip
    coordinator = CoordinatorConfig(root="f", tasks=("push",), state_dim=39, check_versions=True)
    learner = LearnerConfig(learner_dir="l", init="i", offline_dataset="d", dataplane="f", registry="r")
    for kind, cfg in (("robot", robot), ("coordinator", coordinator), ("learner", learner)):
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(to_json_dict(cfg)))
        assert from_json_file(type(cfg), path, kind) == cfg
        assert process_config(kind, json.loads(path.read_text())) == cfg
