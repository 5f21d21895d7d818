"""The critic side: networks and pure target functions (algorithms.md 3).

- :mod:`~lwd.critic.networks`: the critic's own observation encoder, ``ChunkCritic`` (two heads,
  attention-pooled chunk), ``ValueDistribution`` (categorical value), ``ScalarValue`` (IQL),
  ``ema_update``, ``CriticConfig`` and builders.
- :mod:`~lwd.critic.targets`: atoms, the two-atom projection, entropy-adaptive tau, the quantile
  readout, the expectile loss (pure tensor functions).
"""
