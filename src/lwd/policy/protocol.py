"""The flow-policy interface every learner, robot and evaluation relies on, and the policy class a
checkpoint names.

Any ``torch.nn.Module`` that satisfies :class:`FlowPolicyModel` (and whose config satisfies
:class:`PolicyConfig`) goes through SFT (``lwd.algorithms.bc``), DIVL + QAM (``lwd.algorithms.lwd``),
HG-DAgger, checkpoints (:mod:`lwd.policy.checkpoint`), the policy registry, robot clients and
evaluation without changes. The built-in :class:`lwd.policy.flow_policy.FlowPolicy` is one such
class; :mod:`lwd.policy.examples` holds a second, and :mod:`lwd.policy.lerobot_adapter` wraps
LeRobot's flow-matching VLAs. (RECAP's publishing step folds its indicator into the built-in action
expert's biases, so RECAP needs the built-in ``FlowPolicy``.)

A checkpoint's manifest names the class as ``"package.module:Class"`` (field ``policy_class``) and
stores ``config.to_json()`` (field ``config``); :func:`build_policy` rebuilds it with
``Class(Class.config_class.from_json(config))``. Manifests without ``policy_class`` (written before
the field existed) load as the built-in ``FlowPolicy``. Loading a checkpoint imports the named module:
only load checkpoints whose classes come from packages you installed on purpose.

Time convention (:mod:`lwd.policy.integrators`): flow time ``w`` in [0, 1], ``w = 0`` noise,
``w = 1`` action, ``velocity`` predicts ``x1 - x0``. Shape letters: b batch, h chunk, a action dim,
d state dim, e instruction-embedding width.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lwd.policy.backbone import Obs
from lwd.policy.integrators import euler_sample
from lwd.specs import RobotSpec
from lwd.utils.errors import ConfigError
from lwd.utils.imports import load_callable

DEFAULT_POLICY_CLASS = "lwd.policy.flow_policy:FlowPolicy"
"""What a manifest without ``policy_class`` holds."""


@runtime_checkable
class PolicyConfig(Protocol):
    """The JSON-able config of a flow policy; the fields below are what lwd itself reads."""

    state_dim: int
    """d, length of the robot's state vector (the critic and robots read it)."""
    action_dim: int
    """a, action dimension; robot actions are in [-1, 1]."""
    chunk_len: int
    """h, control steps per action chunk."""
    cameras: tuple[str, ...]
    """Camera names the policy reads from ``obs["images"]`` (empty: state only)."""
    image_size: int
    """Square image side in pixels (0 in state mode)."""
    flow_steps: int
    """Euler steps from noise to action when acting."""
    text_encoder: str
    """Instruction encoder name for :func:`lwd.policy.language.get_text_encoder`."""
    text_dim: int
    """e, width of ``obs["instruction_emb"]`` (must equal the text encoder's ``dim``)."""

    def robot_spec(self) -> RobotSpec:
        """The robot interface the policy consumes (checked against robots on load)."""
        ...

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``type(self).from_json(self.to_json()) == self``."""
        ...


@runtime_checkable
class FlowPolicyModel(Protocol):
    """A flow-matching policy: ``encode(obs) -> cond``, ``velocity(cond, x, w)``, ``sample(cond)``.

    Implementations are ``nn.Module`` subclasses (learners call ``parameters``, ``state_dict``,
    ``load_state_dict``, ``train``/``eval``, ``to`` and ``copy.deepcopy`` on them) with a class
    attribute ``config_class`` (the config type, with ``from_json``) and a constructor
    ``Class(config)``. Weights are the module's ``state_dict`` (floating tensors, saved as
    safetensors). Optional: ``velocity_fn(cond) -> f(x, w)`` (``velocity`` with ``cond`` bound, for
    QAM's many calls on one conditioning; ``lwd.algorithms.lwd.bound_velocity`` falls back to
    ``velocity``).
    """

    config_class: ClassVar[type]
    config: PolicyConfig

    def encode(self, obs: Obs) -> Tensor:
        """Observation dict (``Obs``, from ``lwd.policy.batching.obs_from_arrays``) -> ``cond``, a
        batch-first tensor [b, ...] (opaque to lwd: learners only read ``cond.shape[0]`` and
        ``cond.device`` and hand it back to ``velocity``/``sample``)."""
        ...

    def velocity(self, cond: Tensor, x: Tensor, w: Tensor | float) -> Tensor:
        """``f(s, x_w, w)``: cond [b, ...], x [b, h, a], w [b] or a float in lwd time -> [b, h, a]."""
        ...

    def sample(
        self,
        cond: Tensor,
        steps: int | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Integrate from ``noise`` x0 [b, h, a] (w = 0) to actions [b, h, a] (w = 1), no gradients."""
        ...

    def noise(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal x0 [b, h, a] (float32, CPU)."""
        ...

    def action_expert_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters QAM trains when the backbone is frozen (``LWDConfig.train_backbone=False``)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


class EulerSampling:
    """``sample`` and ``noise`` of a flow policy from its ``velocity`` and ``config`` (chunk_len,
    action_dim, flow_steps): x0 ~ N(0, I) [b, h, a], then Euler steps from w = 0 (noise) to 1 (action).
    A mixin for policy classes that need nothing more specific."""

    config: Any

    def velocity(self, cond: Tensor, x: Tensor, w: Tensor | float) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,
        steps: int | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        x0 = self.noise(cond.shape[0], generator).to(cond.device) if noise is None else noise
        return euler_sample(lambda x, w: self.velocity(cond, x, w), x0, steps or self.config.flow_steps)

    def noise(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(batch, self.config.chunk_len, self.config.action_dim, generator=generator)


def class_path(cls: type) -> str:
    """``"package.module:QualName"`` of ``cls`` (what a manifest's ``policy_class`` holds)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_policy_class(path: str | None) -> type:
    """The policy class named by ``path`` (``None``: the built-in FlowPolicy), checked to be an
    ``nn.Module`` with the :class:`FlowPolicyModel` methods and a ``config_class`` with ``from_json``;
    a one-line :class:`ConfigError` otherwise."""
    cls = load_callable(path or DEFAULT_POLICY_CLASS, "policy class")
    check_policy_class(cls, path or DEFAULT_POLICY_CLASS)
    return cls  # type: ignore[return-value]


def check_policy_class(cls: object, name: str) -> None:
    """Refuse ``cls`` unless it is an ``nn.Module`` subclass with the flow-policy methods."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"policy class {name!r} is not a torch.nn.Module subclass")
    missing = [m for m in ("encode", "velocity", "sample", "noise", "action_expert_parameters")
               if not callable(getattr(cls, m, None))]  # fmt: skip
    if missing:
        raise ConfigError(f"policy class {name!r} lacks the flow-policy methods {missing}")
    config_cls = getattr(cls, "config_class", None)
    if not callable(getattr(config_cls, "from_json", None)):
        raise ConfigError(f"policy class {name!r} has no config_class with a from_json(dict) method")


def resolve_policy(path: str | None, config: Mapping[str, Any]) -> tuple[type, PolicyConfig]:
    """``(Class, Class.config_class.from_json(config))`` for the manifest fields ``policy_class`` and
    ``config``, without building the network."""
    name = path or DEFAULT_POLICY_CLASS
    cls = resolve_policy_class(path)
    try:
        cfg = cls.config_class.from_json(dict(config))  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"bad config for policy class {name!r}: {e}") from e
    check_config(cfg, name)
    return cls, cfg


def build_policy(path: str | None, config: Mapping[str, Any]) -> nn.Module:
    """``Class(config)`` for the manifest fields ``policy_class`` and ``config`` (fresh weights)."""
    cls, cfg = resolve_policy(path, config)
    return cls(cfg)


def check_config(cfg: object, name: str) -> None:
    """Refuse a config lacking the :class:`PolicyConfig` fields lwd reads."""
    if not isinstance(cfg, PolicyConfig):
        want = [f for f in PolicyConfig.__annotations__ if not hasattr(cfg, f)]
        raise ConfigError(
            f"config of policy class {name!r} lacks the PolicyConfig fields {want or '(methods)'}"
        )
