"""Helpers shared by the policy tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations


def make_observations(config, n: int, seed: int = 0):
    """n random observations matching ``config`` with a few distinct instructions."""
    import numpy as np

    from lwd.types import Observation

    rng = np.random.default_rng(seed)
    texts = ["pick up the cube", "open the drawer", "push the button"]
    return [
        Observation(
            state=rng.normal(size=config.state_dim).astype(np.float32),
            instruction=texts[i % len(texts)],
            images={
                c: rng.integers(0, 256, size=(config.image_size, config.image_size, 3), dtype=np.uint8)
                for c in config.cameras
            },
        )
        for i in range(n)
    ]
