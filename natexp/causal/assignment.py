"""Declared estimands and assignment mechanisms, and the assignments a mechanism allows.

Every analysis natexp reports says what it estimates (:class:`Estimand`: population, outcome,
contrast, and what it is conditional on) and, for every randomization or placebo test, the
mechanism its inference assumes (:class:`AssignmentSpec`): the **unit** that was assigned (a
column of the rollout schedule, e.g. ``area``), the **blocks** in which the decision was made (a
rollout column such as ``county`` or ``phase``, optionally with some block values merged into one
decision, e.g. the pilot and the rest of a county as one rollout wave) and so the **set of
assignments that were possible**: every choice of as many blocks as actually took the treated
role, among all blocks of the schedule. ``block=None`` makes every unit its own block ("any k of
N areas").

:func:`enumerate_assignments` turns a rollout table and a spec into an :class:`AssignmentSpace`:
one boolean row per possible assignment (row 0 the observed one), with its size and the smallest
p-value any randomization test over it can attain (``1 / size``). It is the one place natexp
enumerates assignments; the randomization tests of :mod:`natexp.causal.randomization` and the
staggered-panel randomization inference read it.

Examples
--------
>>> import polars as pl
>>> ro = pl.DataFrame({"area": ["a", "b", "c", "d"], "county": ["X", "X", "Y", "Z"]})
>>> s = enumerate_assignments(ro, AssignmentSpec("county", block="county"), ["a", "b"])
>>> s.size, s.min_pvalue, s.assigned_blocks()
(3, 0.3333333333333333, [['X'], ['Y'], ['Z']])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from natexp.causal._rng import as_generator
from natexp.causal.result import InvalidInputError

__all__ = ["AssignmentSpace", "AssignmentSpec", "Estimand", "enumerate_assignments"]


@dataclass(frozen=True)
class Estimand:
    """What an analysis estimates.

    Attributes
    ----------
    population : str
        Who is compared, in words (e.g. "the 35 of 85 identified families reached by the
        follow-up call").
    outcome : str
        The outcome column and its meaning.
    contrast : str
        The comparison (e.g. "risk difference, treatment minus control").
    conditional_on : str
        What the comparison conditions on ("" when nothing), e.g. "being reached by the
        follow-up call": a reached-only comparison is not an intention-to-treat effect.
    unit : str
        The unit each observation is ("family", "area", "child").

    Examples
    --------
    >>> Estimand("all families", "took_up", "risk difference").to_dict()["unit"]
    'family'
    """

    population: str
    outcome: str
    contrast: str
    conditional_on: str = ""
    unit: str = "family"

    def to_dict(self) -> dict[str, str]:
        """JSON-serialisable dict."""
        return {"population": self.population, "outcome": self.outcome,
                "contrast": self.contrast, "conditional_on": self.conditional_on,
                "unit": self.unit}

    def text(self) -> str:
        """One line: contrast of outcome among population (conditional on ...)."""
        cond = f", conditional on {self.conditional_on}" if self.conditional_on else ""
        return f"{self.contrast} in {self.outcome} among {self.population}{cond}"


@dataclass(frozen=True)
class AssignmentSpec:
    """A declared assignment mechanism (see the module docstring).

    Parameters
    ----------
    name : str
        Short name, e.g. ``"county"``.
    unit : str, default "area"
        Rollout column naming the assigned units.
    block : str or None
        Rollout column whose values are the blocks decided together; None: each unit is a block.
    merge : sequence of sequence of str
        Groups of block values (as text) that were one decision (e.g. ``[["1", "2"]]``: phases
        1 and 2 are one wave). Values in no group are blocks of their own.
    description : str
        The mechanism in words, for the report.

    Examples
    --------
    >>> AssignmentSpec("wave", block="phase", merge=[["1", "2"]]).merge
    (('1', '2'),)
    """

    name: str
    unit: str = "area"
    block: str | None = None
    merge: tuple[tuple[str, ...], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge", tuple(tuple(str(v) for v in g) for g in self.merge))
        seen: set[str] = set()
        for g in self.merge:
            if seen & set(g):
                raise InvalidInputError(f"assignment {self.name!r}: a block value is in two "
                                        "merge groups")
            seen |= set(g)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {"name": self.name, "unit": self.unit, "block": self.block,
                "merge": [list(g) for g in self.merge], "description": self.description}


@dataclass(frozen=True, eq=False)
class AssignmentSpace:
    """The assignments a mechanism allows, for one rollout table.

    Attributes
    ----------
    spec : AssignmentSpec
    units : tuple of str
        Units in rollout order.
    blocks : tuple of str
        Block labels (merged values joined with "+"), in order of first appearance.
    unit_block : tuple of int
        Index into ``blocks`` of each unit.
    assignments : numpy.ndarray
        Boolean, shape ``(n_evaluated, len(units))``: True where the unit takes the treated
        role. Row 0 is the observed assignment.
    total : int
        Number of possible assignments (``C(len(blocks), treated blocks)``).
    exact : bool
        Every possible assignment is a row (False: row 0 plus random draws).
    """

    spec: AssignmentSpec
    units: tuple[str, ...]
    blocks: tuple[str, ...]
    unit_block: tuple[int, ...]
    assignments: np.ndarray
    total: int
    exact: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        """Number of possible assignments."""
        return self.total

    @property
    def min_pvalue(self) -> float:
        """Smallest p-value a randomization test over this space can attain (``1 / size``;
        with random draws ``1 / (draws + 1)``)."""
        return 1.0 / (self.total if self.exact else self.assignments.shape[0])

    def assigned_blocks(self) -> list[list[str]]:
        """The treated blocks of each evaluated assignment."""
        out = []
        for row in self.assignments:
            chosen = sorted({self.unit_block[i] for i in np.flatnonzero(row)})
            out.append([self.blocks[b] for b in chosen])
        return out

    def can_reach(self, confidence_level: float = 0.95) -> bool:
        """Whether any outcome could give p < 1 - confidence_level."""
        return self.min_pvalue < 1 - confidence_level

    def to_dict(self, confidence_level: float = 0.95) -> dict[str, Any]:
        """JSON-serialisable description: spec, blocks, observed blocks, size, min p."""
        return {**self.spec.to_dict(), "blocks": list(self.blocks),
                "observed_blocks": self.assigned_blocks()[0], "size": self.total,
                "n_evaluated": int(self.assignments.shape[0]), "exact": self.exact,
                "min_pvalue": self.min_pvalue,
                "can_reach_significance": self.can_reach(confidence_level),
                "notes": list(self.notes)}


def _block_labels(values: Sequence[Any], merge: Sequence[Sequence[str]]) -> list[str]:
    where = {v: "+".join(g) for g in merge for v in g}
    return [where.get(str(v), str(v)) for v in values]


def enumerate_assignments(rollout: pl.DataFrame | Mapping[str, Sequence[Any]],
                          spec: AssignmentSpec, treated_units: Sequence[str], *,
                          max_assignments: int = 100_000, n_draws: int = 9_999,
                          rng: Any = None) -> AssignmentSpace:
    """Every assignment of the treated role to whole blocks that the mechanism allows.

    Parameters
    ----------
    rollout : polars.DataFrame or mapping of columns
        The rollout table (one row per unit), with the columns ``spec.unit`` and ``spec.block``.
    spec : AssignmentSpec
    treated_units : sequence of str
        The units that took the treated role. They must make up whole blocks: a block split
        between roles contradicts the declared mechanism (InvalidInputError).
    max_assignments : int
        Enumerate when there are at most this many assignments; otherwise draw ``n_draws``
        random ones with ``rng`` (row 0 stays the observed one).
    n_draws : int
    rng : numpy.random.Generator, int or None

    Returns
    -------
    AssignmentSpace

    Raises
    ------
    InvalidInputError
        When a column is missing, a treated unit is not in the table, no unit or every unit is
        treated, or a block is split between the roles.

    Examples
    --------
    Any 2 of 4 areas (no blocks): C(4, 2) = 6 assignments.

    >>> ro = {"area": ["a", "b", "c", "d"]}
    >>> enumerate_assignments(ro, AssignmentSpec("any"), ["a", "b"]).size
    6
    """
    frame = rollout if isinstance(rollout, pl.DataFrame) else pl.DataFrame(dict(rollout))
    for col in (spec.unit, spec.block):
        if col is not None and col not in frame.columns:
            raise InvalidInputError(f"assignment {spec.name!r}: the rollout has no column "
                                    f"{col!r} (columns: {', '.join(frame.columns)})")
    units = [str(u) for u in frame[spec.unit].to_list()]
    if len(set(units)) != len(units):
        raise InvalidInputError(f"assignment {spec.name!r}: unit column {spec.unit!r} has "
                                "duplicates")
    treated = {str(u) for u in treated_units}
    unknown = treated - set(units)
    if unknown:
        raise InvalidInputError(f"assignment {spec.name!r}: {len(unknown)} treated unit(s) "
                                "not in the rollout")
    raw = units if spec.block is None else frame[spec.block].to_list()
    labels = _block_labels(raw, spec.merge)
    blocks = list(dict.fromkeys(labels))
    unit_block = [blocks.index(b) for b in labels]
    role = np.array([u in treated for u in units], dtype=bool)
    for b in range(len(blocks)):
        members = role[[i for i, ub in enumerate(unit_block) if ub == b]]
        if members.any() and not members.all():
            raise InvalidInputError(
                f"assignment {spec.name!r}: block {blocks[b]!r} is split between the treated "
                "role and the comparison; the declared blocks do not match the design")
    chosen = sorted({unit_block[i] for i in np.flatnonzero(role)})
    k, n_blocks = len(chosen), len(blocks)
    if k == 0 or k == n_blocks:
        raise InvalidInputError(f"assignment {spec.name!r}: needs at least one block in the "
                                "treated role and one outside it")
    total = math.comb(n_blocks, k)
    obs = tuple(chosen)
    notes: list[str] = []
    if total <= max_assignments:
        combos = [obs] + [c for c in itertools.combinations(range(n_blocks), k) if c != obs]
        exact = True
    else:
        gen = as_generator(rng)
        combos = [obs] + [tuple(sorted(int(i) for i in gen.choice(n_blocks, k, replace=False)))
                          for _ in range(int(n_draws))]
        exact = False
        notes.append(f"{n_draws} random assignments of {total} (Monte Carlo)")
    ub = np.array(unit_block)
    rows = np.zeros((len(combos), len(units)), dtype=bool)
    for r, c in enumerate(combos):
        rows[r] = np.isin(ub, c)
    return AssignmentSpace(spec=spec, units=tuple(units), blocks=tuple(blocks),
                           unit_block=tuple(unit_block), assignments=rows, total=total,
                           exact=exact, notes=tuple(notes))
