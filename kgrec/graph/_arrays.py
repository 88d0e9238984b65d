"""Small vectorised helpers shared by the graph modules."""

from __future__ import annotations

import numpy as np


def sorted_unique(keys: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Distinct values of an integer array, sorted.

    Sorts (a copy, or ``keys`` itself when ``in_place``) and keeps each first occurrence:
    several times faster than ``np.unique`` on int64 keys with numpy >= 2.3, whose hash-based
    path is slow on millions of keys.
    """
    if in_place:
        keys.sort()
    else:
        keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
