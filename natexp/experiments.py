"""Published numbers of a study and the replication table that checks a run against them.

Each study folder ``experiments/<name>/`` holds ``published.yaml``: every number the study
published that natexp can recompute, with where it was published and how natexp recomputes it
from a run's ``results`` dict (see the header of ``experiments/oxon_vs_rest/published.yaml``).
:func:`replication_table` evaluates every item against a results dict and says, live, whether
the published number reproduces at the precision it was published with.

Where the report is wrong, natexp says so and never bends a computation: the recomputation is
always the natural one, the item's ``expected`` field records what natexp finds on data that
match the report, its ``note`` explains a known discrepancy, and an optional ``likely``
calculation (the one the report most likely made) is evaluated live as evidence.

Recompute grammar (:func:`evaluate`), nested freely:

``"a.b.c"`` or ``{"path": "a.b.c"}``
    A key path into the results (:func:`resolve`).
``{"sum": [e1, e2, ...]}``
    The sum.
``{"ratio": [num, den]}``
    ``num / den``.
``{"percent": [num, den]}``
    ``100 * num / den``.
``{"percent_change": [[x1, n1], [x2, n2]]}``
    ``100 * ((x1 / n1) / (x2 / n2) - 1)``.
a number
    Itself.

Statuses: ``reproduces``, ``differs``, and ``not_recomputed`` when the results lack a path
(or the value is undefined); the explanation says which.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl

from natexp.causal.result import NatexpError
from natexp.paths import EXPERIMENTS_DIR, experiment_file

__all__ = [
    "PublishedSpecError",
    "evaluate",
    "load_published",
    "replication_table",
    "reproduces",
    "resolve",
]

STATUSES = ("reproduces", "differs", "not_recomputed")
UNITS = ("count", "percent", "chi2", "pvalue", "fraction")
_REQUIRED = ("id", "value", "unit", "what", "where", "recompute", "expected")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class PublishedSpecError(NatexpError, ValueError):
    """A ``published.yaml`` item is malformed (missing field, bad id, unknown operation)."""


class MissingResult(KeyError):
    """A key path is not in the results dict."""


# --------------------------------------------------------------------------- loading


def _check_recompute(expr: Any, where: str) -> None:
    if isinstance(expr, str | numbers.Real) and not isinstance(expr, bool):
        return
    if isinstance(expr, Mapping) and len(expr) == 1:
        (op, args), = expr.items()
        if op == "path" and isinstance(args, str):
            return
        if op == "sum" and isinstance(args, list) and args:
            for a in args:
                _check_recompute(a, where)
            return
        if op in ("ratio", "percent") and isinstance(args, list) and len(args) == 2:
            for a in args:
                _check_recompute(a, where)
            return
        if (op == "percent_change" and isinstance(args, list) and len(args) == 2
                and all(isinstance(a, list) and len(a) == 2 for a in args)):
            for pair in args:
                for a in pair:
                    _check_recompute(a, where)
            return
    raise PublishedSpecError(f"{where}: cannot read the recompute expression {expr!r}")


def _check_item(item: Any, k: int) -> dict:
    if not isinstance(item, Mapping):
        raise PublishedSpecError(f"item {k} is not a mapping")
    missing = [f for f in _REQUIRED if f not in item]
    if missing:
        raise PublishedSpecError(f"item {k} ({item.get('id', '?')}) lacks {missing}")
    iid = item["id"]
    if not isinstance(iid, str) or not _ID.match(iid):
        raise PublishedSpecError(f"item {k}: id {iid!r} is not snake_case")
    if item["unit"] not in UNITS:
        raise PublishedSpecError(f"{iid}: unit must be one of {UNITS}")
    if item["expected"] not in ("reproduces", "differs"):
        raise PublishedSpecError(f"{iid}: expected must be 'reproduces' or 'differs'")
    if isinstance(item["value"], bool) or not isinstance(item["value"], numbers.Real):
        raise PublishedSpecError(f"{iid}: value must be a number")
    if "misreading" in item and not isinstance(item["misreading"], str):
        raise PublishedSpecError(f"{iid}: misreading must be text")
    if item.get("comparison") not in (None, "less_than"):
        raise PublishedSpecError(f"{iid}: comparison must be 'less_than' when given")
    _check_recompute(item["recompute"], iid)
    if "likely" in item:
        likely = item["likely"]
        if not isinstance(likely, Mapping) or "recompute" not in likely:
            raise PublishedSpecError(f"{iid}: likely needs a recompute expression")
        _check_recompute(likely["recompute"], f"{iid} (likely)")
    return dict(item)


def load_published(name: str | None = None, *,
                   path: str | Path | None = None) -> list[dict]:
    """Load and check the published numbers of a study.

    Parameters
    ----------
    name : str, optional
        Study folder under ``experiments/`` (one of ``name`` and ``path`` is needed).
    path : str or Path, optional
        A ``published.yaml`` elsewhere (overrides ``name``).

    Returns
    -------
    list of dict
        The items, in file order.

    Raises
    ------
    PublishedSpecError
        On a malformed item or a duplicate id.
    FileNotFoundError
        When the study has no ``published.yaml``.

    Examples
    --------
    The example study's published numbers:

    >>> items = load_published("oxon_vs_rest")
    >>> next(i for i in items if i["id"] == "flow_identified_total")["value"]
    85
    """
    import yaml

    if name is None and path is None:
        raise TypeError("load_published needs a study folder name or a path")
    file = Path(path) if path is not None else (
        experiment_file(name, "published.yaml") or EXPERIMENTS_DIR / name / "published.yaml")
    # libyaml's parser when PyYAML has it: the same objects as safe_load (the same safe
    # constructor; tested on every published.yaml), 40 ms -> 5 ms for the example study's
    # 38 kB file, which every run reads
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(file, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    items = doc.get("items") if isinstance(doc, Mapping) else doc
    if not isinstance(items, list):
        raise PublishedSpecError(f"{file}: expected a list of items under 'items'")
    out = [_check_item(item, k) for k, item in enumerate(items)]
    seen: set[str] = set()
    for item in out:
        if item["id"] in seen:
            raise PublishedSpecError(f"{file}: duplicate id {item['id']!r}")
        seen.add(item["id"])
    return out


def published_items(experiment: str) -> list[dict] | None:
    """The published numbers of ``experiment``, or None when it has no ``published.yaml`` or
    that file lists no item (a new study's empty file: nothing published yet, so a run is the
    same wherever its folder is found).

    Examples
    --------
    >>> published_items("staggered_rollout") is None
    True
    >>> len(published_items("oxon_vs_rest")) > 50
    True
    """
    if experiment_file(experiment, "published.yaml") is None:
        return None
    return load_published(experiment) or None


# --------------------------------------------------------------------------- evaluation


def _flow(rows: Sequence[Mapping], parts: list[str], path: str) -> Any:
    if len(parts) != 2:
        raise MissingResult(f"{path}: a flow path is flow.<step>.<arm>")
    step, arm = parts
    hits = [r for r in rows if r.get("step") == step]
    if not hits:
        raise MissingResult(f"{path}: no flow step {step!r}")
    if arm == "total":
        return sum(r["n"] for r in hits)
    for r in hits:
        if r.get("arm") == arm:
            return r["n"]
    raise MissingResult(f"{path}: flow step {step!r} has no arm {arm!r}")


def resolve(results: Mapping, path: str) -> Any:
    """Follow a dot-separated key path into ``results``.

    Mappings are indexed by key and lists by position, except the flow table: a list of
    ``{step, arm, n}`` rows is indexed as ``<step>.<arm>``, where arm ``total`` sums the rows of
    the step.

    Parameters
    ----------
    results : Mapping
        A run's results dict.
    path : str
        E.g. ``"appendix_b.sgo.female.yes"`` or ``"flow.reached.total"``.

    Returns
    -------
    Any

    Raises
    ------
    KeyError
        When the path is not in ``results``.

    Examples
    --------
    >>> res = {"flow": [{"step": "reached", "arm": "treatment", "n": 20},
    ...                 {"step": "reached", "arm": "control", "n": 15}], "a": {"b": [7, 8]}}
    >>> resolve(res, "flow.reached.total"), resolve(res, "a.b.1")
    (35, 8)
    """
    node: Any = results
    parts = path.split(".")
    for k, key in enumerate(parts):
        if (isinstance(node, list) and node and isinstance(node[0], Mapping)
                and "step" in node[0] and "n" in node[0]):
            return _flow(node, parts[k:], path)
        if isinstance(node, Mapping):
            if key not in node:
                raise MissingResult(f"{path}: no key {key!r}")
            node = node[key]
        elif isinstance(node, list | tuple) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise MissingResult(f"{path}: cannot index {type(node).__name__} with {key!r}")
    return node


def _num(value: Any, what: str) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MissingResult(f"{what} is not a number ({value!r})")
    return float(value)


def evaluate(results: Mapping, expr: Any) -> float:
    """Evaluate a recompute expression (module docstring) against ``results``.

    Parameters
    ----------
    results : Mapping
    expr : str, number or mapping

    Returns
    -------
    float
        NaN when a ratio's denominator is 0.

    Raises
    ------
    KeyError
        When a path is missing from ``results`` or not a number.
    PublishedSpecError
        On an expression it cannot read.

    Examples
    --------
    >>> res = {"x": 5, "n": 32, "y": 20, "m": 607}
    >>> round(evaluate(res, {"percent_change": [["x", "n"], ["y", "m"]]}), 1)
    374.2
    """
    if isinstance(expr, str):
        return _num(resolve(results, expr), expr)
    if isinstance(expr, numbers.Real) and not isinstance(expr, bool):
        return float(expr)
    _check_recompute(expr, "expression")
    (op, args), = expr.items()
    if op == "path":
        return _num(resolve(results, args), args)
    if op == "sum":
        return math.fsum(evaluate(results, a) for a in args)
    if op in ("ratio", "percent"):
        num, den = (evaluate(results, a) for a in args)
        value = num / den if den else math.nan
        return 100.0 * value if op == "percent" else value
    (x1, n1), (x2, n2) = ([evaluate(results, a) for a in pair] for pair in args)
    if not (n1 and n2 and x2):
        return math.nan
    return 100.0 * ((x1 / n1) / (x2 / n2) - 1.0)


def _round_half_up(value: float, decimals: int) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals),
                                                rounding=ROUND_HALF_UP)


def reproduces(item: Mapping, recomputed: float) -> bool:
    """True when ``recomputed`` matches the published value at the published precision.

    ``comparison: less_than``: ``recomputed < value``; ``tolerance``: within it; otherwise
    ``recomputed`` rounded half-up to ``decimals`` (default 0) equals ``value``.

    Examples
    --------
    >>> reproduces({"value": 49, "unit": "percent"}, 48.57)
    True
    >>> reproduces({"value": 5.01, "decimals": 2}, 100 * 32 / 607)
    False
    """
    value = float(item["value"])
    if math.isnan(recomputed):
        return False
    if item.get("comparison") == "less_than":
        return recomputed < value
    if item.get("tolerance") is not None:
        return abs(recomputed - value) <= float(item["tolerance"]) + 1e-12
    decimals = int(item.get("decimals", 0))
    return _round_half_up(recomputed, decimals) == _round_half_up(value, decimals)


def _likely_text(item: Mapping, results: Mapping) -> str:
    likely = item.get("likely")
    if not likely:
        return ""
    desc = likely.get("description", "the likely calculation")
    try:
        value = evaluate(results, likely["recompute"])
    except KeyError:
        return f" Check: {desc} cannot be recomputed from these results."
    verdict = "matches" if reproduces(item, value) else "does not match"
    return f" Check: {desc} = {value:.6g}, which {verdict} the published value."


def _explain(item: Mapping, status: str, results: Mapping) -> str:
    note = str(item.get("note") or "").strip()
    expected = item["expected"]
    if status == expected:
        text = note
        if status == "differs" and not text:
            text = "Differs at the published precision; no explanation is recorded."
    elif status == "differs":
        text = ("Differs although the report's value reproduces on data matching the report: "
                "these inputs are not the study's data, or a computation changed.")
        if note:
            text += f" (Note on the report: {note})"
    else:
        text = "Reproduces although the report's value was expected to differ."
        if note:
            text += f" {note}"
    if status == "differs" or expected == "differs":
        text += _likely_text(item, results)
    misreading = str(item.get("misreading") or "").strip()
    if misreading:  # the number may reproduce while the report's reading of it is wrong
        text = f"MISREADING: {misreading} {text}"
    return text.strip()


_TABLE_SCHEMA = {
    "id": pl.String,
    "where": pl.String,
    "published": pl.Float64,
    "recomputed": pl.Float64,
    "status": pl.String,
    "difference": pl.Float64,
    "explanation": pl.String,
}


def replication_table(published: Sequence[Mapping] | Mapping, results: Mapping) -> pl.DataFrame:
    """Check every published number against a run's results.

    Parameters
    ----------
    published : list of dict or dict
        Items from :func:`load_published` (or a loaded ``published.yaml`` with ``items``).
    results : Mapping
        A run's results dict (``RunResult.results``): the items' key paths point into it
        (e.g. ``flow``, the study's descriptive table and ``secondary``,
        :func:`natexp.data.tables.secondary_outcomes`).

    Returns
    -------
    polars.DataFrame
        One row per item: ``id``, ``where``, ``published``, ``recomputed`` (full precision),
        ``status`` (``reproduces`` / ``differs`` / ``not_recomputed``), ``difference``
        (recomputed minus published) and ``explanation``.

    Examples
    --------
    >>> items = [{"id": "share", "value": 5.01, "unit": "percent", "decimals": 2,
    ...           "what": "x", "where": "text", "expected": "reproduces",
    ...           "recompute": {"percent": ["f", {"sum": ["f", "m"]}]}}]
    >>> t = replication_table(items, {"f": 32, "m": 607})
    >>> t["status"].item(), round(t["recomputed"].item(), 3)
    ('reproduces', 5.008)
    """
    items = published.get("items", []) if isinstance(published, Mapping) else published
    rows = []
    for k, raw in enumerate(items):
        item = _check_item(raw, k)
        value = float(item["value"])
        try:
            recomputed = evaluate(results, item["recompute"])
        except KeyError as err:
            rows.append({"id": item["id"], "where": item["where"], "published": value,
                         "recomputed": None, "status": "not_recomputed", "difference": None,
                         "explanation": f"Not in the results: {err.args[0]}"})
            continue
        if math.isnan(recomputed):
            rows.append({"id": item["id"], "where": item["where"], "published": value,
                         "recomputed": None, "status": "not_recomputed", "difference": None,
                         "explanation": "The recomputed value is undefined (a zero "
                                        "denominator in these results)."})
            continue
        status = "reproduces" if reproduces(item, recomputed) else "differs"
        rows.append({
            "id": item["id"], "where": item["where"], "published": value,
            "recomputed": recomputed, "status": status, "difference": recomputed - value,
            "explanation": _explain(item, status, results),
        })
    return pl.DataFrame(rows, schema=_TABLE_SCHEMA, orient="row")
