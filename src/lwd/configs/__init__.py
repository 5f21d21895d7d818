"""Typed frozen configs of every stage and the named presets (quickstart, debug, benchmark).

- :mod:`~lwd.configs.presets`: named presets of every command.
- :mod:`~lwd.configs.run`: ``lwd run``; :mod:`~lwd.configs.collect`, :mod:`~lwd.configs.train`
  (SFT, offline RL), :mod:`~lwd.configs.online` (the fleet loop: learner, rollout, budget),
  :mod:`~lwd.configs.eval`, :mod:`~lwd.configs.status`, :mod:`~lwd.configs.fleet`,
  :mod:`~lwd.configs.dashboard`, :mod:`~lwd.configs.lerobot`: one per command.
- :mod:`~lwd.configs.processes`: the fleet processes' configs (robot client, learner, coordinator).
- :mod:`~lwd.configs.checks`, :mod:`~lwd.configs.strict`: shared validation; strict JSON reading.
"""
