"""The ``rng`` argument shared by every randomised method (bootstrap, permutations, refuters)."""

from __future__ import annotations

from typing import Any

import numpy as np

from natexp.causal.result import InvalidInputError


def as_generator(rng: Any) -> np.random.Generator:
    """Return a numpy Generator from ``rng`` (a Generator, an int seed, or None).

    Examples
    --------
    >>> bool(as_generator(7).integers(10) == as_generator(7).integers(10))
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise InvalidInputError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")
