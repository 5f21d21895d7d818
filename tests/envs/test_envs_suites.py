"""Suite registry, instruction sets and factory errors."""

import pytest

from lwd.envs.suites import SUITES, get_task, held_out_instructions, make_robot
from lwd.utils.errors import ConfigError


def test_mw8_composition():
    mw8 = SUITES["mw8"]
    short = {t.task_id for t in mw8.tasks if t.kind == "short"}
    long = {t.task_id for t in mw8.tasks if t.kind == "long"}
    assert short == {"pick-place", "push", "shelf-place", "drawer-open"}
    assert len(long) == 4 and "assembly" in long and "hammer" in long


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_instruction_sets(suite):
    spec = SUITES[suite]
    all_train = set()
    for task in spec.tasks:
        held = held_out_instructions(suite, task.task_id)
        assert len(task.instructions) >= 3 and len(held) >= 2
        assert not set(held) & set(task.instructions), "held-out paraphrases must be unseen in training"
        assert task.max_steps > 0
        all_train |= set(task.instructions)
    # instructions identify the task: no paraphrase is shared between two tasks
    assert len(all_train) == sum(len(t.instructions) for t in spec.tasks)


def test_unknown_names_raise_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown suite 'mw9'; valid: mw8, fake4"):
        make_robot("mw9")
    with pytest.raises(ConfigError, match="unknown task 'fly'.*valid: pick-place"):
        get_task("mw8", "fly")
    with pytest.raises(ConfigError, match="unknown observation mode 'depth'; valid: state, pixels"):
        make_robot("fake4", "depth")
    robot = make_robot("fake4")
    with pytest.raises(ConfigError, match="unknown task 'pick-place' for suite 'fake4'"):
        robot.reset("pick-place", "x", 0)
