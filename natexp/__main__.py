"""``python -m natexp COMMAND ...``: the command-line entry point.

Hydra has no sub-commands, so the command is taken off argv here and the rest is handed on:
``run`` to the Hydra entry point in :mod:`natexp.cli`, the others to plain argparse parsers.
"""

from __future__ import annotations

import sys

HELP = """\
usage: python -m natexp COMMAND [ARGS]

Evaluate a programme that went live area by area as a natural experiment.

commands:
  run [OVERRIDES]      run an experiment (Hydra): flow, cohort, analyses, results.json
                         python -m natexp run +experiment=oxon_vs_rest
                         python -m natexp run +experiment=oxon_vs_rest design.window_end=2024-03-31
                         python -m natexp run +experiment=oxon_vs_rest data.families=F.parquet data.children=C.parquet
                         python -m natexp run --multirun +experiment=oxon_vs_rest design=oxon_vs_rest,staggered
                       With no data paths the embedded SYNTHETIC dataset is used.
                       'python -m natexp run --help' shows Hydra's options and the config.
  synth --out DIR      write SYNTHETIC data (families, children) in the input contract for a
                       rollout and a study (default: the default config's), by the study's hook
                       or natexp's generic generator
                         [--rollout FILE] [--study FILE] [--study-dir DIR] [--design FILE]
                         [--seed S] [--families N] [--format parquet|csv|xlsx] [--uptake-effect E]
                         [--no-followup]
  speccurve SWEEP_DIR  one specification-curve table and figure across the runs of a sweep
                         python -m natexp run --multirun +experiment=oxon_vs_rest hydra/launcher=joblib \\
                             design=oxon_vs_rest,staggered design.custody_at_followup=true,false
                         python -m natexp speccurve multirun/oxon_vs_rest
  power [OVERRIDES]    simulated power of the rollout and design for a planned study (Hydra;
                       section power_sim; --multirun and launchers as for run)
                         python -m natexp power +experiment=oxon_vs_rest power_sim.icc=0.02
                         python -m natexp power --multirun +experiment=oxon_vs_rest \
                             power_sim.effect=0.05,0.1,0.2 power_sim.seed=1,2
  powercurve SWEEP_DIR pool a power sweep's jobs into power_curve.csv
  table X1 N1 X2 N2    the whole 2x2 panel for treated X1/N1 vs control X2/N2
                         [--confidence-level 0.95] [--alternative two-sided|less|greater] [--json]
  bundle [OVERRIDES] [--out PATH]
                       a peer-review replication bundle (one zip; disclosure-controlled)
                         python -m natexp bundle +experiment=oxon_vs_rest --out oxon_vs_rest.zip
  verify BUNDLE        re-run a bundle; 'matches' or 'differs' per output and for its README
                         [--data-families PATH --data-children PATH] for real inputs
  new-study NAME --out DIR
                       scaffold a study outside the repository: DIR/conf/{study,rollout,design,
                       assignment,experiment}/NAME.yaml and DIR/experiments/NAME/ (docs/new-study.md)
                         python -m natexp new-study my_study --out my-evaluation
                         cd my-evaluation && python -m natexp run --config-dir conf +experiment=my_study
  --version            the natexp version and the commit it was built from

A study kept outside the repository: give its config folder to run, power and bundle with
--config-dir DIR (its experiments/ folder beside DIR is then found too; or list study folders
in NATEXP_EXPERIMENTS_PATH).

exit status: 0 success, 2 bad input or configuration (nothing is written), 3 verify found
differences, 1 internal error.
"""

COMMANDS = ("run", "synth", "speccurve", "power", "powercurve", "table", "bundle", "verify",
            "new-study")


def main(argv: list[str] | None = None) -> int:
    """Dispatch a command; return its exit status.

    SIGTERM and SIGHUP unwind the command like Ctrl-C does, so that its temporary and staging
    folders are removed (exit status 128 + the signal number).
    """
    from natexp.safety import Terminated, cleanup_on_signals

    try:
        with cleanup_on_signals():
            return _dispatch(argv)
    except Terminated as exc:
        print(f"natexp: stopped by signal {exc.signum}; its temporary files were removed.",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("natexp: interrupted; its temporary files were removed.", file=sys.stderr)
        return 130


def _dispatch(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(HELP, end="")
        return 0
    if argv[0] in ("-V", "--version", "version"):
        from natexp.version import version_text

        print(version_text())
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("run", "power", "bundle"):
        rest = _config_dirs(command, rest)
    if command == "new-study":
        from natexp.newstudy import main as new_study_main

        return new_study_main(rest)
    if command == "run":
        from natexp.cli import run_main

        return run_main(rest)
    if command == "synth":
        from natexp.cli import synth_main

        return synth_main(rest)
    if command == "speccurve":
        from natexp.cli import speccurve_main

        return speccurve_main(rest)
    if command == "power":
        from natexp.cli import power_main

        return power_main(rest)
    if command == "powercurve":
        from natexp.cli import powercurve_main

        return powercurve_main(rest)
    if command == "bundle":
        from natexp.bundle.cli import bundle_main

        return bundle_main(rest)
    if command == "verify":
        from natexp.bundle.cli import verify_main

        return verify_main(rest)
    if command == "table":
        from natexp.cli_table import main as table_main

        return table_main(rest)
    print(f"natexp: unknown command {command!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
    print("run 'python -m natexp --help' for usage", file=sys.stderr)
    return 2


def _config_dirs(command: str, args: list[str]) -> list[str]:
    """A user's config folder (``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``): its
    sibling ``experiments/`` is searched for the study's folder (:mod:`natexp.paths`), and for
    ``bundle``, which composes with Hydra's compose API, ``--config-dir DIR`` becomes the
    equivalent ``hydra.searchpath`` override (relative to the working folder when inside it, so
    that no machine path is recorded)."""
    import os

    from natexp.paths import config_dirs_in, use_config_dirs

    use_config_dirs(config_dirs_in(args))
    if command != "bundle":
        return args
    out, i = [], 0
    while i < len(args):
        key, eq, value = args[i].partition("=")
        if key in ("--config-dir", "-cd"):
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            path = os.path.abspath(value)
            rel = os.path.relpath(path)
            out.append(f"hydra.searchpath=[file://{path if rel.startswith('..') else rel}]")
        else:
            out.append(args[i])
        i += 1
    return out


def cli() -> None:
    """The ``natexp`` command: :func:`main`, then :func:`exit_now` with its status.

    The process's garbage collector runs less often (:func:`natexp.workers.tune_gc`).
    """
    from natexp.workers import tune_gc

    tune_gc()
    exit_now(main())


def exit_now(status: int) -> None:
    """End the process with ``status`` without the interpreter's module teardown.

    After a run, Python spends about half a second freeing every module it imported (numpy,
    pandas, scipy, plotnine, ...). This runs what a normal exit would run that has an effect
    (the ``atexit`` handlers, which flush and close logging and remove any temporary folder
    registered for removal), flushes stdout and stderr, and leaves with ``os._exit``. When a
    non-daemon thread is still running, the normal exit (which waits for it) is used instead.
    """
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.exit(status)
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing left to flush
                pass
        os._exit(status if isinstance(status, int) else 1)


if __name__ == "__main__":
    cli()
