"""Command implementations that need Hydra (``run``) and the ``synth`` command.

One of the two modules that know Hydra (with ``config.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from natexp.config import CONF_DIR, ConfigError, register, unknown_key_message

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


def _hydra_command(prog: str, args: list[str], task, usage_errors) -> int:
    """Run ``task(cfg, hydra_config)`` as a Hydra app (``hydra.main``), as ``prog ARGS``.

    ``usage_errors`` (a tuple of exception types, or a function returning one, so that their
    modules are imported only once the config is composed) raised by the task are reported
    (exit 2, "nothing was written"); a config that cannot be composed is exit 2 too. The task
    returns nothing, so the job results that launchers pickle (submitit, Ray) hold no run data.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    register()
    # overrides only: options and their values (--config-dir DIR, -cn NAME) are Hydra's
    message = unknown_key_message([a for a in args if not a.startswith("-")
                                   and ("=" in a or a.startswith("~"))])
    if message is not None:
        print(f"natexp: {message}", file=sys.stderr)
        print("natexp: nothing was written.", file=sys.stderr)
        return EXIT_USAGE
    state = {"started": False, "status": EXIT_OK}

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
    def _task(cfg) -> None:
        state["started"] = True
        errors = usage_errors() if callable(usage_errors) else usage_errors
        try:
            task(cfg, HydraConfig.get())
        except errors as exc:
            print(f"natexp: {exc}", file=sys.stderr)
            print("natexp: nothing was written.", file=sys.stderr)
            state["status"] = max(state["status"], EXIT_USAGE)

    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        _task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_INTERNAL
        if code and not state["started"]:
            print("natexp: the configuration could not be composed (see above); "
                  "nothing was written.", file=sys.stderr)
            return EXIT_USAGE
        return code or state["status"]
    finally:
        sys.argv = saved
    return state["status"]


def _job_output(cfg, hc, default: Path) -> tuple[Path, tuple[str, ...]]:
    """Where a command writes: ``output_dir``, else the sweep job's folder in a multirun (with
    the entries Hydra itself may write there, tolerated), else ``default``."""
    from hydra.types import RunMode

    if cfg.output_dir is not None:
        return Path(cfg.output_dir), ()
    if hc.mode == RunMode.MULTIRUN:
        return Path(hc.runtime.output_dir), (".hydra", f"{hc.job.name}.log")
    return default, ()


def run_main(args: list[str]) -> int:
    """``python -m natexp run [OVERRIDES]`` through ``hydra.main``.

    Returns 2 when the config cannot be composed (unknown key, bad value), the input is
    invalid or the output folder cannot be used (not natexp's, locked by another run,
    read-only, full); in each case nothing is written.
    """
    def usage_errors() -> tuple[type[BaseException], ...]:
        from natexp.data.validate import InputValidationError
        from natexp.safety import OutputDirError

        return (InputValidationError, ConfigError, OutputDirError)

    def task(cfg, hc) -> None:
        from natexp.workers import helper_modules, pool

        # The helper process starts as soon as the config says what it is for, so that its
        # imports (DoWhy, plotnine) overlap with this process's (natexp.pipeline, scipy).
        warm = helper_modules(dowhy=bool(cfg.sensitivity.enabled and cfg.sensitivity.dowhy),
                              figures=bool(cfg.report.enabled))
        with pool(warm=warm, active=bool(warm)):
            from natexp.pipeline import run

            out, tolerate = _job_output(cfg, hc, Path("outputs") / str(cfg.experiment))
            result = run(cfg, output_dir=out, tolerate=tolerate)
        print(result.summary())
        for notice in result.notices:
            print(f"notice: {notice}")

    # The helper process starts before Hydra composes the config (about a second), importing
    # what DoWhy and the figures both need; the task tells it the rest. Not when the overrides
    # switch the report off (light runs: usually nothing for a helper to do).
    from natexp.workers import EARLY_MODULES, pool

    with pool(warm=EARLY_MODULES, active=not _report_off(args)):
        return _hydra_command("python -m natexp run", args, task, usage_errors)


