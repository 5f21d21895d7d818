"""scene8: stage logic (pure), the suite's shape and instructions, and the OGBench scene adapter."""

import importlib.util

import numpy as np
import pytest

from lwd.envs.scene_tasks import (
    CUBE_START_CENTRE,
    CUBE_START_HALF_WIDTH,
    CUBE_TOLERANCE,
    SCENE8_TASKS,
    SceneState,
    Stage,
    advance,
    stage_done,
)
from lwd.envs.shift import SHIPPED_SHIFTS, load_shift
from lwd.envs.suites import SUITES, held_out_instructions, make_robot
from lwd.utils.errors import ConfigError

SCENE8 = SUITES["scene8"]


def _state(buttons=(0, 0), drawer=0.0, window=0.0, cube=(0.38, 0.05, 0.02)):
    return SceneState(buttons=buttons, drawer=drawer, window=window, cube=np.asarray(cube))


def test_stage_conditions_and_tolerances():
    assert stage_done(Stage("button", button=1, state=1), _state(buttons=(0, 1)))
    assert not stage_done(Stage("button", button=0, state=1), _state(buttons=(0, 1)))
    assert stage_done(Stage("drawer", position=-0.16), _state(drawer=-0.125))  # within 0.04
    assert not stage_done(Stage("drawer", position=-0.16), _state(drawer=-0.11))
    assert stage_done(Stage("window", position=0.0), _state(window=0.03))
    assert stage_done(Stage("cube", target=(0.3, 0.0, 0.02)), _state(cube=(0.33, 0.02, 0.02)))  # 0.036 m
    assert not stage_done(Stage("cube", target=(0.3, 0.0, 0.02)), _state(cube=(0.33, 0.03, 0.02)))  # 0.042 m
    with pytest.raises(ValueError, match="unknown stage kind"):
        stage_done(Stage("door"), _state())


def test_stages_are_achieved_in_order():
    chain = SCENE8_TASKS["open-both"].stages  # unlock drawer, open drawer, unlock window, open window
    # the window is open and unlocked, but the drawer is still locked: nothing counts yet
    assert advance(chain, 0, _state(buttons=(0, 1), window=0.2)) == 0
    assert advance(chain, 0, _state(buttons=(1, 0))) == 1
    # several stages may complete on one step, in order
    assert advance(chain, 1, _state(buttons=(1, 1), drawer=-0.16)) == 3
    assert advance(chain, 3, _state(buttons=(1, 1), drawer=-0.16, window=0.2)) == 4
    assert advance(chain, 4, _state()) == 4  # done stays done


def test_suite_shape_time_limits_and_instructions():
    kinds = [t.kind for t in SCENE8.tasks]
    assert kinds.count("short") == 4 and kinds.count("long") == 4
    for t in SCENE8.tasks:
        stages = SCENE8_TASKS[t.task_id].stages
        if t.kind == "short":
            assert len(stages) == 1
        else:
            assert 3 <= len(stages) <= 5 and t.max_steps >= 500
        held = held_out_instructions("scene8", t.task_id)
        assert len(t.instructions) >= 4 and len(held) >= 2 and not set(held) & set(t.instructions)
    every = [i for t in SCENE8.tasks for i in t.instructions]
    assert len(every) == len(set(every)), "an instruction names one task only"
    # in every shipped condition, no cube target lies within the success tolerance of the start square
    for cond in SHIPPED_SHIFTS:
        shift = load_shift(cond)
        centre = np.add(CUBE_START_CENTRE, shift.object_offset)
        half = CUBE_START_HALF_WIDTH * shift.placement_scale
        for task in SCENE8_TASKS.values():
            for s in task.stages:
                if s.kind == "cube":
                    gap = np.maximum(np.abs(np.subtract(s.target[:2], centre)) - half, 0.0)
                    assert np.linalg.norm(gap) > CUBE_TOLERANCE, (cond, s)


def needs_ogbench(test):
    """Marks of the adapter's tests: they need MuJoCo and the optional extra ``lwd[ogbench]``."""
    missing = importlib.util.find_spec("ogbench") is None
    test = pytest.mark.skipif(missing, reason="needs the optional extra lwd[ogbench]")(test)
    return pytest.mark.metaworld(pytest.mark.filterwarnings("ignore")(test))


