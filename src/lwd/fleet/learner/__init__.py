"""The learner box: samples committed snapshots, trains the online algorithm, publishes versions.

- :mod:`~lwd.fleet.learner.service`: :class:`Learner` (the process loop: read snapshots, update,
  checkpoint, publish) and its entry point, ``python -m lwd.fleet.learner --config learner.json``.
- :mod:`~lwd.fleet.learner.algorithms`: builds the online algorithm named in the settings, places
  it on a device, samples its batches, and gives the acting policy to publish.
- :mod:`~lwd.fleet.learner.reader`: loads newly committed snapshots into the replay buffer.
- :mod:`~lwd.fleet.learner.version_stats`: per-policy-version fleet outcomes seen by the learner.

Publishing goes through :mod:`lwd.fleet.registry.versions`; data arrives through
:mod:`lwd.fleet.dataplane`.
"""
