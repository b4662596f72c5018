"""Build a replication bundle: one deterministic zip a peer reviewer can verify.

``build_bundle(["+experiment=oxon_vs_rest"])`` runs the experiment into a staging folder, applies
disclosure control (:mod:`natexp.bundle.disclosure`) to every output, and writes a BagIt bag
zipped deterministically:

.. code-block:: text

    <experiment>-replication/
      README.md                 Social Science Data Editors' template README
      bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
      data/results/             results.json and the CSV tables (cleared), figures, report
      data/config/              resolved_config.json (machine paths scrubbed), overrides.txt
      data/inputs/inputs.json   how the inputs are described (never their records)
      data/environment/         environment.json (versions used), requirements.lock
      data/code/                natexp's own wheel (natexp.bundle.code), installed by the README
      data/disclosure/          disclosure_log.json / .md, the exception file used

Inputs are described, never included: a real input by file name, format, row count, schema and
an order-independent content checksum (SHA-256 of the validated contract columns as CSV, rows
sorted by id); a synthetic input by its generator settings and seed. The SHA-256 of the input
*file bytes* is deliberately not recorded: it changes when the same rows are exported in another
order or format, and the bundle must not (the run prints it for the analyst's own records).

Same inputs, config and seed give a byte-identical zip: sorted entries, fixed timestamps and
permissions, no dates, machine paths or user names, runtime recorded only as the template's
time bucket. The zip is built in a staging folder beside the target and linked into place only
when complete; an existing target is never overwritten; a failure leaves nothing behind.

No record-level copy ever touches disk: the inputs are read where they are, validated and sorted
by id in memory. The staging folder holds only aggregate results; it is removed on every exit
path (error, Ctrl-C, SIGTERM: see :mod:`natexp.safety`), and one left by a process killed
outright is recognised by natexp's marker and removed by the next bundle.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from natexp.bundle.disclosure import (
    DisclosureError,
    DisclosureLog,
    DisclosureSettings,
    Exceptions,
    exceptions_path,
    publication_mode,
)
from natexp.bundle.manifest import content_sha256, sha256_file, write_bag_files, write_zip
from natexp.causal.result import NatexpError
from natexp.safety import OutputDirError, checkpoint, staging_dir, sweep_stale
from natexp.study import Study

__all__ = ["BundleError", "BundleResult", "DisclosureFailure", "build_bundle"]

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: What the README says of the record-level data when the study description names no holder.
DATA_HOLDERS_UNKNOWN = (
    "The record-level data are confidential and are not in this package. The study description "
    "(config key study.data_holders) does not say who holds them or how a reviewer requests "
    "access; ask the study's authors."
)


def data_holders(study: Study) -> str:
    """Who holds the confidential record-level data and how access is requested.

    The study's own words (``data_holders`` of its description), else a generic sentence.

    Examples
    --------
    >>> data_holders(Study.from_dict({"name": "demo", "data_holders": "Held by X."}))
    'Held by X.'
    >>> data_holders(Study()).startswith("The record-level data are confidential")
    True
    """
    return " ".join(study.data_holders.split()) or DATA_HOLDERS_UNKNOWN


def output_sources(study: Study) -> dict[str, tuple[str, str]]:
    """Output name (CSV stem or file) -> (code that produces it, config that drives it), from
    the declarations of :mod:`natexp.outputs` (the study's own tables included).

    Examples
    --------
    >>> s = Study.from_dict({"name": "demo", "secondary": [{"key": "mood", "kind": "category",
    ...                      "column": "mood"}], "columns": {"families": [
    ...                      {"name": "mood", "kind": "category", "values": ["ok"]}]}})
    >>> output_sources(s)["secondary_mood"]
    ('natexp.data.tables.category_table', 'study.secondary, design.*')
    """
    from natexp.outputs import declared_tables

    out = {"results.json": ("natexp.pipeline.run", "the whole resolved config")}
    out.update({o.name: (o.source, o.config) for o in declared_tables(study)})
    return out


def render_publication_report(results: dict, tables: dict[str, pl.DataFrame],
                              folder: Path) -> dict[str, dict[str, Any]]:
    """The report and its figures in publication mode, from the cleared results only.

    Registered in :data:`RENDERERS`: :func:`natexp.report.render.write_publication_report`
    (nothing is written when the run's config switched the report off).
    """
    from natexp.report.render import write_publication_report

    return write_publication_report(folder, results, tables)


#: Callables ``(cleared_results, cleared_tables, folder) -> checks or None`` that write extra
#: outputs (figures, a report) into ``folder`` from the CLEARED results only. ``checks`` maps a
#: file name relative to ``folder`` to ``{"status", "reasons", "withheld"}`` for the disclosure
#: log (a file written without a check: ``pass``, built from cleared counts only; a check with
#: ``withheld`` True: a file the renderer withheld, logged when the run itself produced it). A
#: renderer's file replaces the run's own file of the same name (the run's figures and report
#: are drawn from uncleared counts). The report registers itself here in publication mode.
RENDERERS: list[Callable[[dict, dict[str, pl.DataFrame], Path],
                         Mapping[str, Mapping[str, Any]] | None]] = [render_publication_report]

#: The Social Science Data Editors' template's runtime buckets.
RUNTIME_BUCKETS = ((600, "<10 minutes"), (3600, "10-60 minutes"), (7200, "1-2 hours"),
                   (28800, "2-8 hours"), (86400, "8-24 hours"), (259200, "1-3 days"),
                   (1209600, "3-14 days"))


class BundleError(NatexpError, ValueError):
    """The bundle cannot be built (existing target, bad configuration, invalid input)."""


class DisclosureFailure(BundleError):
    """An output failed disclosure control: nothing was written. ``log`` says which and why."""

    def __init__(self, log: DisclosureLog):
        self.log = log
        lines = ["disclosure control failed: nothing was written."]
        for o in log.failures():
            lines.append(f"  fail  {o.output}")
            lines += [f"        {r}" for r in o.reasons if r.startswith("threshold")
                      or "cannot" in r or "not recognised" in r]
        if log.exceptions.get("binding") and not log.exceptions.get("applied"):
            lines.append(f"Disclosure exceptions: {log.exceptions['binding']}.")
        lines.append("Record an exception for counts the data owner already published "
                     "(experiments/<experiment>/disclosure_exceptions.yaml, bound to these "
                     "inputs by their content checksums under applies_to), or suppress "
                     "with --suppress.")
        super().__init__("\n".join(lines))


@dataclass
class BundleResult:
    """What :func:`build_bundle` produced.

    Attributes
    ----------
    path : Path
        The zip.
    log : DisclosureLog
    runtime_seconds : float
        Measured wall time of the analysis run.
    files : list of str
        Every file in the bag (relative paths).
    input_file_sha256 : dict
        SHA-256 of the real input files' bytes (for the analyst's records; not in the bundle).
    """

    path: Path
    log: DisclosureLog
    runtime_seconds: float
    files: list[str]
    input_file_sha256: dict[str, str]


# --------------------------------------------------------------------------- configuration


def resolve_config(overrides: Sequence[str]) -> dict:
    """Compose the run config exactly as ``python -m natexp run`` does; return a plain dict."""
    from omegaconf import OmegaConf

    from natexp.config import ConfigError, compose

    try:
        cfg = compose(list(overrides))
    except ConfigError:
        raise
    except Exception as exc:  # hydra's composition errors: report the first line only
        text = str(exc).strip().splitlines()
        raise BundleError(f"the configuration could not be composed: "
                          f"{text[0] if text else type(exc).__name__}") from None
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return plain


def _is_path(value: str) -> bool:
    return len(value) > 1 and (os.path.isabs(value) or value.startswith("~")
                               or (len(value) > 2 and value[1] == ":" and value[2] in "\\/"))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    if isinstance(value, str) and _is_path(value):
        return Path(value.replace("\\", "/")).name
    return value


def scrub_config(cfg: Mapping) -> dict:
    """The config without machine paths: data paths become file names, output_dir null.

    Any other absolute path in the config also becomes its file name.

    Examples
    --------
    >>> scrub_config({"data": {"families": "/home/ana/x/families.csv"}, "output_dir": "/tmp/o"})
    {'data': {'families': 'families.csv'}, 'output_dir': None}
    """
    out = _scrub_value(dict(cfg))
    if "output_dir" in out:
        out["output_dir"] = None
    data = out.get("data")
    if isinstance(data, dict):
        for k in ("families", "children"):
            if isinstance(data.get(k), str):
                data[k] = Path(data[k].replace("\\", "/")).name
    return out


def scrub_overrides(overrides: Sequence[str]) -> list[str]:
    """Hydra overrides with machine paths reduced to file names; ``output_dir`` dropped.

    Examples
    --------
    >>> scrub_overrides(["+experiment=oxon_vs_rest", "data.families=/srv/a/f.csv",
    ...                  "output_dir=/tmp/x"])
    ['+experiment=oxon_vs_rest', 'data.families=f.csv']
    """
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if key.lstrip("+~") == "output_dir":
            continue
        if key.lstrip("+~") in ("data.families", "data.children") and value:
            value = Path(value.replace("\\", "/")).name
        out.append(f"{key}{sep}{_scrub_value(value)}" if sep else o)
    return out


def load_exceptions(experiment: str, exceptions: str | Path | Exceptions | None
                    ) -> Exceptions | None:
    """The exceptions to apply: ``"auto"`` = the experiment's file if any; None = none."""
    if exceptions is None or isinstance(exceptions, Exceptions):
        return exceptions
    if exceptions == "auto":
        p = exceptions_path(experiment)
        return Exceptions.load(p) if p else None
    return Exceptions.load(exceptions)


# --------------------------------------------------------------------------- inputs


def load_described(settings: Any) -> tuple[tuple[Any, dict], dict, dict[str, str]]:
    """Load and validate the inputs once, in memory, sorted by id, and describe them.

    Some results depend on row order at the last bit of floating point (a standard deviation
    summed in file order), so the bundle and verify both run on the rows sorted by
    ``family_id`` / ``child_id``: the same rows in any order give byte-identical outputs. The
    sorting happens in memory: no copy of a record is ever written to disk (the originals are
    read where they are).

    Returns
    -------
    ((Inputs, dict), dict, dict)
        The sorted inputs with their run description (``natexp.pipeline.run(..., data=)``),
        the description that goes into the bundle (and replaces ``results["inputs"]``), and the
        SHA-256 of the real input files' bytes (not in the bundle).
    """
    from dataclasses import asdict, replace

    from natexp.data.rollout import rollout_frame
    from natexp.data.schema import ID_COLUMNS, contract
    from natexp.pipeline import load_data

    tables = contract(settings.get_study())

    rollout = rollout_frame([asdict(a) for a in settings.rollout.areas])
    inputs, desc = load_data(settings, rollout)
    out: dict[str, Any] = {"synthetic": bool(desc["synthetic"])}
    file_hashes: dict[str, str] = {}
    if desc["synthetic"]:
        out["statement"] = desc.get("statement", "")
        out["generator"] = desc.get("generator", {})
        seed = desc.get("generator", {}).get("seed")
        out["regenerate"] = (
            f"python -m natexp synth --out DIR --seed {seed}"
            + ("" if settings.get_study().synthetic.hook else
               " --rollout ROLLOUT.yaml --study STUDY.yaml (the rollout and study of "
               "data/config/resolved_config.json)"))
    frames = {}
    for name in ("families", "children"):
        key = ID_COLUMNS[name]
        frame = getattr(inputs, name).collect().sort(key, maintain_order=True,
                                                     nulls_last=True)
        frames[name] = frame.lazy()
        d: dict[str, Any] = {
            "rows": frame.height,
            "columns": [{"name": c.name, "type": c.kind, "nullable": c.nullable}
                        for c in tables[name]],
            "content_sha256": content_sha256(frame, key),
        }
        if not desc["synthetic"]:
            path = Path(inputs.sources[name])
            d["file"] = path.name
            d["format"] = path.suffix.lstrip(".").lower()
            file_hashes[name] = sha256_file(path)
        out[name] = d
    out["content_checksum"] = (
        "content_sha256 is the SHA-256 of the validated contract columns written as CSV with "
        "the rows sorted by id (family_id, child_id): the same rows in any order or file "
        "format give the same checksum. The SHA-256 of the file bytes is not recorded because "
        "it changes with row order and format.")
    return (replace(inputs, **frames), desc), out, file_hashes


def describe_inputs(settings: Any) -> tuple[dict, dict[str, str]]:
    """Describe the inputs without their records (see :func:`load_described`).

    Returns
    -------
    (dict, dict)
        The description that goes into the bundle (and replaces ``results["inputs"]``), and the
        SHA-256 of the real input files' bytes (not in the bundle).
    """
    _, out, file_hashes = load_described(settings)
    return out, file_hashes


def restore_names(results: Mapping, cfg: Mapping, names: Mapping[str, str]) -> dict:
    """Put the recorded input file names back into a run's results (config and notices)."""
    res = dict(results)
    if isinstance(res.get("config"), Mapping) and isinstance(cfg.get("data"), Mapping):
        data = {**res["config"].get("data", {}),
                **{k: cfg["data"].get(k) for k in ("families", "children")}}
        res["config"] = {**res["config"], "data": data}
    if names and isinstance(res.get("notices"), list):
        res["notices"] = [{**n, "file": names.get(n.get("file"), n.get("file"))}
                          if isinstance(n, Mapping) else n for n in res["notices"]]
    return res


# --------------------------------------------------------------------------- environment


def locked_packages() -> dict[str, str]:
    """Exact versions of natexp's runtime dependencies pinned in its ``requirements.lock``.

    Name -> version, for the packages a run needs (the closure of natexp's requirements; test
    and documentation tools are left out); see :func:`natexp.bundle.code.locked_runtime`.
    """
    return locked_lock_text()[1]


def locked_lock_text() -> tuple[str, dict[str, str]]:
    """The bundle's ``requirements.lock`` text and its pins (empty when natexp has no lock)."""
    from natexp.bundle.code import locked_runtime
    from natexp.paths import LOCK_FILE

    if not LOCK_FILE.is_file():
        return "", {}
    return locked_runtime(LOCK_FILE.read_text(encoding="utf-8"))


def installed_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Installed version of each distribution (None: not installed).

    Examples
    --------
    >>> installed_versions(["no-such-distribution-xyz"])
    {'no-such-distribution-xyz': None}
    """
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def environment() -> dict:
    """Python, platform and package versions of this environment (no host or user names).

    Examples
    --------
    >>> env = environment()
    >>> sorted(env)  # doctest: +NORMALIZE_WHITESPACE
    ['implementation', 'locked', 'natexp', 'natexp_commit', 'natexp_dirty', 'packages',
     'platform', 'python']
    >>> env["packages"]["natexp"] == env["natexp"]
    True
    """
    from natexp import __version__
    from natexp.version import build_info

    locked = locked_packages()
    names = sorted(set(locked) | {"natexp", "bagit", "repro-zipfile"}, key=str.lower)
    info = build_info()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()} {platform.machine()}",
        "natexp": __version__,
        "natexp_commit": info["commit"],
        "natexp_dirty": info["dirty"],
        "packages": installed_versions(names),
        "locked": locked,
    }


def code_payload(arcroot: str, env: Mapping) -> tuple[dict[str, bytes], dict]:
    """natexp's own wheel and the runtime lock for the bag, and what the README says of them.

    Returns
    -------
    (dict, dict)
        Bag path -> bytes (``data/code/<wheel>``, ``data/environment/requirements.lock``),
        and the README context: ``code`` (wheel path, origin, why there is none), ``install``
        (the replicator's commands, run from the folder holding ``arcroot``), ``python_cmd``,
        ``footprint_mb`` (disk used by the installed packages here).
    """
    from natexp.bundle.code import install_footprint_mb, natexp_wheel

    files: dict[str, bytes] = {}
    lock_text, _ = locked_lock_text()
    lock_rel = "data/environment/requirements.lock"
    if lock_text:
        files[lock_rel] = lock_text.encode("utf-8")
    wheel = natexp_wheel()
    wheel_rel = f"data/code/{wheel.name}" if wheel.name else None
    if wheel_rel:
        files[wheel_rel] = wheel.data
    major_minor = ".".join(str(env["python"]).split(".")[:2])
    python_cmd = f"python{major_minor}"
    venv = "natexp-venv"
    install = [f"{python_cmd} -m venv {venv}"]
    if wheel_rel:
        pip = f"{venv}/bin/python -m pip install"
        if lock_text:
            pip += f" -r {arcroot}/{lock_rel}"
        install.append(f"{pip} {arcroot}/{wheel_rel}")
        install.append(f"{venv}/bin/python -m natexp --version")
    install.append(f"{venv}/bin/python -m natexp verify {arcroot}")
    commit = env.get("natexp_commit")
    ctx = {
        "code": {"wheel": wheel_rel, "origin": wheel.origin, "why_not": wheel.why_not,
                 "notes": list(wheel.notes), "commit": commit or "unknown",
                 "dirty": bool(env.get("natexp_dirty")), "lock": lock_rel if lock_text else None},
        "install": install,
        "python_cmd": python_cmd,
        "python_minor": major_minor,
        "venv": venv,
        "footprint_mb": install_footprint_mb(),
    }
    return files, ctx


def runtime_bucket(seconds: float) -> str:
    """The template README's runtime bucket.

    Examples
    --------
    >>> runtime_bucket(3.2), runtime_bucket(4000)
    ('<10 minutes', '1-2 hours')
    """
    for limit, label in RUNTIME_BUCKETS:
        if seconds < limit:
            return label
    return "> 14 days"


# --------------------------------------------------------------------------- payload


def _json_bytes(obj: Any, *, sort_keys: bool = True) -> bytes:
    from natexp.pipeline import json_safe

    return (json.dumps(json_safe(obj), indent=2, sort_keys=sort_keys, allow_nan=False,
                       ensure_ascii=False) + "\n").encode("utf-8")


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()


def render_outputs(
    results: Mapping,
    tables: Mapping[str, pl.DataFrame],
    run_dir: Path | None,
    inputs: Mapping,
    *,
    settings: DisclosureSettings,
    exceptions: Exceptions | None,
) -> tuple[dict[str, bytes], DisclosureLog]:
    """Every output file of the bundle (path under the bag -> bytes) and the disclosure log.

    Shared by :func:`build_bundle` and :func:`natexp.bundle.verify.verify_bundle`, so that a
    re-run is compared with exactly what was published.
    """
    res = dict(results)
    if isinstance(res.get("config"), Mapping):
        res["config"] = scrub_config(res["config"])
    res["inputs"] = dict(inputs)
    from natexp.safety import OUTPUT_MARKER

    skip = {"results.json", OUTPUT_MARKER, *(f"{n}.csv" for n in tables)}
    extra: list[str] = []
    if run_dir is not None and run_dir.is_dir():
        extra = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                       if p.is_file() and p.relative_to(run_dir).as_posix() not in skip)
    pub = publication_mode(res, tables, settings=settings, exceptions=exceptions,
                           files=[f"results/{f}" for f in extra], table_prefix="results/",
                           results_name="results/results.json")
    out: dict[str, bytes] = {"data/results/results.json": _json_bytes(pub.results)}
    for name, frame in sorted(pub.tables.items()):
        out[f"data/results/{name}.csv"] = _csv_bytes(frame)
    withheld = set(pub.withheld_files)
    for f in extra:
        if f"results/{f}" not in withheld and run_dir is not None:
            out[f"data/results/{f}"] = (run_dir / f).read_bytes()
    log = pub.log
    if RENDERERS and pub.status != "fail":
        log = _render(pub, log, out, {f"results/{f}" for f in extra})
    out["data/inputs/inputs.json"] = _json_bytes(pub.results.get("inputs", {}))
    out["data/disclosure/disclosure_log.json"] = _json_bytes(log.to_dict())
    out["data/disclosure/disclosure_log.md"] = log.to_markdown().encode("utf-8")
    if exceptions is not None:
        out["data/disclosure/exceptions.yaml"] = exceptions.text.encode("utf-8")
    return out, log


def _render(pub: Any, log: DisclosureLog, out: dict[str, bytes], produced: set[str]
            ) -> DisclosureLog:
    """Run the registered renderers on the cleared results; their files replace the run's."""
    from natexp.bundle.disclosure import OutputCheck

    claims: dict[str, Mapping[str, Any]] = {}
    written: dict[str, bytes] = {}
    from natexp.safety import STAGING_MARKER

    tmp = staging_dir(tempfile.gettempdir(), "natexp-render-")
    try:
        for render in RENDERERS:
            for rel, check in (render(pub.results, pub.tables, tmp) or {}).items():
                claims[f"results/{rel}"] = check
        for p in sorted(tmp.rglob("*")):
            if p.is_file() and p.name != STAGING_MARKER:
                written[f"results/{p.relative_to(tmp).as_posix()}"] = p.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    replaced = set(written) | {name for name, c in claims.items() if c.get("withheld")}
    outputs = [o for o in log.outputs if o.output not in replaced]
    for name in sorted(replaced):
        out.pop(f"data/{name}", None)
        if name in written:
            out[f"data/{name}"] = written[name]
            c = claims.get(name, {})
            outputs.append(OutputCheck(name, str(c.get("status", "pass")), tuple(
                c.get("reasons") or ("built by a registered renderer from the cleared results "
                                     "only",))))
        elif name in produced:  # the run drew it; in publication mode it is withheld
            c = claims[name]
            outputs.append(OutputCheck(name, str(c.get("status", "review")),
                                       tuple(c.get("reasons") or ()), withheld=True))
    cells = dict(log.cells)
    cells["withheld_files"] = sorted(o.output for o in outputs if o.withheld
                                     and not o.output.endswith((".csv", ".json")))
    return DisclosureLog(log.settings, tuple(outputs), cells, log.exceptions)


#: Outputs verify regenerates and compares (everything else is description).
def is_output(rel: str) -> bool:
    """True for bag paths that verify regenerates and compares.

    Examples
    --------
    >>> is_output("data/results/flow.csv"), is_output("data/environment/environment.json")
    (True, False)
    """
    return rel.startswith(("data/results/", "data/disclosure/", "data/inputs/"))


# --------------------------------------------------------------------------- README


def _readme(ctx: dict) -> bytes:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
    )
    return env.get_template("README.md.j2").render(**ctx).encode("utf-8")


#: Where the bag records what its README says of natexp's own code (see :func:`code_payload`).
CODE_CONTEXT = "data/environment/code.json"


def readme(*, experiment: str, description: str, overrides: Sequence[str], config: Mapping,
           inputs: Mapping, env: Mapping, log: DisclosureLog, bucket: str,
           code: Mapping | None = None) -> bytes:
    """The bundle's README (template README of the Social Science Data Editors).

    Built only from what the bundle publishes: the CLEARED input description (a row count
    that disclosure control suppressed reads ``[c]`` here too), the scrubbed config and
    overrides, the recorded environment and the disclosure log. ``verify`` regenerates it from
    the same parts and compares. ``code`` is :func:`code_payload`'s README context (natexp's
    wheel and the install commands), recorded in the bag as :data:`CODE_CONTEXT`.
    """
    outputs = sorted((o for o in log.outputs if not o.withheld), key=lambda o: o.output)
    if code is None:
        code = {"code": {"wheel": None, "origin": "", "notes": [], "lock": None,
                         "why_not": "this package does not record how its code was shipped",
                         "commit": env.get("natexp_commit") or "unknown",
                         "dirty": bool(env.get("natexp_dirty"))},
                "install": ["python3 -m venv natexp-venv",
                            f"natexp-venv/bin/python -m natexp verify {experiment}-replication"],
                "python_cmd": "python3", "python_minor": "3", "venv": "natexp-venv",
                "footprint_mb": "(not recorded)"}
    study = Study.from_dict(config.get("study")) if isinstance(config.get("study"), Mapping) \
        else Study()
    ctx = {
        "experiment": experiment,
        "description": description,
        "natexp_version": env["natexp"],
        "command": " ".join(["python -m natexp bundle", *overrides]),
        "overrides": list(overrides),
        "inputs": inputs,
        "data_holders": data_holders(study),
        "programme": study.programme,
        "source": " ".join(study.source.split()),
        "env": env,
        "locked": sorted(env["locked"].items(), key=lambda kv: kv[0].lower()),
        "seeds": sorted(_seeds(config)),
        "runtime_bucket": bucket,
        "buckets": [b for _, b in RUNTIME_BUCKETS] + ["> 14 days"],
        "outputs": [{"name": o.output, "status": o.status,
                     "code": _source(o.output, study)[0],
                     "config": _source(o.output, study)[1]}
                    for o in outputs],
        "withheld": sorted(o.output for o in log.outputs if o.withheld),
        "log": log,
        "cells": log.cells,
        "exceptions": log.exceptions,
        "arcroot": f"{experiment}-replication",
        **code,
    }
    return _readme(ctx)


def readme_bucket(text: str) -> str | None:
    r"""The runtime bucket ticked in a bundle README (the one fact verify cannot re-measure).

    Examples
    --------
    >>> readme_bucket("- [ ] <10 minutes\n- [x] 10-60 minutes\n")
    '10-60 minutes'
    """
    labels = {b for _, b in RUNTIME_BUCKETS} | {"> 14 days"}
    for line in text.splitlines():
        if line.startswith("- [x] ") and line[6:].strip() in labels:
            return line[6:].strip()
    return None


def _seeds(cfg: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out += _seeds(v, key + ".")
        elif "seed" in str(k):
            out.append((key, v))
    return out


def _source(output: str, study: Study) -> tuple[str, str]:
    if output.startswith("results/figures/") or output in ("results/report.html",
                                                          "results/report.md"):
        return ("natexp.report.render.write_publication_report (publication mode: from the "
                "cleared results)", "report.enabled")
    stem = Path(output).name
    if stem.endswith(".csv"):
        stem = stem[:-4]
    sources = output_sources(study)
    return sources.get(stem, sources.get(Path(output).name, (
        "natexp.pipeline.run (written by the run)", "the whole resolved config")))


# --------------------------------------------------------------------------- build


def _forbidden_strings(paths: Sequence[Path]) -> list[str]:
    out = {str(Path.cwd()), str(Path.home()), tempfile.gettempdir() + os.sep}
    for p in paths:
        out.add(str(Path(p).resolve().parent))
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name to look for
        user = ""
    if user:
        out |= {f"/{user}/", f"\\{user}\\", f"/home/{user}"}
    return sorted(s for s in out if len(s) > 1 and s not in ("/", "\\"))


def _guard(bag: Path, forbidden: Sequence[str]) -> None:
    for p in sorted(bag.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        for s in forbidden:
            if s.encode("utf-8") in data:
                raise BundleError(f"internal error: {p.relative_to(bag).as_posix()} contains a "
                                  "machine path or user name; nothing was written")


def _place(src: Path, target: Path) -> None:
    """Move ``src`` to ``target`` atomically, never replacing an existing file."""
    try:
        os.link(src, target)
    except FileExistsError:
        raise BundleError(f"{target.name} already exists: not overwritten") from None
    except OSError:  # no hard links on this filesystem: check, then rename
        if target.exists():
            raise BundleError(f"{target.name} already exists: not overwritten") from None
        os.replace(src, target)
        return
    src.unlink()


def build_bundle(
    overrides: Sequence[str],
    out: str | Path | None = None,
    *,
    disclosure: DisclosureSettings | None = None,
    exceptions: str | Path | Exceptions | None = "auto",
    echo: Callable[[str], None] | None = None,
) -> BundleResult:
    """Run an experiment and write its replication bundle.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, e.g. ``["+experiment=oxon_vs_rest"]``.
    out : str or Path, optional
        The zip to write (default ``<experiment>-replication.zip``). Never overwritten.
    disclosure : DisclosureSettings, optional
        Threshold (default 10, floor 3), zeros, suppression.
    exceptions : "auto", path, Exceptions or None
        ``"auto"``: ``experiments/<experiment>/disclosure_exceptions.yaml`` when present.
    echo : callable, optional
        Receives progress lines (default: silent).

    Returns
    -------
    BundleResult

    Raises
    ------
    BundleError
        Existing target, configuration that cannot be composed, invalid input.
    DisclosureFailure
        An output failed disclosure control (nothing written).

    Examples
    --------
    >>> import tempfile, pathlib, zipfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> res = build_bundle(["+experiment=oxon_vs_rest"], d / "b.zip")  # doctest: +SKIP
    >>> "oxon_vs_rest-replication/README.md" in zipfile.ZipFile(res.path).namelist()
    ... # doctest: +SKIP
    True
    """
    from natexp.config import ConfigError, to_settings
    from natexp.data.validate import InputValidationError
    from natexp.pipeline import run

    say = echo or (lambda _s: None)
    disclosure = disclosure or DisclosureSettings()
    try:
        cfg = resolve_config(overrides)
        settings = to_settings(cfg)
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    experiment = settings.experiment
    target = Path(out) if out is not None else Path(f"{experiment}-replication.zip")
    if target.exists():
        raise BundleError(f"{target.name} already exists: not overwritten")
    exc_obj = load_exceptions(experiment, exceptions)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent)  # staging folders of bundles killed outright (SIGKILL)
    sweep_stale(tempfile.gettempdir())
    stage = staging_dir(target.parent, f".{target.name}.staging-")
    data_paths = [Path(p) for p in (settings.data.families, settings.data.children) if p]
    try:
        say(f"running {experiment} ...")
        t0 = time.perf_counter()
        try:
            # read and validated where they are, sorted in memory: no copy on disk
            data, inputs, file_hashes = load_described(settings)
            checkpoint("bundle.loaded")
            result = run(cfg, output_dir=stage / "run", write=True, data=data)
        except (InputValidationError, ConfigError, OutputDirError) as exc:
            raise BundleError(str(exc)) from None
        checkpoint("bundle.ran")
        runtime = time.perf_counter() - t0
        say(f"analysis ran in {runtime:.1f} s; applying disclosure control ...")
        results = restore_names(result.results, scrub_config(cfg), {})
        files, log = render_outputs(results, result.tables, stage / "run", inputs,
                                    settings=disclosure, exceptions=exc_obj)
        if log.status == "fail":
            raise DisclosureFailure(log)
        arcroot = f"{experiment}-replication"
        bag = stage / "bag"
        for rel, data in files.items():
            (bag / rel).parent.mkdir(parents=True, exist_ok=True)
            (bag / rel).write_bytes(data)
        env = environment()
        scrubbed = scrub_config(cfg)
        ovr = scrub_overrides(overrides)
        extra_files = {
            # in the config's own key order: a study's mappings (labels, cells) are ordered, and
            # verify must run the same config (deterministic: the composition order is fixed)
            "data/config/resolved_config.json": _json_bytes(scrubbed, sort_keys=False),
            "data/config/overrides.txt": ("\n".join(ovr) + "\n").encode("utf-8"),
            "data/environment/environment.json": _json_bytes(env),
        }
        code_files, code_ctx = code_payload(arcroot, env)
        extra_files.update(code_files)
        # What the README says of the code (wheel, install commands, measured disk use), kept
        # so that verify regenerates the same README on another machine.
        extra_files[CODE_CONTEXT] = _json_bytes(code_ctx)
        for rel, data in extra_files.items():
            (bag / rel).parent.mkdir(parents=True, exist_ok=True)
            (bag / rel).write_bytes(data)
        (bag / "README.md").write_bytes(readme(
            experiment=experiment, description=settings.description, overrides=ovr,
            config=scrubbed, inputs=json.loads(files["data/inputs/inputs.json"]), env=env,
            log=log, bucket=runtime_bucket(runtime), code=code_ctx))
        checkpoint("bundle.bagged")
        write_bag_files(bag, {
            "External-Description": f"natexp replication bundle of experiment {experiment}",
            "External-Identifier": arcroot,
            "Bag-Software-Agent": f"natexp {env['natexp']}",
        })
        _guard(bag, _forbidden_strings([stage, *data_paths]))
        write_zip(bag, stage / "bundle.zip", arcroot)
        checkpoint("bundle.zipped")
        _place(stage / "bundle.zip", target)
        say(f"wrote {target}")
        names = sorted(p.relative_to(bag).as_posix() for p in bag.rglob("*") if p.is_file())
        return BundleResult(target, log, runtime, names, file_hashes)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _print_err(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def exception_summary(exc: BaseException) -> str:
    """One message for a bundle error, never a record value."""
    return str(exc) if isinstance(exc, BundleError | DisclosureError) else type(exc).__name__
