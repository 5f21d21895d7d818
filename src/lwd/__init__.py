"""lwd: Learning While Deploying. Post-train one generalist flow-matching robot policy while a fleet uses it.

Packages, bottom-up (each imports only from below it; ``.importlinter`` enforces it):

- :mod:`lwd.types`, :mod:`lwd.specs`, :mod:`lwd.transforms`, :mod:`lwd.utils`: typed records
  (Episode, Observation, ActionChunk, TaskSpec), robot/suite specs, normalisation, durable io.
- :mod:`lwd.policy` | :mod:`lwd.critic` | :mod:`lwd.data` | :mod:`lwd.envs` (siblings): the flow
  policy; the critic and value networks; datasets, replay and batches; simulated robots and suites.
- :mod:`lwd.algorithms`: pure learning math (DIVL, QAM, IQL, BC, HG-DAgger, RECAP, LWD), no I/O.
- :mod:`lwd.configs`, :mod:`lwd.eval`: typed configs and presets; held-out evaluation and statistics.
- :mod:`lwd.fleet`: the processes (robot clients, coordinator, learner) and what they meet through
  (data plane, policy registry).
- :mod:`lwd.pipeline`: the stages ``lwd run`` chains; :mod:`lwd.cli`: the ``lwd`` command.

docs/architecture.md has the layout, the glossary and the conventions.
"""

__version__ = "0.1.0"
