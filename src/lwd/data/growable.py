"""A numpy array that grows along axis 0 with amortised O(1) appends (capacity doubling)."""

from __future__ import annotations

import numpy as np


class GrowableArray:
    """Rows of fixed trailing shape and dtype; :attr:`view` is the filled part [n, ...] (no copy)."""

    def __init__(self, row_shape: tuple[int, ...], dtype: np.dtype | type, capacity: int = 256) -> None:
        self._data = np.zeros((max(capacity, 1), *row_shape), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def row_shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape[1:])

    @property
    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def extend(self, rows: np.ndarray) -> None:
        """Append ``rows`` [m, *row_shape] (cast to this array's dtype)."""
        rows = np.asarray(rows)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"row shape {rows.shape[1:]} != {self.row_shape}")
        need = self._n + rows.shape[0]
        if need > self._data.shape[0]:
            cap = max(need, 2 * self._data.shape[0])
            grown = np.zeros((cap, *self.row_shape), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = rows
        self._n = need

    @staticmethod
    def from_array(arr: np.ndarray) -> GrowableArray:
        """Wrap a copy of ``arr`` [n, ...]."""
        out = GrowableArray(arr.shape[1:], arr.dtype, capacity=max(arr.shape[0], 1))
        out.extend(arr)
        return out
