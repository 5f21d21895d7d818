"""ScriptedExpertIntervener: each rule triggers, budgets hold, flags are recorded."""

import numpy as np

from lwd.envs.episode_loop import run_episode
from lwd.envs.intervention import Intervener, InterventionConfig, ScriptedExpertIntervener
from lwd.envs.suites import SUITES, make_robot

TASK = SUITES["fake4"].task("reach-yellow")
OFF = dict(no_progress_steps=0, deviation_threshold=np.inf, spot_check_prob=0.0)


def _run(cfg, act, seed=0):
    robot = make_robot("fake4")
    iv = ScriptedExpertIntervener(robot, InterventionConfig(**cfg))
    assert isinstance(iv, Intervener)
    ep = run_episode(robot, act, TASK, "x", seed, intervener=iv)
    return ep, iv


def away(obs):
    """Drive away from yellow (bottom-right): opposite to the expert."""
    return np.tile(np.array([-1.0, 1.0], dtype=np.float32), (4, 1))


def test_deviation_rule_takes_over_and_expert_finishes():
    ep, iv = _run({**OFF, "deviation_threshold": 1.0, "deviation_steps": 2, "max_takeover_steps": 40}, away)
    assert ep.success and ep.intervention.any()
    assert iv.events[0] == (1, "deviation")  # two consecutive deviating proposals: t=0 and t=1
    assert not ep.intervention[0] and ep.intervention[-1], "the expert's actions end the episode"


def test_no_progress_rule():
    ep, iv = _run({**OFF, "no_progress_steps": 5, "max_takeover_steps": 40}, lambda o: np.zeros((3, 2)))
    assert [r for _, r in iv.events] == ["no_progress"]
    first = int(np.argmax(ep.intervention))
    assert first == 5 and ep.success


def test_spot_checks_and_hand_back_after_k_steps():
    cfg = {**OFF, "spot_check_prob": 1.0, "max_takeover_steps": 2, "resume_eps": 1e9, "budget_steps": 100}
    ep, iv = _run(cfg, away)
    assert {r for _, r in iv.events} == {"spot_check"}
    # always re-taken immediately, each take-over lasts 2 steps: every step is intervened
    assert ep.intervention.all() and len(iv.events) == -(-ep.length // 2)


def test_budget_is_respected():
    cfg = {**OFF, "spot_check_prob": 1.0, "budget_steps": 3, "max_takeover_steps": 2}
    ep, iv = _run(cfg, away)
    assert ep.intervention.sum() == 3 and iv.budget_left == 0
    assert not ep.success and ep.length == TASK.max_steps
    # after the budget is spent the policy drives again and nothing more is flagged
    assert not ep.intervention[int(np.nonzero(ep.intervention)[0][-1]) + 1 :].any()


def test_hand_back_when_progress_resumes():
    cfg = {
        **OFF,
        "no_progress_steps": 4,
        "max_takeover_steps": 100,
        "min_takeover_steps": 2,
        "resume_eps": 0.15,
    }
    ep, iv = _run(cfg, lambda o: np.zeros((1, 2)))
    # the expert moves 0.1 per step: progress resumed by 0.15 after 2 steps, then it hands back
    runs = np.diff(np.concatenate([[0], ep.intervention.astype(int), [0]]))
    lengths = np.nonzero(runs == -1)[0] - np.nonzero(runs == 1)[0]
    assert lengths[0] == 2 and len(iv.events) >= 2


def test_intervened_actions_are_the_experts():
    robot = make_robot("fake4")
    iv = ScriptedExpertIntervener(
        robot, InterventionConfig(**{**OFF, "spot_check_prob": 1.0, "max_takeover_steps": 100})
    )
    ep = run_episode(robot, away, TASK, "x", 4, intervener=iv)
    assert ep.intervention.all() and ep.success
    expert = robot.expert(TASK.task_id)
    for t in range(ep.length):
        assert np.allclose(ep.actions[t], expert.action(ep.states[t]))
