"""``python -m natexp bundle`` and ``python -m natexp verify``.

Exit status (as in ``python -m natexp --help``): ``bundle`` 0 written, 2 not written (existing
target, bad configuration or input, disclosure control failed), 1 internal error; ``verify`` 0
every output matches, 3 something differs (an output, the README, an input, a package version,
or a tampered file), 2 cannot verify (not a bundle, inputs missing, bad input), 1 internal
error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# 3, not 1: exit status 1 means an internal error everywhere in natexp.
EXIT_OK, EXIT_DIFFERS, EXIT_USAGE = 0, 3, 2

BUNDLE_HELP = """\
usage: python -m natexp bundle +experiment=NAME [OVERRIDES] [--out PATH] [--threshold N]
                               [--suppress] [--no-exceptions | --exceptions FILE]

Run an experiment and write its replication bundle: ONE deterministic zip with the README
(Social Science Data Editors' template), the resolved config, results (JSON and CSV), figures,
report, disclosure log and BagIt manifests. Record-level data never goes in.

options:
  --out PATH          the zip to write (default: <experiment>-replication.zip); never overwritten
  --threshold N       minimum published count (default 10; refused below 3)
  --suppress          suppress disclosive cells (with secondary suppression) instead of failing
  --exceptions FILE   disclosure exceptions to apply (default: the experiment's
                      experiments/<name>/disclosure_exceptions.yaml, when it exists); they
                      apply only to the inputs they are bound to (applies_to: content
                      checksums, or the embedded published-margin data), else are ignored
  --no-exceptions     apply no exceptions
  --allow-zeros       treat zero counts as safe (default: zeros are disclosive)

exit status: 0 written; 2 nothing written (target exists, bad config or input, disclosure
control failed); 1 internal error.
"""


def _split(args: list[str], flags_with_value: set[str], flags: set[str]
           ) -> tuple[dict[str, str | bool], list[str]] | None:
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, val = a.partition("=")
        if name in flags_with_value:
            if eq:
                opts[name] = val
            elif i + 1 < len(args):
                opts[name] = args[i + 1]
                i += 1
            else:
                return None
        elif a in flags:
            opts[a] = True
        elif a.startswith("--"):
            return None
        else:
            rest.append(a)
        i += 1
    return opts, rest


def bundle_main(args: list[str]) -> int:
    """``python -m natexp bundle +experiment=NAME [OVERRIDES] [--out PATH] ...``.

    Parameters
    ----------
    args : list of str
        Hydra overrides and the options of :data:`BUNDLE_HELP`.

    Returns
    -------
    int
        0 written; 2 nothing written; 1 internal error.

    Examples
    --------
    >>> bundle_main(["+experiment=oxon_vs_rest", "--threshold", "2"])  # below the floor
    2
    """
    from natexp.bundle.build import BundleError, DisclosureFailure, build_bundle
    from natexp.bundle.disclosure import DisclosureError, DisclosureSettings

    if any(a in ("-h", "--help") for a in args):
        print(BUNDLE_HELP, end="")
        return EXIT_OK
    parsed = _split(args, {"--out", "--threshold", "--exceptions"},
                    {"--suppress", "--no-exceptions", "--allow-zeros"})
    if parsed is None:
        print("natexp bundle: unknown option or missing value (see --help)", file=sys.stderr)
        return EXIT_USAGE
    opts, overrides = parsed
    try:
        threshold = int(str(opts.get("--threshold", 10)))
    except ValueError:
        print("natexp bundle: --threshold must be a whole number", file=sys.stderr)
        return EXIT_USAGE
    if opts.get("--no-exceptions") and opts.get("--exceptions"):
        print("natexp bundle: give --exceptions or --no-exceptions, not both", file=sys.stderr)
        return EXIT_USAGE
    exceptions: str | None = "auto"
    if opts.get("--no-exceptions"):
        exceptions = None
    elif opts.get("--exceptions"):
        exceptions = str(opts["--exceptions"])
    try:
        settings = DisclosureSettings(threshold=threshold,
                                      zeros_disclosive=not opts.get("--allow-zeros", False),
                                      suppress=bool(opts.get("--suppress", False)))
        result = build_bundle(overrides, opts.get("--out") or None, disclosure=settings,
                              exceptions=exceptions, echo=print)
    except DisclosureFailure as exc:
        print(f"natexp bundle: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BundleError, DisclosureError) as exc:
        print(f"natexp bundle: {exc}", file=sys.stderr)
        print("natexp bundle: nothing was written.", file=sys.stderr)
        return EXIT_USAGE
    log = result.log
    print(f"disclosure control: {log.status} "
          f"({len(log.cells.get('suppressed_primary', []))} primary and "
          f"{len(log.cells.get('suppressed_secondary', []))} secondary cells suppressed, "
          f"{len(log.cells.get('cleared_by_exception', []))} cleared by exception)")
    if log.exceptions.get("binding"):
        print(f"disclosure exceptions: {log.exceptions['binding']}")
    for o in sorted(log.outputs, key=lambda o: o.output):
        print(f"  {o.status:<6} {o.output}" + ("  [withheld]" if o.withheld else ""))
    for name, digest in sorted(result.input_file_sha256.items()):
        print(f"input file {name}: SHA-256 {digest} (for your records; not in the bundle)")
    print(f"runtime of the analysis: {result.runtime_seconds:.1f} s")
    print(f"bundle: {result.path}")
    return EXIT_OK


def verify_main(args: list[str]) -> int:
    """``python -m natexp verify [BUNDLE] [--data-families PATH --data-children PATH]``.

    Parameters
    ----------
    args : list of str
        The bundle (zip or folder; default ``.``) and options.

    Returns
    -------
    int
        0 every output matches; 3 something differs; 2 cannot verify; 1 internal error.

    Examples
    --------
    >>> verify_main(["no-such-bundle.zip"])
    2
    """
    from natexp.bundle.disclosure import DisclosureError
    from natexp.bundle.verify import VerifyError, verify_bundle

    parser = argparse.ArgumentParser(
        prog="python -m natexp verify",
        description="Re-run a replication bundle and compare every output (and the README) "
        "with the published copy. Exit status: 0 every output matches; 3 something differs "
        "(an output, the README, an input, a package version, or a tampered file); 2 cannot "
        "verify (not a bundle, inputs missing or invalid); 1 internal error.",
    )
    parser.add_argument("bundle", nargs="?", default=".", type=Path,
                        help="the bundle zip or the folder it unzips to (default: .)")
    parser.add_argument("--data-families", type=Path, default=None,
                        help="the families file (bundles built from confidential data)")
    parser.add_argument("--data-children", type=Path, default=None,
                        help="the children file (bundles built from confidential data)")
    parser.add_argument("--ignore-versions", action="store_true",
                        help="report package-version differences without failing on them")
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        report = verify_bundle(ns.bundle, data_families=ns.data_families,
                               data_children=ns.data_children,
                               ignore_versions=ns.ignore_versions)
    except (VerifyError, DisclosureError) as exc:
        print(f"natexp verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.text())
    return EXIT_OK if report.ok else EXIT_DIFFERS
