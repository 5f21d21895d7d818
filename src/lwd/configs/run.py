"""Configuration of the main job (``lwd run``): every stage from nothing to an evaluated policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lwd.configs.collect import CollectConfig
from lwd.configs.eval import EvalConfig
from lwd.configs.online import OnlineConfig
from lwd.configs.train import RLConfig, SFTConfig


@dataclass(frozen=True)
class RunConfig:
    """Chain the stages; each one's outputs live under ``run_dir`` and each resumes where it stopped."""

    run_dir: Path = Path("runs/quickstart")
    """Directory of the whole run (stage outputs, report). Running again resumes."""
    suite: str = "mw8"
    """Task suite, applied to every stage."""
    seed: int = 0
    """Seed of collection and training (evaluation seeds are separate and fixed)."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Offline data collection (its ``out`` is replaced by ``run_dir/offline_data``)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Behaviour cloning (paths replaced by ``run_dir/sft``)."""
    offline: RLConfig = field(default_factory=RLConfig)
    """Offline RL from the SFT policy (paths replaced by ``run_dir/offline_lwd``)."""
    online: OnlineConfig = field(default_factory=OnlineConfig)
    """Learning while deploying: the simulated fleet + learner (state under ``run_dir/online``)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation settings used for every policy the run produces (paths replaced)."""
    eval_conditions: tuple[str, ...] = ("field",)
    """Conditions every evaluated policy (SFT, offline LWD, online LWD) is measured in."""
    eval_sft_in_lab: bool = True
    """Also evaluate the SFT policy in the lab, to show the deployment shift (with the main evaluation's
    episodes; when ``lab`` is a generalisation condition, that evaluation covers it)."""
    eval_offline: bool = True
    """Also evaluate the offline LWD policy (``lwd_offline``) in ``eval_conditions``."""
    generalisation_conditions: tuple[str, ...] = ("lab", "field2")
    """Conditions no training stage used, where SFT and the online policy are also evaluated (paired
    on the same episodes): does the field gain generalise? ``field2`` is a second shipped field site;
    empty disables."""
    generalisation_episodes: int = 10
    """Episodes per task per evaluation seed in each generalisation condition (a prefix of the main
    evaluation's held-out seeds, so SFT's lab evaluation pairs with them)."""
    skip_online: bool = False
    """Stop after the offline stage (no fleet)."""
    engine: Literal["local", "ray"] | None = None
    """Where the online stage's components run (``local`` processes or ``ray`` actors); ``None`` keeps
    ``online.engine``."""
    ray_address: str | None = None
    """Ray cluster for ``engine="ray"`` (``""``: a private local Ray, ``"auto"``, or ``host:port``);
    ``None`` keeps ``online.ray_address``."""
    ray_detached: bool = False
    """With ``engine="ray"``: start the fleet's actors detached (``online.ray_detached``): they keep
    running when this ``lwd run`` disconnects; running ``lwd run`` again reattaches to them."""
    stop: bool = False
    """Stop the detached Ray fleet of ``run_dir`` (robots, drain, learner, coordinator, as at the end of
    a run) and exit without running any stage; needs ``--engine ray``. ``--ray-address`` names the
    cluster (else the one the fleet was started with)."""
