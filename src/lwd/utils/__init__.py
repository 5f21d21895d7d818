"""Bottom-layer helpers (they import nothing of lwd outside ``lwd.utils``).

- :mod:`~lwd.utils.io`: atomic writes, checksums, JSON; :mod:`~lwd.utils.checkpoint`: checksummed
  checkpoint directories; :mod:`~lwd.utils.state_io`: pickle-free training state.
- :mod:`~lwd.utils.run_state`: step checkpoints and the metrics log; :mod:`~lwd.utils.metric_means`,
  :mod:`~lwd.utils.wandb_log`: metric summaries and the optional W&B mirror.
- :mod:`~lwd.utils.seeding`: disjoint seed ranges; :mod:`~lwd.utils.device`: device choice;
  :mod:`~lwd.utils.errors`: one-line user errors; :mod:`~lwd.utils.logs`: quiet logging;
  :mod:`~lwd.utils.imports`: user code named in configs.
"""
