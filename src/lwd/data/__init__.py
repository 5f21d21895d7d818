"""lwd.data: episode records on disk and in memory, and the transitions learners sample.

- :mod:`~lwd.data.episode_io`: one episode <-> parquet payload (data plane, robot uploads)
- :class:`DatasetWriter` / :class:`LwdDataset`: LeRobot-v3-compatible datasets (atomic, resumable)
- :mod:`~lwd.data.chunking`: chunked n-step transition math (pure numpy)
- :class:`ReplayBuffer` / :class:`ReplayMixer`: sampling :class:`TransitionBatch` for learners
"""

from lwd.data.batch import TransitionBatch
from lwd.data.dataset import LwdDataset
from lwd.data.dataset_writer import DatasetWriter
from lwd.data.filters import ALL, DEMOS, DEMOS_AND_INTERVENTIONS, TransitionFilter
from lwd.data.mixer import ReplayMixer
from lwd.data.replay import ReplayBuffer
from lwd.data.stats import compute_norm_stats

__all__ = [
    "ALL",
    "DEMOS",
    "DEMOS_AND_INTERVENTIONS",
    "DatasetWriter",
    "LwdDataset",
    "ReplayBuffer",
    "ReplayMixer",
    "TransitionBatch",
    "TransitionFilter",
    "compute_norm_stats",
]
