"""``natexp table X1 N1 X2 N2``: the immediate 2x2 command (natexp.cli_table.main)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from natexp.causal.twobytwo import JSON_KEYS, compare_groups
from natexp.cli_table import main


def _strict_loads(text: str):
    def reject(token):
        raise ValueError(f"invalid JSON constant {token}")

    return json.loads(text, parse_constant=reject)


def test_json_is_one_strict_object_with_the_documented_layout(capsys):
    assert main(["4", "20", "2", "15", "--json", "--no-unconditional"]) == 0
    out = capsys.readouterr().out
    data = _strict_loads(out)
    assert tuple(data) == JSON_KEYS
    assert data["risk_difference"]["newcombe"].keys() == {"estimate", "ci_low", "ci_high"}
    assert data["test"]["fisher_minlike"].keys() == {"statistic", "pvalue"}
    expected = compare_groups(4, 20, 2, 15, include_unconditional=False).to_json_dict()
    assert data == _strict_loads(json.dumps(expected))
    assert data["risk_ratio"]["exact_unconditional"]["ci_low"] is None
    assert "risk_ratio.exact_unconditional" in data["notes"]


def test_options_reach_the_panel(capsys):
    argv = ["4", "20", "2", "15", "--json", "--no-unconditional", "--confidence-level", "0.9",
            "--alternative", "greater"]
    assert main(argv) == 0
    data = _strict_loads(capsys.readouterr().out)
    ref = compare_groups(4, 20, 2, 15, confidence_level=0.9, alternative="greater",
                         include_unconditional=False)
    assert data["odds_ratio"]["baptista_pike"]["ci_low"] == ref.odds_ratio["baptista_pike"].ci_low
    assert data["odds_ratio"]["baptista_pike"]["ci_high"] is None  # one-sided: +inf
    assert "ci_high is +inf" in data["notes"]["odds_ratio.baptista_pike"]


def test_degenerate_table_gives_nulls_with_reasons(capsys):
    assert main(["0", "10", "0", "12", "--json", "--no-unconditional"]) == 0
    data = _strict_loads(capsys.readouterr().out)
    assert data["test"]["pearson"]["pvalue"] is None
    assert "0/0" in data["notes"]["test.pearson"]
    assert data["test"]["fisher_minlike"]["pvalue"] == 1.0


def test_plain_text_panel(capsys):
    assert main(["4", "20", "2", "15", "--no-unconditional"]) == 0
    out = capsys.readouterr().out
    assert "Treated 4/20 vs control 2/15" in out
    assert "Fisher mid-p" in out and "Risk ratio" in out


def test_with_the_exact_unconditional_methods(capsys):
    pytest.importorskip("natexp.causal.unconditional")
    assert main(["4", "20", "2", "15", "--json"]) == 0
    data = _strict_loads(capsys.readouterr().out)
    assert data["test"]["boschloo"]["pvalue"] is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["2.9", "20", "2", "15"], "whole number"),  # scipy would silently use 2
        (["4", "20", "-2", "15"], "non-negative"),
        (["21", "20", "2", "15"], "larger than n1"),
        (["4", "20", "2", "15", "--confidence-level", "1.5"], "confidence_level"),
        (["4", "20", "2", "15", "--alternative", "two.sided"], "invalid choice"),
        (["4", "20", "x", "15"], "not a number"),
        (["4", "20", "2"], "required"),
    ],
)
def test_invalid_input_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_first_line_answers_with_the_recommended_pair(capsys):
    assert main(["4", "20", "2", "15"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    # R exact2x2 uncondExact2x2(2, 15, 4, 20, parmtype = "difference", method = "score",
    # tsmethod = "square", conf.int = TRUE): (-0.2359074, 0.3383094), p 0.6458161
    assert first.startswith("Recommended: Risk difference (treated - control) 0.06667")
    assert "exact unconditional interval -0.2359 to 0.3383" in first
    assert "Barnard's exact unconditional test" in first and "p = 0.6458" in first
    assert "Wilson" in out and "Clopper-Pearson" in out and "population" in out


def test_json_carries_everything_the_text_shows(capsys):
    assert main(["4", "20", "2", "15", "--json", "--no-unconditional",
                 "--confidence-level", "0.9"]) == 0
    data = _strict_loads(capsys.readouterr().out)
    assert data["counts"] == {"x1": 4, "n1": 20, "x2": 2, "n2": 15}
    assert data["confidence_level"] == 0.9
    assert data["recommended"]["sentence"].startswith("Risk difference")
    arms = data["arm_risks"]
    assert set(arms["treated"]) == {"events", "n", "risk", "wilson", "clopper_pearson"}
    assert arms["control"]["wilson"]["ci_low"] < 2 / 15 < arms["control"]["wilson"]["ci_high"]
    assert "interval_definition" in data["attributable_fraction"]
    assert data["population_attributable_fraction"]["estimate"] == pytest.approx(2 / 9)
    assert data["nnt"]["altman"].startswith("NNTB")
    # notes once each: one entry per item, no duplicated text within an entry
    for key, text in data["notes"].items():
        parts = text.split(". ")
        assert len(parts) == len(set(parts)), key


def test_closed_pipe_ends_quietly(monkeypatch, capsys):
    """``natexp table ... | head -1``: the reader has gone; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    saved = os.dup(1)
    try:
        stream = os.fdopen(write_end, "w")
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(["4", "20", "2", "15", "--no-unconditional"]) == 0
    finally:
        os.dup2(saved, 1)
        os.close(saved)
