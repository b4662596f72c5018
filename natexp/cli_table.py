"""``natexp table X1 N1 X2 N2``: the immediate 2x2 panel, like Stata's ``csi``.

Treated: ``X1`` events out of ``N1``; control: ``X2`` out of ``N2``. The first line answers:
the recommended pair (the risk difference with its exact unconditional interval and Barnard's
exact unconditional test, which that interval inverts), in words and numbers; then every effect
measure, interval and test of :func:`natexp.causal.twobytwo.compare_groups`. With ``--json``
one JSON object with the keys of ``natexp.causal.twobytwo.JSON_KEYS`` ("recommended",
"counts", "confidence_level", "alternative", "risks", "arm_risks" (Wilson and Clopper-Pearson
intervals), "risk_difference", "risk_ratio", "odds_ratio", "test", "attributable_fraction"
(with its interval definition), "population_attributable_fraction", "nnt", "notes"), in which
NaN and infinity are ``null`` and ``notes`` says why, once per item. Invalid input prints a
message on stderr and exits with status 2. Output piped into a reader that stops early
(``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from natexp.causal.result import ALTERNATIVES, InvalidInputError


def _number(text: str) -> int | float:
    """Parse a count as written; non-integers are refused later with a typed error."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="natexp table",
        description="Compare treated X1/N1 with control X2/N2: risks, risk difference, risk "
                    "ratio, odds ratio with their intervals, and the chi-squared, Fisher and "
                    "exact unconditional tests.",
    )
    parser.add_argument("x1", type=_number, help="events in the treated group")
    parser.add_argument("n1", type=_number, help="size of the treated group")
    parser.add_argument("x2", type=_number, help="events in the control group")
    parser.add_argument("n2", type=_number, help="size of the control group")
    parser.add_argument("--confidence-level", type=float, default=0.95,
                        help="coverage of every interval (default 0.95)")
    parser.add_argument("--alternative", choices=ALTERNATIVES, default="two-sided",
                        help="alternative hypothesis; 'greater': treated risk larger")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-unconditional", action="store_true",
                        help="skip the (slower) exact unconditional tests and intervals")
    return parser


def main(argv: list[str]) -> int:
    """Run ``natexp table`` on ``argv`` (without the program and sub-command names).

    Parameters
    ----------
    argv : list of str
        For example ``["4", "20", "2", "15", "--json"]``.

    Returns
    -------
    int
        0 on success, 2 on invalid input.

    Examples
    --------
    >>> main(["4", "20", "2", "15", "--json", "--no-unconditional"])  # doctest: +ELLIPSIS
    {"recommended": {"measure": "risk_difference", ...
    0
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message on stderr
        return int(exc.code or 0)
    from natexp.causal.twobytwo import compare_groups

    try:
        panel = compare_groups(
            args.x1, args.n1, args.x2, args.n2, confidence_level=args.confidence_level,
            alternative=args.alternative, include_unconditional=not args.no_unconditional,
        )
    except InvalidInputError as exc:
        print(f"natexp table: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(panel.to_json_dict(), allow_nan=False) if args.json else panel.summary()
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader (``| head``) has gone: end quietly, and keep Python's exit-time flush of
        # stdout from raising again (the documented recipe in the signal module's docs)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor
            pass
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
