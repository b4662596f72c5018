"""The area x period panel and the generic panel normaliser.

Expected go-live periods come from the rollout published in the Operation Paramount report
(Bekaert et al. 2025, Methodology; dates as encoded in conf/rollout/thames_valley.yaml): Oxford
pilot winter 2021, the rest of Oxfordshire by summer 2022, Milton Keynes December 2022,
Buckinghamshire and West Berkshire July 2023, Bracknell Forest and Reading July 2024, the rest
planned for summer 2025. Counted by hand against the study window 1 July 2022 - 30 June 2024.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from natexp.causal.result import InvalidInputError
from natexp.data.panel import PANEL_COLUMNS, area_period_panel, panel_from_frame
from natexp.data.rollout import load_rollout, rollout_frame

START, END = dt.date(2022, 7, 1), dt.date(2024, 6, 30)
#: The example study's outcome column.
Y = "chas_support"


def _families() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "family_id": ["F1", "F2", "F3", "F4", "F5", "F6"],
            "area": ["Oxford", "Oxford", "Milton Keynes", "Reading", "Reading", "Slough"],
            "reception_date": [
                dt.date(2022, 7, 1),  # Q3 2022 (first day of the window)
                dt.date(2022, 9, 30),  # Q3 2022
                dt.date(2023, 1, 15),  # Q1 2023
                dt.date(2024, 6, 30),  # Q2 2024 (last day of the window)
                dt.date(2024, 7, 1),  # after the window: left out
                dt.date(2022, 6, 30),  # before the window: left out
            ],
            "chas_support": [True, False, None, True, True, True],
        }
    )


@pytest.fixture(scope="module")
def quarterly() -> pl.DataFrame:
    lazy = area_period_panel(_families(), load_rollout(), outcome=Y, period="quarter",
                             start=START, end=END)
    assert isinstance(lazy, pl.LazyFrame)
    return lazy.collect()


def test_every_area_and_quarter_is_present(quarterly):
    assert quarterly.columns == list(PANEL_COLUMNS)
    assert quarterly.height == 13 * 8
    assert quarterly.group_by("area").len()["len"].to_list() == [8] * 13
    assert quarterly["period"].unique().sort().to_list() == [
        dt.date(2022, 7, 1), dt.date(2022, 10, 1), dt.date(2023, 1, 1), dt.date(2023, 4, 1),
        dt.date(2023, 7, 1), dt.date(2023, 10, 1), dt.date(2024, 1, 1), dt.date(2024, 4, 1)]
    assert quarterly.filter(pl.col("area") == "Oxford")["period_index"].to_list() == list(range(8))


def test_counts_rates_and_empty_cells(quarterly):
    def cell(area, index):
        return quarterly.filter((pl.col("area") == area) & (pl.col("period_index") == index)).row(
            0, named=True)

    ox = cell("Oxford", 0)
    assert (ox["families"], ox["uptake"], ox["rate"]) == (2, 1, 0.5)
    mk = cell("Milton Keynes", 2)  # chas_support null counts as no uptake
    assert (mk["families"], mk["uptake"], mk["rate"]) == (1, 0, 0.0)
    rd = cell("Reading", 7)
    assert (rd["families"], rd["uptake"], rd["rate"]) == (1, 1, 1.0)
    empty = cell("Wokingham", 3)
    assert (empty["families"], empty["uptake"], empty["rate"]) == (0, 0, None)
    assert quarterly["families"].sum() == 4
    # 4 families in 3 non-empty cells; every other cell has a null rate
    assert quarterly.filter(pl.col("families") == 0)["rate"].null_count() == 13 * 8 - 3


def test_first_treated_convention(quarterly):
    first = dict(quarterly.select("area", "first_treated").unique().iter_rows())
    # live before the window: negative period index (Q4 2021 = -3, Q2 2022 = -1)
    assert first["Oxford"] == -3
    assert first["Cherwell"] == first["West Oxfordshire"] == -1
    # live within the window: index of the quarter containing go-live
    assert first["Milton Keynes"] == 1  # December 2022 -> Q4 2022
    assert first["Buckinghamshire"] == first["West Berkshire"] == 4  # July 2023 -> Q3 2023
    # live after the window (July 2024, 2025): never treated within the range -> null
    for area in ("Bracknell Forest", "Reading", "Slough", "Windsor and Maidenhead", "Wokingham"):
        assert first[area] is None
    mk = quarterly.filter(pl.col("area") == "Milton Keynes")
    assert mk["event_time"].to_list() == [-1, 0, 1, 2, 3, 4, 5, 6]
    assert mk["treated"].to_list() == [False] + [True] * 7
    slough = quarterly.filter(pl.col("area") == "Slough")
    assert slough["event_time"].null_count() == 8 and not slough["treated"].any()
    assert quarterly.filter(pl.col("area") == "Oxford")["treated"].all()


def test_monthly_periods_and_null_go_live():
    rollout = rollout_frame([
        {"name": "A", "county": "X", "go_live": "2023-03-15"},
        {"name": "B", "county": "X", "go_live": None},
    ])
    fam = pl.LazyFrame({"area": ["A", "B"], "reception_date": [dt.date(2023, 2, 2),
                                                               dt.date(2023, 3, 31)],
                        "chas_support": [False, True]})
    panel = area_period_panel(fam, rollout, outcome=Y, period="month", start=dt.date(2023, 1, 10),
                              end=dt.date(2023, 4, 2)).collect()
    assert panel.height == 2 * 4  # Jan..Apr 2023, first and last month partial
    a = panel.filter(pl.col("area") == "A")
    assert a["first_treated"].unique().to_list() == [2]
    assert a["treated"].to_list() == [False, False, True, True]
    assert panel.filter(pl.col("area") == "B")["first_treated"].null_count() == 4


def test_panel_builder_rejects_wrong_input():
    rollout = load_rollout()
    with pytest.raises(InvalidInputError, match="period"):
        area_period_panel(_families(), rollout, outcome=Y, period="week", start=START, end=END)
    with pytest.raises(InvalidInputError, match="before"):
        area_period_panel(_families(), rollout, outcome=Y, start=END, end=START)
    with pytest.raises(InvalidInputError, match="chas_support"):
        area_period_panel(_families().drop(Y), rollout, outcome=Y, start=START, end=END)
    with pytest.raises(InvalidInputError, match="reception_date"):
        area_period_panel(_families().with_columns(pl.col("reception_date").cast(pl.String)),
                          rollout, outcome=Y, start=START, end=END)


def _long() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 1, 2, 2, 3, 3], "yr": [2003, 2004] * 3,
                         "g": [2004, 2004, 0, 0, None, None], "y": [1.0, 2.0, 1.0, 1.5, 2, None],
                         "x": [1, 1, 2, 2, 3, 3]})


def test_panel_from_frame_normalises():
    out = panel_from_frame(_long().lazy(), unit="id", time="yr", first_treated="g", outcome="y",
                           covariates=["x"], never_treated=0)
    assert out.columns == ["unit", "time", "first_treated", "outcome", "x"]
    assert out.schema["time"] == pl.Int64 and out.schema["outcome"] == pl.Float64
    assert out["first_treated"].to_list() == [2004, 2004, None, None, None, None]
    assert out["outcome"].null_count() == 1  # kept: the estimator decides what to drop
    kept = panel_from_frame(_long(), unit="id", time="yr", first_treated="g", outcome="y")
    assert kept["first_treated"].to_list()[2:4] == [0, 0]  # 0 is a period unless declared


def test_panel_from_frame_rejects_malformed_panels():
    kw = dict(unit="id", time="yr", first_treated="g", outcome="y")
    with pytest.raises(InvalidInputError, match="missing"):
        panel_from_frame(_long().drop("y"), **kw)
    with pytest.raises(InvalidInputError, match="more than once"):
        panel_from_frame(pl.concat([_long(), _long().head(1)]), **kw)
    with pytest.raises(InvalidInputError, match="varies within"):
        panel_from_frame(_long().with_columns(
            pl.when(pl.col("yr") == 2004).then(2005).otherwise(pl.col("g")).alias("g")), **kw)
    with pytest.raises(InvalidInputError, match="numeric"):
        panel_from_frame(_long().with_columns(pl.col("y").cast(pl.String)), **kw)
    with pytest.raises(InvalidInputError, match="whole numbers"):
        panel_from_frame(_long().with_columns(pl.col("yr") + 0.5), **kw)
    with pytest.raises(InvalidInputError, match="clash"):
        panel_from_frame(_long().with_columns(pl.col("x").alias("outcome")),
                         covariates=["outcome"], **kw)
