import numpy as np
import pytest
from lwd_data_factories import assert_same_episode
from lwd_data_factories import make_episode as factory_episode

from lwd.data.episode_io import episode_from_bytes, episode_to_bytes
from lwd.types import new_episode_id


def make_episode(images=False, success=True):
    ep = factory_episode(new_episode_id(), length=5, images=images, success=success, seed=7, source="online")
    ep.intervention[::2] = True
    return ep.replace(condition="field", stages=4, stages_done=4 if success else 1)


@pytest.mark.parametrize("images", [False, True])
def test_round_trip_is_exact(images):
    ep = make_episode(images=images)
    back = episode_from_bytes(episode_to_bytes(ep))
    assert_same_episode(ep, back)
    assert back.intervention.any() and back.condition == "field" and back.images.keys() == ep.images.keys()
    assert back.substep_score == 1.0 and episode_from_bytes(episode_to_bytes(make_episode(success=False))).substep_score == 0.25


@pytest.mark.parametrize("stages, done, success", [(3, 4, False), (3, -1, False), (3, 2, True), (0, 1, False)])
def test_inconsistent_stages_are_refused(stages, done, success):
    ep = make_episode(success=success).replace(stages=stages, stages_done=done)
    with pytest.raises(ValueError, match="stages_done"):
        ep.validate()


def test_truncated_payload_is_refused():
    data = episode_to_bytes(make_episode())
    with pytest.raises(ValueError, match="unreadable episode payload"):
        episode_from_bytes(data[: len(data) // 2])


def test_invalid_episode_is_refused_on_write():
    ep = make_episode()
    ep.actions[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        episode_to_bytes(ep)
