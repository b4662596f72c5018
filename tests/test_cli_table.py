"""``natexp table X1 N1 X2 N2``: the immediate 2x2 command (natexp.cli_table.main)."""

from __future__ import annotations

import json

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
