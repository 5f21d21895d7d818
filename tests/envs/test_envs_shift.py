"""Shift files: shipped names, validation errors naming file, key and expectation."""

import json

import pytest

from lwd.envs.shift import ShiftSpec, load_shift
from lwd.utils.errors import ConfigError


def test_lab_is_identity_and_field_is_substantial():
    lab = load_shift("lab")
    assert lab == ShiftSpec(name="lab")
    field = load_shift("field")
    assert field.name == "field"
    assert field.action_latency >= 1
    assert field.action_noise_std > 0
    assert field.object_mass_scale > 1 and field.friction_scale < 1 and field.actuator_gain_scale < 1
    assert field.placement_scale > 1


def test_none_means_lab_and_spec_passes_through():
    assert load_shift(None).name == "lab"
    spec = ShiftSpec(name="x", action_latency=2)
    assert load_shift(spec) is spec


def test_file_without_name_takes_stem(tmp_path):
    p = tmp_path / "shift_rainy.json"
    p.write_text(json.dumps({"friction_scale": 0.5, "object_offset": [0.01, 0.02]}))
    s = load_shift(p)
    assert s.name == "rainy" and s.friction_scale == 0.5 and s.object_offset == (0.01, 0.02)


@pytest.mark.parametrize(
    "content, key, expect",
    [
        ("{not json", None, "invalid JSON"),
        ('{"gravity": 1}', "gravity", "unknown key"),
        ('{"action_latency": 1.5}', "action_latency", "integer"),
        ('{"object_mass_scale": "heavy"}', "object_mass_scale", "number"),
        ('{"friction_scale": 100}', "friction_scale", "out of range"),
        ('{"goal_offset": [0.1]}', "goal_offset", "two numbers"),
        ('{"action_noise_std": true}', "action_noise_std", "number"),
        ("[1, 2]", None, "JSON object"),
    ],
)
def test_malformed_files_raise_config_error(tmp_path, content, key, expect):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_shift(p)
    msg = str(err.value)
    assert str(p) in msg and expect in msg
    if key:
        assert repr(key) in msg
    assert "\n" not in msg


def test_missing_file_names_shipped_choices():
    with pytest.raises(ConfigError, match="lab, field"):
        load_shift("no/such/shift.json")
