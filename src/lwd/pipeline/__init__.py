"""Pipeline stages run by ``lwd run`` and the CLI.

- :mod:`~lwd.pipeline.run`: ``lwd run``, the main job (every stage below, then the report).
- :mod:`~lwd.pipeline.collect`: ``lwd collect`` (the offline buffer).
- :mod:`~lwd.pipeline.pretrain`: ``lwd pretrain`` (SFT).
- :mod:`~lwd.pipeline.train_offline`: ``lwd train`` (offline RL).
- :mod:`~lwd.pipeline.online`: the online stage (launches the fleet).
- :mod:`~lwd.pipeline.report`: the run report (markdown + plots).
- :mod:`~lwd.pipeline.trainer`: the training loop every learning stage shares.
"""
