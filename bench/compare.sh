#!/usr/bin/env bash
# flowline against PyTorch on the headline workloads, alternately in one run: a table of
# medians, ratios, peak memory, results and NFE. Usage: bench/compare.sh [WORKLOAD...]
# FLOWLINE_BENCH_PYTHON: a Python with torch and torchdiffeq (default python3);
# ROUNDS: runs per side (default 5); FLOWLINE_DATA: the data folder (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench workloads -- "$@"