def _report_off(args: list[str]) -> bool:
    """Whether the overrides switch the report off (``report.enabled=false``).

    Examples
    --------
    >>> _report_off(["+experiment=x", "report.enabled=False"]), _report_off(["+experiment=x"])
    (True, False)
    """
    return any(a.split("=", 1)[0].lstrip("+~") == "report.enabled"
               and a.split("=", 1)[-1].strip().lower() in {"false", "0", "no", "off"}
               for a in args if "=" in a)


def synth_main(args: list[str]) -> int:
    """``python -m natexp synth --out DIR [--rollout FILE] [--study FILE] [--design FILE] ...``.

    Writes SYNTHETIC ``families`` and ``children`` tables for a rollout and a study (default:
    the ones ``conf/config.yaml`` selects): the study's own hook makes them when it declares
    one, natexp's generic generator otherwise (docs/synthetic.md). Exit 2, nothing written, on
    a bad file or argument.
    """
    import yaml

    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import write
    from natexp.errors import NatexpError

    parser = argparse.ArgumentParser(
        prog="python -m natexp synth",
        description="Write SYNTHETIC input data (families and children tables in the input "
        "contract) for a rollout and a study. The study's own hook makes them when it "
        "declares one (the example study's margins equal its report's published tables); "
        "otherwise natexp's generic generator draws families over the rollout's areas and "
        "dates with the study's columns.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--rollout", type=Path, default=None,
                        help="rollout YAML (like conf/rollout/*.yaml); default: the default "
                        "config's rollout")
    parser.add_argument("--study", type=Path, default=None,
                        help="study description YAML (like conf/study/*.yaml); default: the "
                        "default config's study")
    parser.add_argument("--study-dir", type=Path, default=None,
                        help="the study's folder, where its synthetic.hook file is (default: "
                        "experiments/<study name>/)")
    parser.add_argument("--design", type=Path, default=None,
                        help="design YAML (like conf/design/*.yaml): the generic generator "
                        "covers its window and calls its cohort at follow-up")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--families", type=int, default=None, help="number of families")
    parser.add_argument("--format", choices=("parquet", "csv", "xlsx"), default="parquet")
    parser.add_argument("--uptake-effect", type=float, default=0.10,
                        help="true effect of go-live on uptake probability")
    parser.add_argument("--no-followup", action="store_true",
                        help="no follow-up call list (every follow-up column null)")
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK

    def read_yaml(path: Path, what: str) -> object:
        try:
            with open(path, encoding="utf-8") as fh:
                return yaml.safe_load(fh)
        except OSError as exc:
            raise ConfigError(f"{what} {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError:
            raise ConfigError(f"{what} {path}: not valid YAML") from None

    try:
        kw: dict = {}
        if ns.rollout is not None:
            if not ns.rollout.is_file():
                raise ConfigError(f"rollout {ns.rollout}: no such file")
            kw["rollout"] = load_rollout(ns.rollout)
        if ns.study is not None:
            from natexp.study import Study

            kw["study"] = Study.from_dict(read_yaml(ns.study, "study"))
        if ns.design is not None:
            from dataclasses import fields

            from natexp.config import DesignConfig

            doc = read_yaml(ns.design, "design")
            if not isinstance(doc, dict):
                raise ConfigError(f"design {ns.design}: must be a mapping")
            allowed = {f.name for f in fields(DesignConfig)}
            unknown = sorted(set(doc) - allowed)
            if unknown:
                raise ConfigError(f"design {ns.design}: unknown key(s) {unknown}")
            kw["design"] = DesignConfig(**doc).to_design()
        paths = write(ns.out, seed=ns.seed, n_families=ns.families, fmt=ns.format,
                      uptake_effect=ns.uptake_effect, followup=not ns.no_followup,
                      study_dir=ns.study_dir, **kw)
    except NatexpError as exc:
        print(f"natexp synth: {exc}", file=sys.stderr)
        print("natexp synth: nothing was written.", file=sys.stderr)
        return EXIT_USAGE
    print("SYNTHETIC DATA (every record invented, none of a real family):")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return EXIT_OK


def speccurve_main(args: list[str]) -> int:
    """``python -m natexp speccurve SWEEP_DIR [--out DIR]``: one specification-curve table and
    figure across the runs of a Hydra multirun sweep."""
    from natexp.report.figures import fig_specification_curve, save_png
    from natexp.speccurve import collect_multirun

    parser = argparse.ArgumentParser(
        prog="python -m natexp speccurve",
        description="Summarise a multirun sweep (python -m natexp run --multirun ...) as one "
        "specification-curve table (specification_curve.csv) and figure "
        "(specification_curve.png).",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder, e.g. multirun/oxon_vs_rest")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: sweep_dir)")
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        table = collect_multirun(ns.sweep_dir)
    except FileNotFoundError as exc:
        print(f"natexp speccurve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = ns.out or ns.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    table.write_csv(out / "specification_curve.csv")
    save_png(fig_specification_curve(table.drop("job", "method", "note")),
             out / "specification_curve.png")
    print(f"{table.height} specifications: {out / 'specification_curve.csv'}, "
          f"{out / 'specification_curve.png'}")
    return EXIT_OK


def power_main(args: list[str]) -> int:
    """``python -m natexp power [OVERRIDES]``: simulated power of the configured rollout and
    design (config section ``power_sim``), through ``hydra.main`` so that ``--multirun`` and
    every Hydra launcher (joblib, submitit, Ray) work as for ``run``. The output folder is
    checked, locked and written as ``run``'s (never a folder natexp did not write)."""
    from natexp.causal.result import InvalidInputError
    from natexp.planning import plan_power, write_power
    from natexp.safety import OutputDirError

    def task(cfg, hc) -> None:
        from natexp.pipeline import _Output

        out, tolerate = _job_output(cfg, hc, Path("outputs") / f"{cfg.experiment}-power")
        output = _Output(out, tolerate)  # refused or locked before the simulation
        try:
            plan = plan_power(cfg)
            paths = write_power(plan, output)
        finally:
            output.release()
        print(plan.summary())
        print("Outputs: " + ", ".join(str(p) for p in paths))

    if not any(a.startswith("hydra.sweep.dir=") for a in args):
        # A power sweep gets its own folder, apart from the experiment's run sweeps.
        args = [*args, "hydra.sweep.dir=multirun/${experiment}-power"]
    return _hydra_command("python -m natexp power", args, task,
                          (ConfigError, InvalidInputError, OutputDirError))


def powercurve_main(args: list[str]) -> int:
    """``python -m natexp powercurve SWEEP_DIR [--out DIR]``: pool a power sweep's jobs."""
    from natexp.planning import collect_power

    parser = argparse.ArgumentParser(
        prog="python -m natexp powercurve",
        description="Pool the jobs of a power sweep (python -m natexp power --multirun ...) "
        "into power_curve.csv: one row per scenario and analysis; jobs that differ only in "
        "power_sim.seed are pooled (their simulations added).",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: sweep_dir)")
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        table = collect_power(ns.sweep_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"natexp powercurve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = ns.out or ns.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    table.write_csv(out / "power_curve.csv")
    with_text = table.select("effect", "icc", "analysis", "jobs", "n_simulations", "power",
                             "ci_low", "ci_high")
    for row in with_text.iter_rows(named=True):
        print(f"effect {row['effect']:+g}, ICC {row['icc']:g}, {row['analysis']}: power "
              f"{row['power']:.3f} ({row['ci_low']:.3f} to {row['ci_high']:.3f}; "
              f"{row['n_simulations']} simulations in {row['jobs']} job(s))")
    print(f"{table.height} rows: {out / 'power_curve.csv'}")
    return EXIT_OK
