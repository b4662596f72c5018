"""Count tables of the secondary outcomes (Figures 6 and 8-11) and of Appendix B, in polars.

Every table is computed on the cohort's families reached by the follow-up call
(``followup_reached`` True), as in the report, and comes in two forms: a tidy
:class:`polars.DataFrame` (for CSV and figures) and a JSON-friendly dict (for
``results.json``; the key paths of ``experiments/*/published.yaml`` point into it).
:func:`secondary_outcomes` returns all the dicts and all the frames.

Percentages are unrounded, in percent (0-100), and None when the denominator is 0. A null
answer is counted as ``missing``, never as "no".

Figures of Bekaert, Olphin, Massie & Norris (2025), *What Works Series: Operation Paramount*:

* Figure 6: contact with the imprisoned parent (``has_contact`` x ``contact_view``), whether the
  carer wants contact, court order on release;
* Figures 7-8: earlier uptake of Children Heard and Seen support, by arm and route;
* Figure 9: response to the support offer made on the follow-up call;
* Figure 10: reasons given by the carers who asked for a referral;
* Figure 11: interview consent and completion.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = [
    "APPENDIX_B_QUESTIONS",
    "CONTACT_CELLS",
    "REASONS",
    "RESPONSES",
    "ROUTES",
    "appendix_b_counts",
    "contact",
    "interview",
    "reached",
    "reasons",
    "referral_response",
    "secondary_outcomes",
    "uptake",
]

ARMS = ("treatment", "control")
GROUPS = (*ARMS, "total")

#: Responses to the support offer (Figure 9), with the report's row labels.
RESPONSES: dict[str, str] = {
    "accepted": "Yes",
    "re_referral": "Yes, as re-referral having accepted CHaS support before",
    "declined": "No",
    "already_supported": "Already accepted CHaS Support",
    "not_applicable": "Not Applicable (child now over 18, but had support previously)",
}

#: Reasons for asking for a referral (Figure 10): column -> the report's label.
REASONS: dict[str, str] = {
    "reason_child": "Support for Child",
    "reason_self": "Support for Self",
    "reason_legal": "Legal",
}

#: Figure 6 cells: name -> (has_contact, contact_view).
CONTACT_CELLS: dict[str, tuple[bool, str]] = {
    "contact_positive": (True, "positive"),
    "contact_negative": (True, "negative"),
    "no_contact_positive": (False, "positive"),
    "no_contact_negative": (False, "negative"),
}

#: Routes into Children Heard and Seen support (Figure 8 text: "through the child's school").
ROUTES = ("paramount", "school", "other")

#: Appendix B questions: key (as in ``results["appendix_b"]``) -> (label, column, yes-values).
APPENDIX_B_QUESTIONS: dict[str, tuple[str, str, tuple[Any, ...]]] = {
    "carer_parent": ("Is the remaining carer the mother or father?", "carer",
                     ("mother", "father")),
    "cwcf": ("Does the child become a looked after child (LAC / CWCF)?", "cwcf", (True,)),
    "sgo": ("Does the child become subject to a special guardianship order (SGO)?", "sgo",
            (True,)),
}


def _pct(x: int, n: int) -> float | None:
    return 100.0 * x / n if n else None


def reached(cohort: Any) -> pl.DataFrame:
    """The cohort's families reached by the follow-up call, collected.

    Parameters
    ----------
    cohort : natexp.data.cohort.Cohort or polars frame
        A cohort (its ``members`` are used), or a frame of families with an ``arm`` column.

    Returns
    -------
    polars.DataFrame
        Families in either arm with ``followup_reached`` True.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control", None],
    ...                    "followup_reached": [True, False, True]})
    >>> reached(df).height
    1
    """
    lf = cohort.members if hasattr(cohort, "members") else cohort
    if isinstance(lf, pl.DataFrame):
        lf = lf.lazy()
    return (
        lf.filter(pl.col("arm").is_in(ARMS) & (pl.col("followup_reached") == True))  # noqa: E712
        .collect()
    )


def _by_group(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    out = {arm: df.filter(pl.col("arm") == arm) for arm in ARMS}
    out["total"] = df
    return out


def _yes_no(series: pl.Series) -> dict[str, int]:
    return {
        "yes": int((series == True).sum()),  # noqa: E712
        "no": int((series == False).sum()),  # noqa: E712
        "missing": int(series.is_null().sum()),
    }


# --------------------------------------------------------------------------- Figure 9


def referral_response(cohort: Any) -> tuple[dict, pl.DataFrame]:
    """Response to the support offer on the follow-up call, by arm (Figure 9).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"treatment"|"control"|"total": {response: count, ..., "missing", "n"},
        "percent": {response: percent of all reached families}}``; frame: one row per
        response (and ``missing``) with ``label``, ``treatment``, ``control``, ``total`` and
        ``percent``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "referral_response": ["accepted", "declined", "accepted"]})
    >>> d, _ = referral_response(df)
    >>> d["total"]["accepted"], d["treatment"]["n"]
    (2, 2)
    """
    df = reached(cohort)
    out: dict[str, Any] = {}
    for group, part in _by_group(df).items():
        col = part["referral_response"]
        counts = {r: int((col == r).sum()) for r in RESPONSES}
        counts["missing"] = int(col.is_null().sum())
        counts["n"] = part.height
        out[group] = counts
    n = out["total"]["n"]
    out["percent"] = {r: _pct(out["total"][r], n) for r in (*RESPONSES, "missing")}
    rows = [
        {"response": r, "label": RESPONSES.get(r, "Not recorded"),
         **{g: out[g][r] for g in GROUPS}, "percent": out["percent"][r]}
        for r in (*RESPONSES, "missing")
    ]
    frame = pl.DataFrame(rows, schema={"response": pl.String, "label": pl.String,
                                       "treatment": pl.Int64, "control": pl.Int64,
                                       "total": pl.Int64, "percent": pl.Float64})
    return out, frame


# --------------------------------------------------------------------------- Figure 10


def reasons(cohort: Any) -> tuple[dict, pl.DataFrame]:
    """Reasons given for asking for a referral (Figure 10).

    The denominator is the reached families that gave reasons: those with at least one
    reason column not null (in the report, the 19 carers who asked for a referral).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"n": families giving reasons, "child"|"self"|"legal": {"yes", "no",
        "missing", "percent_yes"}}``; frame: one row per reason with ``label``, ``yes``,
        ``no``, ``missing``, ``n``, ``percent_yes``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "reason_child": [True, False, None], "reason_self": [False, True, None],
    ...                    "reason_legal": [False, False, None]})
    >>> d, _ = reasons(df)
    >>> d["n"], d["child"]["yes"], d["child"]["percent_yes"]
    (2, 1, 50.0)
    """
    df = reached(cohort)
    asked = df.filter(pl.any_horizontal([pl.col(c).is_not_null() for c in REASONS]))
    n = asked.height
    out: dict[str, Any] = {"n": n}
    rows = []
    for col, label in REASONS.items():
        key = col.removeprefix("reason_")
        counts = _yes_no(asked[col])
        counts["percent_yes"] = _pct(counts["yes"], n)
        out[key] = counts
        rows.append({"reason": key, "label": label, "yes": counts["yes"], "no": counts["no"],
                     "missing": counts["missing"], "n": n, "percent_yes": counts["percent_yes"]})
    frame = pl.DataFrame(rows, schema={"reason": pl.String, "label": pl.String,
                                       "yes": pl.Int64, "no": pl.Int64, "missing": pl.Int64,
                                       "n": pl.Int64, "percent_yes": pl.Float64})
    return out, frame


# --------------------------------------------------------------------------- Figure 11


def interview(cohort: Any) -> tuple[dict, pl.DataFrame]:
    """Interview consent and completion by arm (Figure 11).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: ``{"treatment"|"control"|"total": {"reached", "agreed", "not_agreed",
        "consent_missing", "completed"}}``; frame: one row per measure with ``treatment``,
        ``control`` and ``total``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "interview_consent": [True, False, True],
    ...                    "interview_completed": [True, False, False]})
    >>> interview(df)[0]["total"]
    {'reached': 3, 'agreed': 2, 'not_agreed': 1, 'consent_missing': 0, 'completed': 1}
    """
    df = reached(cohort)
    out: dict[str, Any] = {}
    for group, part in _by_group(df).items():
        consent = _yes_no(part["interview_consent"])
        out[group] = {
            "reached": part.height,
            "agreed": consent["yes"],
            "not_agreed": consent["no"],
            "consent_missing": consent["missing"],
            "completed": int(
                ((part["interview_consent"] == True)  # noqa: E712
                 & (part["interview_completed"] == True)).sum()  # noqa: E712
            ),
        }
    labels = {
        "reached": "Reached by the follow-up call",
        "agreed": "Agreed to be contacted for interview",
        "not_agreed": "Did not agree to be contacted for interview",
        "consent_missing": "Consent not recorded",
        "completed": "Completed interview",
    }
    rows = [{"measure": k, "label": v, **{g: out[g][k] for g in GROUPS}}
            for k, v in labels.items()]
    frame = pl.DataFrame(rows, schema={"measure": pl.String, "label": pl.String,
                                       "treatment": pl.Int64, "control": pl.Int64,
                                       "total": pl.Int64})
    return out, frame


# --------------------------------------------------------------------------- Figure 6


def contact(cohort: Any) -> tuple[dict, pl.DataFrame]:
    """Contact with the imprisoned parent and how the carer sees it (Figure 6).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: per ``treatment``/``control``/``total``: ``n``, the four cells of
        :data:`CONTACT_CELLS`, ``cell_missing`` (contact or view not recorded),
        ``wants_contact`` and ``court_order`` (``yes``/``no``/``missing``) and ``parent_sex``
        (``M``/``F`` counts: the report says the imprisoned parent was the father in all
        reached families); frame: one row per (group, measure, value) with ``n``.

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "control"], "followup_reached": [True, True],
    ...                    "has_contact": [False, True], "contact_view": ["positive", "negative"],
    ...                    "wants_contact": [False, None], "court_order": [True, False],
    ...                    "parent_sex": ["M", "M"]})
    >>> d, _ = contact(df)
    >>> d["total"]["no_contact_positive"], d["total"]["wants_contact"]["missing"]
    (1, 1)
    """
    df = reached(cohort)
    out: dict[str, Any] = {}
    rows = []
    for group, part in _by_group(df).items():
        cells: dict[str, Any] = {"n": part.height}
        for name, (has, view) in CONTACT_CELLS.items():
            cells[name] = int(((part["has_contact"] == has)
                               & (part["contact_view"] == view)).sum())
        cells["cell_missing"] = int(
            (part["has_contact"].is_null() | part["contact_view"].is_null()).sum()
        )
        cells["wants_contact"] = _yes_no(part["wants_contact"])
        cells["court_order"] = _yes_no(part["court_order"])
        cells["parent_sex"] = {s: int((part["parent_sex"] == s).sum()) for s in ("M", "F")}
        out[group] = cells
        for name in (*CONTACT_CELLS, "cell_missing"):
            rows.append({"group": group, "measure": "contact_view", "value": name,
                         "n": cells[name]})
        for measure in ("wants_contact", "court_order", "parent_sex"):
            for value, k in cells[measure].items():
                rows.append({"group": group, "measure": measure, "value": value, "n": k})
    frame = pl.DataFrame(rows, schema={"group": pl.String, "measure": pl.String,
                                       "value": pl.String, "n": pl.Int64})
    return out, frame


# --------------------------------------------------------------------------- Figures 7-8


def uptake(cohort: Any) -> tuple[dict, pl.DataFrame]:
    """Earlier uptake of Children Heard and Seen support by arm and route (Figures 7-8).

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, polars.DataFrame)
        dict: per ``treatment``/``control``/``total``: ``yes``, ``no``, ``missing``, ``n``,
        ``percent`` (yes / n) and ``route`` (counts among ``yes`` by :data:`ROUTES` and
        ``missing``); frame: one row per group with the same columns (routes prefixed
        ``route_``).

    Examples
    --------
    >>> df = pl.DataFrame({"arm": ["treatment", "treatment", "control"],
    ...                    "followup_reached": [True, True, True],
    ...                    "chas_support": [True, False, True],
    ...                    "chas_route": ["paramount", None, "school"]})
    >>> d, _ = uptake(df)
    >>> d["treatment"]["percent"], d["control"]["route"]["school"]
    (50.0, 1)
    """
    df = reached(cohort)
    out: dict[str, Any] = {}
    rows = []
    for group, part in _by_group(df).items():
        counts: dict[str, Any] = _yes_no(part["chas_support"])
        counts["n"] = part.height
        counts["percent"] = _pct(counts["yes"], part.height)
        took = part.filter(pl.col("chas_support") == True)  # noqa: E712
        route = {r: int((took["chas_route"] == r).sum()) for r in ROUTES}
        route["missing"] = int(took["chas_route"].is_null().sum())
        counts["route"] = route
        out[group] = counts
        rows.append({"group": group, **{k: counts[k] for k in ("yes", "no", "missing", "n",
                                                                "percent")},
                     **{f"route_{k}": v for k, v in route.items()}})
    schema = {"group": pl.String, "yes": pl.Int64, "no": pl.Int64, "missing": pl.Int64,
              "n": pl.Int64, "percent": pl.Float64,
              **{f"route_{r}": pl.Int64 for r in (*ROUTES, "missing")}}
    return out, pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- all of them

_SECONDARY = {
    "referral_response": referral_response,
    "reasons": reasons,
    "interview": interview,
    "contact": contact,
    "uptake": uptake,
}


def secondary_outcomes(cohort: Any) -> tuple[dict[str, dict], dict[str, pl.DataFrame]]:
    """Every secondary-outcome table, as JSON-friendly dicts and as tidy polars frames.

    Parameters
    ----------
    cohort : Cohort or polars frame
        See :func:`reached`.

    Returns
    -------
    (dict, dict)
        Both keyed ``referral_response`` (Figure 9), ``reasons`` (Figure 10), ``interview``
        (Figure 11), ``contact`` (Figure 6) and ``uptake`` (Figures 7-8); see each function.
        The dicts go to ``results["secondary"]``, the frames to CSV.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> from natexp.data.rollout import load_rollout
    >>> from natexp.data.cohort import Design, build_cohort
    >>> fam, _ = generate()
    >>> s, t = secondary_outcomes(build_cohort(fam.lazy(), load_rollout(), Design()))
    >>> s["referral_response"]["total"]["accepted"], s["reasons"]["child"]["yes"]
    (17, 9)
    >>> sorted(t)
    ['contact', 'interview', 'reasons', 'referral_response', 'uptake']
    """
    both = {name: fn(cohort) for name, fn in _SECONDARY.items()}
    return {k: v[0] for k, v in both.items()}, {k: v[1] for k, v in both.items()}


# --------------------------------------------------------------------------- Appendix B


def appendix_b_counts(families: pl.LazyFrame | pl.DataFrame,
                      children: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Appendix B counts: children by sex of the imprisoned parent, per question.

    Parameters
    ----------
    families, children : polars frames
        The validated input tables (every child, not only the cohort: Appendix B describes
        all 639 children of the identification data).

    Returns
    -------
    polars.DataFrame
        One row per (``question``, ``parent_sex``) with ``label``, ``yes``, ``no`` and ``n``.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> fam, chi = generate()
    >>> t = appendix_b_counts(fam, chi)
    >>> t.filter((pl.col("question") == "sgo") & (pl.col("parent_sex") == "F")).row(0)
    ('sgo', 'F', 'Does the child become subject to a special guardianship order (SGO)?', 6, 26, 32)
    """
    fam = families.lazy() if isinstance(families, pl.DataFrame) else families
    kids = children.lazy() if isinstance(children, pl.DataFrame) else children
    joined = kids.join(fam.select("family_id", "parent_sex"), on="family_id", how="left")
    aggs = [pl.len().alias("n")]
    for key, (_, column, yes) in APPENDIX_B_QUESTIONS.items():
        aggs.append(pl.col(column).is_in(list(yes)).sum().alias(key))
    got = joined.group_by("parent_sex").agg(aggs).collect()
    rows = []
    for key, (label, _, _) in APPENDIX_B_QUESTIONS.items():
        for sex in ("M", "F"):
            part = got.filter(pl.col("parent_sex") == sex)
            n = int(part["n"].item()) if part.height else 0
            y = int(part[key].item()) if part.height else 0
            rows.append({"question": key, "parent_sex": sex, "label": label, "yes": y,
                         "no": n - y, "n": n})
    return pl.DataFrame(rows, schema={"question": pl.String, "parent_sex": pl.String,
                                      "label": pl.String, "yes": pl.Int64, "no": pl.Int64,
                                      "n": pl.Int64})


def children_by_age(children: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Count of children by age (the report's Figure 3), every age 0-17 listed.

    Parameters
    ----------
    children : polars frame
        The validated ``children`` table.

    Returns
    -------
    polars.DataFrame
        Columns ``age`` (0-17) and ``n``.

    Examples
    --------
    >>> from natexp.data.synthetic import generate
    >>> _, chi = generate()
    >>> t = children_by_age(chi)
    >>> t.height, int(t["n"].sum())
    (18, 639)
    """
    kids = children.lazy() if isinstance(children, pl.DataFrame) else children
    got = kids.group_by("age").agg(pl.len().cast(pl.Int64).alias("n")).collect()
    ages = pl.DataFrame({"age": list(range(18))}, schema={"age": pl.Int64})
    return ages.join(got, on="age", how="left").with_columns(pl.col("n").fill_null(0)).sort("age")
