"""Estimation: 2x2 effect measures, exact tests, power, sensitivity, panel estimators.

Pure functions returning immutable :class:`~natexp.causal.result.Result` objects. No I/O, no Hydra.
Submodules load their heavier dependencies when first used.
"""

from natexp.causal.result import InvalidInputError, NatexpError, Result

__all__ = ["InvalidInputError", "NatexpError", "Result", "compare_groups", "TwoByTwo"]


def __getattr__(name: str):
    if name in ("compare_groups", "TwoByTwo"):
        from natexp.causal import twobytwo

        return getattr(twobytwo, name)
    raise AttributeError(f"module 'natexp.causal' has no attribute {name!r}")
