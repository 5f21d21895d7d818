"""Configuration of the main job (``lwd run``): every stage from nothing to an evaluated policy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lwd.configs.checks import Checks, check_shift
from lwd.configs.collect import CollectConfig
from lwd.configs.eval import EvalConfig
from lwd.configs.online import OnlineConfig
from lwd.configs.train import RLConfig, SFTConfig
from lwd.utils.errors import ConfigError

SET_BY_RUN: dict[str, str] = {
    "collect.out": "--run-dir (<run-dir>/offline_data)",
    "collect.suite": "--suite",
    "collect.seed": "--seed",
    "collect.resume": "lwd run (it always resumes)",
    "sft.dataset": "--run-dir (<run-dir>/offline_data)",
    "sft.out": "--run-dir (<run-dir>/sft)",
    "sft.loop.seed": "--seed",
    "offline.dataset": "--run-dir (<run-dir>/offline_data)",
    "offline.init": "--run-dir (<run-dir>/sft/policy)",
    "offline.out": "--run-dir (<run-dir>/offline_lwd)",
    "offline.loop.seed": "--seed",
    "online.suite": "--suite",
    "online.seed": "--seed",
    "eval.checkpoint": "lwd run (each stage's policy)",
    "eval.expert": "lwd run (each stage's policy)",
    "eval.suite": "--suite",
    "eval.shift": "--eval-conditions / --generalisation-conditions",
    "eval.out": "--run-dir (<run-dir>/eval/<policy>_<condition>)",
    "eval.name": "lwd run (the stage's name)",
    "eval.overwrite": "lwd run (it re-evaluates only unfinished evaluations)",
}
"""Nested options ``lwd run`` sets itself (value: what sets them). ``tyro`` lists them under the stage
groups of ``lwd run --help`` because the stage configs are shared with ``lwd collect`` & co.; giving
one of them to ``lwd run`` is an error (:meth:`RunConfig.check_not_set_by_run`) rather than silently
ignored: the run directory's layout, suite and seed must stay consistent across stages and resumes."""


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class RunConfig:
    """Chain the stages; each one's outputs live under ``run_dir`` and each resumes where it stopped.

    The stage options (``--collect.*``, ``--sft.*``, ``--offline.*``, ``--online.*``, ``--eval.*``) are
    honoured, except the paths, suite, seed and evaluation target that the run sets for every stage
    (:data:`SET_BY_RUN`): the command line rejects those with an error naming the option to use
    instead, because silently replacing a value the user typed would make the run differ from what
    was asked. Every option of every stage is validated (:meth:`validate`) before the first stage.
    """

    run_dir: Path = Path("runs/quickstart")
    """Directory of the whole run (stage outputs, report). Running again resumes."""
    suite: str = "mw8"
    """Task suite, applied to every stage: ``mw8``, ``scene8`` (long-horizon, one shared scene), ``fake4``,
    a suite JSON file or an ``lwd.suites`` entry point."""
    seed: int = 0
    """Seed of collection and training (evaluation seeds are separate and fixed)."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Offline data collection; ``out``, ``suite``, ``seed`` and ``resume`` are set by the run
    (``run_dir/offline_data``, ``--suite``, ``--seed``, always resumed) and rejected here."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Behaviour cloning; ``dataset``, ``out`` and ``loop.seed`` are set by the run (``run_dir/sft``,
    ``--seed``) and rejected here."""
    offline: RLConfig = field(default_factory=RLConfig)
    """Offline RL from the SFT policy; ``dataset``, ``init``, ``out`` and ``loop.seed`` are set by the
    run (``run_dir/offline_lwd``, ``--seed``) and rejected here."""
    online: OnlineConfig = field(default_factory=OnlineConfig)
    """Learning while deploying: the simulated fleet + learner (state under ``run_dir/online``);
    ``suite`` and ``seed`` come from ``--suite`` and ``--seed``."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation settings used for every policy the run produces; ``checkpoint``, ``expert``,
    ``suite``, ``shift``, ``out``, ``name`` and ``overwrite`` are set by the run and rejected here."""
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

    def resolved(self) -> RunConfig:
        """Every stage pointed at ``run_dir`` and the run's suite and seed (:data:`SET_BY_RUN`)."""
        rd = self.run_dir
        rep = dataclasses.replace
        collect_cfg = rep(
            self.collect, out=rd / "offline_data", suite=self.suite, seed=self.seed, resume=True
        )
        sft = rep(
            self.sft, dataset=rd / "offline_data", out=rd / "sft", loop=rep(self.sft.loop, seed=self.seed)
        )
        offline = rep(self.offline, dataset=rd / "offline_data", init=rd / "sft" / "policy",
                      out=rd / "offline_lwd", loop=rep(self.offline.loop, seed=self.seed))  # fmt: skip
        online = rep(self.online, suite=self.suite, seed=self.seed)
        if self.engine is not None:
            online = rep(online, engine=self.engine)
        if self.ray_address is not None:
            online = rep(online, ray_address=self.ray_address)
        if self.ray_detached:
            online = rep(online, ray_detached=True)
        ev = rep(self.eval, suite=self.suite, expert=False, overwrite=False)
        return rep(self, collect=collect_cfg, sft=sft, offline=offline, online=online, eval=ev)

    def validate(self, prefix: str = "--") -> None:
        """Check the options of every stage (ranges, names, conditions) before any stage runs."""
        from lwd.envs.suites import get_suite

        get_suite(self.suite)
        c = Checks(self, prefix)
        c.seed()
        for cond in (*self.eval_conditions, *self.generalisation_conditions):
            check_shift(cond)  # ConfigError naming the condition and what is expected
        if self.generalisation_conditions and self.generalisation_episodes < 1:
            raise ConfigError(
                f"{prefix}generalisation-episodes must be >= 1, got {self.generalisation_episodes}"
            )
        r = self.resolved()
        if r.online.ray_detached and r.online.engine != "ray":
            raise ConfigError(f"{prefix}ray-detached needs {prefix}engine ray")
        r.collect.validate(f"{prefix}collect.")
        r.sft.validate(f"{prefix}sft.")
        r.offline.validate(f"{prefix}offline.")
        if not self.skip_online:
            r.online.validate(f"{prefix}online.")
        dataclasses.replace(r.eval, checkpoint=self.run_dir / "sft" / "policy").validate(f"{prefix}eval.")

    def check_not_set_by_run(self, default: RunConfig, prefix: str = "--") -> None:
        """Refuse options that differ from the preset ``default`` where the run sets them itself."""
        given = [k for k in SET_BY_RUN if _get(self, k) != _get(default, k)]
        if given:
            opts = ", ".join(f"{prefix}{k.replace('_', '-')}" for k in given)
            use = "; ".join(f"{prefix}{k.replace('_', '-')} comes from {SET_BY_RUN[k]}" for k in given)
            raise ConfigError(f"lwd run sets {opts} itself: {use}")
