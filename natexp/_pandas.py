"""pandas' pre-3.0 object strings for a block of pandas-heavy library code (DoWhy, plotnine).

pandas 3 stores strings (column labels, text columns) in Arrow-backed arrays, so every column
selection and every small frame built inside DoWhy's refits or plotnine's drawing goes through
pyarrow. Neither library's numbers depend on the strings' storage (tested: DoWhy's results and
every figure's PNG bytes are the same either way), and with object strings they run faster.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["object_strings"]


@contextlib.contextmanager
def object_strings(active: bool = True) -> Iterator[bool]:
    """pandas' object strings for the block, when pandas still allows them.

    Parameters
    ----------
    active : bool, default True
        False: leave pandas as it is (for comparisons).

    Yields
    ------
    bool
        Whether object strings are in effect (pandas 4 removes the option).

    Examples
    --------
    >>> import pandas as pd
    >>> with object_strings() as on:
    ...     dtype = pd.Series(["a"]).dtype
    >>> (dtype == object) == on
    True
    """
    import pandas as pd

    if not active:
        yield False
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecates the option (gone in pandas 4)
        try:
            ctx = pd.option_context("future.infer_string", False)
            ctx.__enter__()
        except (KeyError, ValueError, pd.errors.OptionError):
            yield False
            return
    try:
        yield True
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx.__exit__(None, None, None)
