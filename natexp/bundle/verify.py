"""Verify a replication bundle: re-run it and compare every output with the published copy.

``verify_bundle(PATH)`` works on the zip or on the folder it unzips to, anywhere natexp is
installed (it needs no repository checkout: the full resolved config is in the bundle):

1. every file is checked against the BagIt manifests (a tampered, missing or added file is
   reported);
2. the package versions recorded in the bundle are compared with the installed ones;
3. the inputs are regenerated (synthetic data, from the recorded generator settings and seed)
   or read from the paths the reviewer gives (in place: no copy is written) and checked against
   the recorded row counts (unless disclosure control suppressed them) and order-independent
   content checksums;
4. the analysis is re-run with ``natexp.pipeline.run(config)``, the same disclosure control is
   applied with the settings and exceptions recorded in the bundle, and every output is
   compared, the README included: ``matches``, or ``differs`` with the differing values
   (cleared values only: the comparison never shows anything that the bundle itself does not
   publish).

Its temporary folder holds the unzipped bundle and the re-run's aggregate results, never a
record; it is removed on every exit path, and one left by a process killed outright is removed
by the next verify (:mod:`natexp.safety`).

Examples
--------
>>> VerifyLine("output", "matches", "results/flow.csv").text()
'output    matches  results/flow.csv'
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from natexp.bundle.build import (
    CODE_CONTEXT,
    installed_versions,
    is_output,
    load_described,
    readme,
    readme_bucket,
    render_outputs,
    restore_names,
    scrub_overrides,
)
from natexp.bundle.disclosure import SUPPRESSED, DisclosureSettings, Exceptions
from natexp.bundle.manifest import extract_zip, find_bag, validate_bag
from natexp.causal.result import NatexpError

__all__ = ["VerifyError", "VerifyLine", "VerifyReport", "verify_bundle"]

MAX_DETAILS = 10
REL_TOL = 1e-9
ABS_TOL = 1e-12


class VerifyError(NatexpError, ValueError):
    """The bundle cannot be verified as asked (not a bundle, inputs missing): a usage error."""


@dataclass(frozen=True)
class VerifyLine:
    """One line of the verification report."""

    kind: str  # manifest | package | input | output
    status: str  # matches | differs
    subject: str
    details: tuple[str, ...] = ()

    def text(self) -> str:
        """The printed form."""
        head = f"{self.kind:<9} {self.status:<8} {self.subject}"
        return "\n".join([head, *(f"          {d}" for d in self.details)])


@dataclass
class VerifyReport:
    """Every check, in order. ``ok`` is True when nothing differs."""

    experiment: str
    lines: list[VerifyLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every line matches."""
        return all(line.status == "matches" for line in self.lines)

    def differences(self) -> list[VerifyLine]:
        """The lines that differ."""
        return [line for line in self.lines if line.status != "matches"]

    def text(self) -> str:
        """The whole report as printed by ``python -m natexp verify``."""
        out = [line.text() for line in self.lines]
        n = len(self.differences())
        out.append(f"verify: {self.experiment}: every output matches." if n == 0 else
                   f"verify: {self.experiment}: {n} difference(s): the bundle does NOT "
                   "replicate as published.")
        return "\n".join(out)


# --------------------------------------------------------------------------- comparisons


def _num(s: Any) -> float | None:
    if isinstance(s, bool):
        return None
    if isinstance(s, int | float):
        return float(s)
    if isinstance(s, str):
        try:
            return float(s)
        except ValueError:
            return None
    return None


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