@pytest.fixture(scope="module")
def lab():
    return make_robot("scene8", "state", "lab")


def _expert_until(robot, stages: int):
    """An act function: the scripted expert until ``stages`` stages are achieved, then hold still."""
    expert = robot.expert("cube-in-drawer")

    def act(obs):
        if robot.stages_done >= stages:
            return np.zeros((1, 5), np.float32)
        return expert.action(robot.privileged_state())[None]

    return act


@needs_ogbench
def test_reset_is_the_same_scene_for_every_task(lab):
    """Only the instruction tells the tasks apart: a seed gives the same start state for every task."""
    first = lab.reset("unlock-drawer", "unlock the drawer", seed=11).state
    assert first.shape == (40,) and first.dtype == np.float32 and lab.spec.action_dim == 5
    for task in ("cube-in-drawer", "open-both"):
        np.testing.assert_array_equal(lab.reset(task, "x", seed=11).state, first)
    assert not np.array_equal(lab.reset("open-both", "x", seed=12).state, first)
    s = lab.scene_state()
    assert s.buttons == (0, 0) and abs(s.drawer) < 0.02 and abs(s.window) < 0.02
    assert np.abs(s.cube[:2] - CUBE_START_CENTRE).max() <= CUBE_START_HALF_WIDTH + 1e-6


@needs_ogbench
def test_expert_finishes_a_chained_task_and_reports_its_stages(lab):
    from lwd.envs.episode_loop import run_episode

    task = SCENE8.task("open-both")
    done_seen = []
    act = _expert_until(lab, 4)

    def recording(obs):
        done_seen.append(lab.stages_done)
        return act(obs)

    ep = run_episode(lab, recording, task, task.instructions[0], seed=3)
    assert ep.success and ep.rewards[-1] == 1.0 and ep.rewards[:-1].sum() == 0
    assert (ep.stages, ep.stages_done, ep.substep_score) == (4, 4, 1.0)
    assert done_seen == sorted(done_seen) and set(done_seen) == {0, 1, 2, 3}
    assert ep.length < task.max_steps


@needs_ogbench
def test_a_partly_done_chain_scores_its_substeps(lab):
    from lwd.envs.episode_loop import run_episode

    task = SCENE8.task("cube-in-drawer")
    ep = run_episode(lab, _expert_until(lab, 2), task, task.instructions[0], seed=5)
    assert not ep.success and ep.length == task.max_steps
    assert (ep.stages, ep.stages_done, ep.substep_score) == (4, 2, 0.5)
    idle = run_episode(lab, lambda obs: np.zeros((4, 5), np.float32), SCENE8.task("unlock-window"), "x", seed=5)
    assert not idle.success and idle.substep_score == 0.0


@needs_ogbench
def test_field_shift_slows_the_arm_and_moves_the_start(lab):
    field = make_robot("scene8", "state", "field")
    field.reset("unlock-drawer", "x", seed=11)
    lab.reset("unlock-drawer", "x", seed=11)
    assert field.env.action_high[0] == pytest.approx(0.8 * lab.env.action_high[0])
    assert not np.allclose(field.scene_state().cube, lab.scene_state().cube)
    field.close()


@needs_ogbench
def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="supports observation mode 'state' only"):
        make_robot("scene8", "pixels", "lab")


@needs_ogbench
def test_evaluation_reports_substep_scores_beside_success(tmp_path):
    from lwd.configs.eval import EvalConfig
    from lwd.eval.runner import evaluate

    out = evaluate(EvalConfig(suite="scene8", expert=True, shift="field", tasks=("unlock-window", "open-both"),
                              episodes_per_task=1, out=tmp_path / "ev"), progress=False)  # fmt: skip
    assert out["tasks"]["open-both"]["success_rate"] == 1.0 and out["tasks"]["open-both"]["mean_substep"] == 1.0
    assert out["average_substep"] == 1.0
    assert "Sub-step score" in (tmp_path / "ev" / "table.md").read_text()
