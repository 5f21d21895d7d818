"""Loading user code named in a config: ``"package.module:attr"`` -> the callable (robot factories,
interveners, gymnasium env factories, success/state functions)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lwd.utils.errors import ConfigError


def load_callable(path: str, what: str = "factory") -> Callable[..., Any]:
    """The callable at ``path`` = ``"package.module:attr"`` (``attr`` may be dotted); a one-line
    :class:`ConfigError` naming ``what`` if the path is malformed, does not import or is not callable."""
    module, sep, attr = str(path).partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what} {path!r}: expected 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{what} {path!r} cannot be loaded: {e}") from e
    if not callable(obj):
        raise ConfigError(f"{what} {path!r} is not callable")
    return obj
