"""Pure learning math (no I/O): losses, update steps and the algorithms built from them.

- :mod:`~lwd.algorithms.registry`: every algorithm by its one name (offline and online).
- :mod:`~lwd.algorithms.base`: the ``Algorithm`` protocol, ``BatchNeeds``, the optimiser step.
- :mod:`~lwd.algorithms.batching`: TransitionBatch -> tensors.
- :mod:`~lwd.algorithms.bc`: flow-matching BC (SFT; algorithms.md 2).
- :mod:`~lwd.algorithms.divl`: DIVL value and critic (algorithms.md 3.1-3.5, 3.7).
- :mod:`~lwd.algorithms.iql`: the scalar expectile ablation (3.6).
- :mod:`~lwd.algorithms.qam`: QAM policy extraction (4.1-4.4).
- :mod:`~lwd.algorithms.lwd` + :mod:`~lwd.algorithms.lwd_config`: LWD = DIVL (or IQL) + QAM with a
  frozen or BC-trained reference.
- :mod:`~lwd.algorithms.hg_dagger`, :mod:`~lwd.algorithms.recap`: the imitation baselines.

docs/algorithms.md states the equations and the implementation notes.
"""
