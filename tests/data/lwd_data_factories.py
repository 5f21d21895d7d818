"""Episode factories shared by the data tests (imported as a plain module; no fixtures)."""

from __future__ import annotations

import zlib

import numpy as np

from lwd.specs import RobotSpec
from lwd.types import Episode

STATE_DIM, ACTION_DIM, IMAGE_SIZE = 3, 2, 4
STATE_SPEC = RobotSpec(state_dim=STATE_DIM, action_dim=ACTION_DIM)
PIXEL_SPEC = RobotSpec(state_dim=STATE_DIM, action_dim=ACTION_DIM, cameras=("corner",), image_size=IMAGE_SIZE)


def make_episode(
    episode_id: str,
    length: int = 6,
    task_id: str = "push",
    instruction: str | None = None,
    source: str = "rollout",
    success: bool = True,
    images: bool = False,
    seed: int = 0,
    intervention: np.ndarray | None = None,
    rng_seed: int | None = None,
) -> Episode:
    """A valid episode with distinct random states/actions (deterministic in ``episode_id``/``rng_seed``)."""
    rng = np.random.default_rng(rng_seed if rng_seed is not None else zlib.crc32(episode_id.encode()))
    success = success and source != "play"
    rewards = np.zeros(length, np.float32)
    if success:
        rewards[-1] = 1.0
    return Episode(
        episode_id=episode_id,
        task_id=task_id,
        instruction=instruction or f"please {task_id}",
        robot_id="robot-0",
        policy_version=2,
        source=source,
        success=success,
        states=rng.normal(size=(length + 1, STATE_DIM)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(length, ACTION_DIM)).astype(np.float32),
        rewards=rewards,
        intervention=(rng.random(length) < 0.3) if intervention is None else intervention,
        images={"corner": rng.integers(0, 256, size=(length + 1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)}
        if images
        else {},
        seed=seed,
        condition="lab",
    )


def assert_same_episode(a: Episode, b: Episode) -> None:
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
        "stages",
        "stages_done",
    ):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("states", "actions", "rewards", "intervention"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.images.keys() == b.images.keys()
    for cam in a.images:
        np.testing.assert_array_equal(a.images[cam], b.images[cam])


def reference(rewards, t, chunk_len, n, gamma):
    """Literal transcription: (action rows, mask, reward, discount, next state row) of transition t."""
    big_t = len(rewards)
    rows = [min(t + i, big_t - 1) for i in range(chunk_len)]
    mask = [t + i < big_t for i in range(chunk_len)]

    def rbar(s):
        total = 0.0
        for i in range(chunk_len):
            if s + i < big_t:
                total += gamma**i * float(rewards[s + i])
        return total

    reward = 0.0
    for i in range(n):
        if t + i * chunk_len < big_t:
            reward += gamma ** (i * chunk_len) * rbar(t + i * chunk_len)
    discount = gamma ** (n * chunk_len) if t + n * chunk_len < big_t else 0.0
    return rows, mask, reward, discount, min(t + n * chunk_len, big_t)
