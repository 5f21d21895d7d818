import numpy as np
import pytest

from lwd.data.episode_io import episode_from_bytes, episode_to_bytes
from lwd.types import Episode, new_episode_id


def make_episode(t=5, d=3, a=2, images=False, success=True):
    rng = np.random.default_rng(0)
    rewards = np.zeros(t, np.float32)
    if success:
        rewards[-1] = 1.0
    return Episode(
        episode_id=new_episode_id(),
        task_id="push",
        instruction="push the puck",
        robot_id="robot-0",
        policy_version=3,
        source="online",
        success=success,
        states=rng.normal(size=(t + 1, d)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(t, a)).astype(np.float32),
        rewards=rewards,
        intervention=np.arange(t) % 2 == 0,
        images={"corner": rng.integers(0, 255, size=(t + 1, 8, 8, 3), dtype=np.uint8)} if images else {},
        seed=7,
        condition="field",
    )


@pytest.mark.parametrize("images", [False, True])
def test_round_trip_is_exact(images):
    ep = make_episode(images=images)
    back = episode_from_bytes(episode_to_bytes(ep))
    for name in (
        "episode_id",
        "task_id",
        "instruction",
        "robot_id",
        "policy_version",
        "source",
        "success",
        "seed",
        "condition",
    ):
        assert getattr(back, name) == getattr(ep, name)
    for name in ("states", "actions", "rewards", "intervention"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ep, name))
    assert back.images.keys() == ep.images.keys()
    for cam in ep.images:
        np.testing.assert_array_equal(back.images[cam], ep.images[cam])


def test_truncated_payload_is_refused():
    data = episode_to_bytes(make_episode())
    with pytest.raises(ValueError, match="unreadable episode payload"):
        episode_from_bytes(data[: len(data) // 2])


def test_invalid_episode_is_refused_on_write():
    ep = make_episode()
    ep.actions[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        episode_to_bytes(ep)
