#!/usr/bin/env bash
# Run every natexp benchmark from a fresh clone and write the result tables to bench/results/.
#
#   bash bench/run_all.sh            # everything (about 15-30 minutes on 2 cores; ~6 GB of RAM
#                                    # while the data are generated, ~1.6 GB of disk in bench/data)
#   PYTHON=/path/to/python bash bench/run_all.sh
#
# Needs natexp installed with its dev extra (duckdb): pip install -e '.[dev]'.
# Peak memory is read with GNU time (/usr/bin/time, Debian package "time") when present, else
# with getrusage; the streaming demonstration needs prlimit (util-linux).
# Data (git-ignored) are generated once and reused: delete bench/data/ to start again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import natexp, duckdb, pandas" 2>/dev/null || {
    echo "run_all.sh: needs natexp, pandas and duckdb in $PYTHON (pip install -e '.[dev]')" >&2
    exit 2
}
command -v prlimit >/dev/null || { echo "run_all.sh: needs prlimit (util-linux)" >&2; exit 2; }

mkdir -p bench/data bench/results
echo "== data"
for n in 1000000 10000000; do
    if [[ ! -f "bench/data/n$n/families.parquet" ]]; then
        "$PYTHON" -m natexp synth --out "bench/data/n$n" --families "$n"
    fi
done
# 100 million families in 10 files of 10 million, one file in memory at a time.
"$PYTHON" bench/bench_cohort.py make-big --out bench/data/big --parts 10 \
    --families-per-part 10000000

echo "== cohort build: natexp vs pandas vs DuckDB"
"$PYTHON" bench/bench_cohort.py compare --data bench/data/n1000000 \
    --out bench/results/cohort_n1000000.md
"$PYTHON" bench/bench_cohort.py compare --data bench/data/n10000000 \
    --out bench/results/cohort_n10000000.md

echo "== streaming beyond a memory limit"
"$PYTHON" bench/bench_cohort.py stream --source 'bench/data/big/families-*.parquet' \
    --small bench/data/n10000000 --limit 2G --out bench/results/cohort_streaming.md

echo "== end-to-end run vs bare imports"
"$PYTHON" bench/bench_cohort.py e2e --repeats 5 --out bench/results/e2e.md

# Every other benchmark script (bench/bench_*.py) prints its own Markdown table.
for script in bench/bench_*.py; do
    name=$(basename "$script" .py)
    name=${name#bench_}
    [[ "$name" == cohort ]] && continue
    echo "== $name"
    {
        echo "## bench/$(basename "$script")"
        echo
        echo "Command: \`python $script\` ($(date -Iseconds), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
        echo
        "$PYTHON" "$script" | sed '/^  done: /d'
    } > "bench/results/$name.md.tmp"
    mv "bench/results/$name.md.tmp" "bench/results/$name.md"
done
echo "done: bench/results/"
ls -l bench/results/
