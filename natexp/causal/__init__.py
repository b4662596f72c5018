"""Estimation: 2x2 effect measures, exact tests, power, sensitivity, panel estimators.

Pure functions returning immutable :class:`~natexp.causal.result.Result` objects. No I/O, no Hydra.
"""

from natexp.causal.result import InvalidInputError, NatexpError, Result

__all__ = ["InvalidInputError", "NatexpError", "Result"]