def _json_diffs(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: not in the bundle, regenerated {_short(b[k])}")
            elif k not in b:
                out.append(f"{p}: bundle {_short(a[k])}, not regenerated")
            else:
                out += _json_diffs(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list):
        scalar = all(not isinstance(v, Mapping | list) for v in (*a, *b))
        if scalar and len(a) != len(b):
            gone = [v for v in a if v not in b]
            new = [v for v in b if v not in a]
            return [f"{path}: bundle has {len(a)} items, regenerated {len(b)}"
                    + (f"; only in the bundle: {_short(gone)}" if gone else "")
                    + (f"; only regenerated: {_short(new)}" if new else "")]
        out = []
        if len(a) != len(b):
            out.append(f"{path}: bundle has {len(a)} items, regenerated {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += _json_diffs(x, y, f"{path}[{i}]")
        return out
    return [] if _same(a, b) else [f"{path}: bundle {_short(a)}, regenerated {_short(b)}"]


def _csv_diffs(a: bytes, b: bytes) -> list[str]:
    import io

    try:
        fa = pl.read_csv(io.BytesIO(a), infer_schema=False)
        fb = pl.read_csv(io.BytesIO(b), infer_schema=False)
    except Exception:  # noqa: BLE001 - not parseable: compare as bytes
        return ["not a readable CSV: bytes differ"]
    if fa.columns != fb.columns:
        return [f"columns differ: bundle {fa.columns}, regenerated {fb.columns}"]
    out = []
    if fa.height != fb.height:
        out.append(f"bundle has {fa.height} rows, regenerated {fb.height}")
    label_cols = [c for c in fa.columns[:3]]
    for i, (ra, rb) in enumerate(zip(fa.iter_rows(named=True), fb.iter_rows(named=True),
                                     strict=False)):
        for c in fa.columns:
            if not _same(ra[c], rb[c]):
                label = ", ".join(f"{k}={ra[k]}" for k in label_cols if k != c)
                out.append(f"row {i + 1} ({label}) {c}: bundle {_short(ra[c])}, "
                           f"regenerated {_short(rb[c])}")
    return out


def _text_diffs(a: bytes, b: bytes) -> list[str]:
    la = a.decode("utf-8", "replace").splitlines()
    lb = b.decode("utf-8", "replace").splitlines()
    out = []
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:
            out.append(f"line {i + 1}: bundle {_short(x)}, regenerated {_short(y)}")
    return out or ["bytes differ"]


def compare_file(rel: str, a: bytes | None, b: bytes | None) -> VerifyLine:
    """Compare one output: the bundle's bytes ``a`` with the regenerated bytes ``b``."""
    name = rel.removeprefix("data/")
    if a is None:
        return VerifyLine("output", "differs", name, ("not in the bundle but regenerated",))
    if b is None:
        return VerifyLine("output", "differs", name, ("in the bundle but not regenerated",))
    if a == b:
        return VerifyLine("output", "matches", name)
    if rel.endswith(".json"):
        try:
            diffs = _json_diffs(json.loads(a), json.loads(b))
        except ValueError:
            diffs = ["not readable JSON: bytes differ"]
    elif rel.endswith(".csv"):
        diffs = _csv_diffs(a, b)
    elif rel.endswith((".md", ".txt")):
        diffs = _text_diffs(a, b)
    else:
        diffs = ["bytes differ"]
    if not diffs:
        return VerifyLine("output", "matches", name)
    more = len(diffs) - MAX_DETAILS
    shown = diffs[:MAX_DETAILS] + ([f"... and {more} more"] if more > 0 else [])
    return VerifyLine("output", "differs", name, tuple(shown))


# --------------------------------------------------------------------------- verify


def _read_json(bag: Path, rel: str) -> Any:
    try:
        return json.loads((bag / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise VerifyError(f"{rel}: missing or unreadable; cannot re-run the bundle") from None


def _packages(recorded: Mapping, ignore: bool) -> list[VerifyLine]:
    from natexp import __version__

    lines = []
    rec = dict(recorded.get("packages", {}))
    now = installed_versions(sorted(rec))
    import platform

    checks = [("python", recorded.get("python"), platform.python_version()),
              ("natexp", recorded.get("natexp"), __version__)]
    checks += [(n, rec[n], now[n]) for n in sorted(rec, key=str.lower) if n != "natexp"]
    status = "matches" if ignore else "differs"
    bad = [(n, a, b) for n, a, b in checks if a != b]
    for n, a, b in bad:
        lines.append(VerifyLine("package", status, n,
                                (f"bundle {a or 'not installed'}, installed "
                                 f"{b or 'not installed'}" + (" (ignored)" if ignore else ""),)))
    lines.append(VerifyLine("package", "matches",
                            f"{len(checks) - len(bad)} of {len(checks)} versions as recorded"))
    return lines


def verify_bundle(
    bundle: str | Path,
    *,
    data_families: str | Path | None = None,
    data_children: str | Path | None = None,
    ignore_versions: bool = False,
) -> VerifyReport:
    """Re-run a bundle and compare every output.

    Parameters
    ----------
    bundle : str or Path
        The zip, or the folder it unzips to (or the folder holding that folder).
    data_families, data_children : str or Path, optional
        The confidential inputs, for a bundle built from real data.
    ignore_versions : bool
        Report package-version differences without counting them as differences.

    Returns
    -------
    VerifyReport

    Raises
    ------
    VerifyError
        Not a bundle, config unreadable, or real inputs needed but not given.
    """
    from natexp.config import ConfigError, to_settings
    from natexp.data.validate import InputValidationError
    from natexp.pipeline import run
    from natexp.safety import OutputDirError, checkpoint, staging_dir, sweep_stale

    bundle = Path(bundle)
    sweep_stale(tempfile.gettempdir())  # temporary folders of verifies killed outright
    tmpdir = staging_dir(tempfile.gettempdir(), "natexp-verify-")
    try:
        try:
            if bundle.is_file():
                bag = extract_zip(bundle, tmpdir / "bundle")
            else:
                bag = find_bag(bundle)
        except (OSError, ValueError) as exc:
            raise VerifyError(f"{bundle.name}: not a readable natexp bundle "
                              f"({type(exc).__name__})") from None
        cfg = _read_json(bag, "data/config/resolved_config.json")
        report = VerifyReport(str(cfg.get("experiment", "?")))
        problems = validate_bag(bag)
        n_files = sum(1 for p in bag.rglob("*") if p.is_file())
        if problems:
            for p in problems:
                report.lines.append(VerifyLine("manifest", "differs", p.split(":")[0],
                                               (p.split(":", 1)[-1].strip(),)))
        else:
            report.lines.append(VerifyLine("manifest", "matches",
                                           f"{n_files} files (BagIt manifests)"))
        env = _read_json(bag, "data/environment/environment.json")
        report.lines += _packages(env, ignore_versions)
        inputs = _read_json(bag, "data/inputs/inputs.json")
        log = _read_json(bag, "data/disclosure/disclosure_log.json")
        settings = DisclosureSettings.from_dict(log["settings"])
        exc_path = bag / "data/disclosure/exceptions.yaml"
        exceptions = Exceptions.from_text(exc_path.read_text(encoding="utf-8")) \
            if exc_path.is_file() else None

        run_cfg = json.loads(json.dumps(cfg))
        names: dict[str, str] = {}
        if not inputs.get("synthetic", True):
            if data_families is None or data_children is None:
                raise VerifyError(
                    "this bundle was built from confidential data: give --data-families and "
                    "--data-children (the README says how to request access)")
            for key, given in (("families", data_families), ("children", data_children)):
                p = Path(given)
                if not p.is_file():
                    raise VerifyError(f"--data-{key}: {p.name} not found")
                names[p.name] = str(inputs.get(key, {}).get("file", p.name))
                run_cfg["data"][key] = str(p.resolve())
        run_cfg["output_dir"] = None
        try:
            nat = to_settings(run_cfg)
            # read and validated where they are, sorted in memory: no copy on disk
            data, regen_inputs, _ = load_described(nat)
            checkpoint("verify.loaded")
            result = run(run_cfg, output_dir=tmpdir / "run", write=True, data=data)
        except (InputValidationError, ConfigError, OutputDirError) as exc:
            raise VerifyError(str(exc)) from None
        checkpoint("verify.ran")

        for key in ("families", "children"):
            rec, new = inputs.get(key, {}), regen_inputs.get(key, {})
            if "file" in rec:  # the reviewer's file names are not results
                new["file"], new["format"] = rec["file"], rec.get("format", new.get("format"))
            detail = []
            # a row count suppressed by disclosure control ([c]) is not compared: the content
            # checksum below still identifies the rows
            if rec.get("rows") != new.get("rows") and rec.get("rows") != SUPPRESSED:
                detail.append(f"rows: bundle {rec.get('rows')}, given {new.get('rows')}")
            if rec.get("content_sha256") != new.get("content_sha256"):
                detail.append(f"content SHA-256: bundle {rec.get('content_sha256')}, "
                              f"given {new.get('content_sha256')}")
            what = "regenerated synthetic" if inputs.get("synthetic") else "given"
            report.lines.append(VerifyLine(
                "input", "differs" if detail else "matches",
                f"{key} ({what}; content SHA-256 of rows sorted by id)", tuple(detail)))

        # the reviewer's own file names and locations are not results
        results = restore_names(result.results, cfg, names)
        regen, regen_log = render_outputs(results, result.tables, tmpdir / "run",
                                          regen_inputs, settings=settings,
                                          exceptions=exceptions)
        published = {p.relative_to(bag).as_posix(): p for p in bag.rglob("*")
                     if p.is_file() and is_output(p.relative_to(bag).as_posix())}
        published["README.md"] = bag / "README.md"
        regen["README.md"] = _regenerate_readme(bag, cfg, regen, env, regen_log)
        for rel in sorted(set(published) | set(regen)):
            a = (published[rel].read_bytes()
                 if rel in published and published[rel].is_file() else None)
            report.lines.append(compare_file(rel, a, regen.get(rel)))
        return report
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _regenerate_readme(bag: Path, cfg: Mapping, regen: Mapping[str, bytes], env: Mapping,
                       log: Any) -> bytes:
    """The README as ``bundle`` would write it for the re-run: from the regenerated cleared
    inputs and disclosure log, the bundle's recorded config, overrides and environment, and the
    runtime bucket it recorded (the one fact a re-run on another machine cannot reproduce)."""
    try:
        text = (bag / "README.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    try:
        ovr = (bag / "data/config/overrides.txt").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        ovr = []
    try:
        code = json.loads((bag / CODE_CONTEXT).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        code = None
    return readme(experiment=str(cfg.get("experiment", "")),
                  description=str(cfg.get("description", "")),
                  overrides=scrub_overrides(ovr), config=cfg,
                  inputs=json.loads(regen["data/inputs/inputs.json"]), env=env,
                  log=log, bucket=readme_bucket(text) or "(not recorded)", code=code)


def summary_lines(report: VerifyReport) -> Sequence[str]:
    """The report's lines (for the CLI)."""
    return report.text().splitlines()
