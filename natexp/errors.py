"""natexp's error hierarchy: every error natexp raises on purpose is a :class:`NatexpError`.

Catch ``NatexpError`` to handle any input, configuration, design or output problem that natexp
reports (the CLI exits 2 on one); anything else is a bug in natexp (exit 1).

* :class:`natexp.config.ConfigError`: an invalid configuration or study description;
* :class:`natexp.data.rollout.RolloutError`: an invalid rollout schedule;
* :class:`natexp.data.cohort.DesignError`: an invalid cohort design;
* :class:`natexp.data.validate.InputValidationError`: an input file breaks the contract;
* :class:`natexp.causal.result.InvalidInputError`: invalid arguments to a statistical function;
* :class:`natexp.safety.OutputDirError`, :class:`natexp.bundle.build.BundleError`,
  :class:`natexp.bundle.verify.VerifyError`, :class:`natexp.experiments.PublishedSpecError`.
"""

from __future__ import annotations

__all__ = ["NatexpError"]


class NatexpError(Exception):
    """Base class of every error natexp raises on purpose (bad input, config or design).

    Examples
    --------
    >>> from natexp.data.cohort import Design
    >>> try:
    ...     Design(name="d", kind="lottery")
    ... except NatexpError as exc:
    ...     print(type(exc).__name__)
    DesignError
    """
