#!/usr/bin/env bash
# The CUDA checks, on a machine with a GPU, in under 10 minutes: the device-generic tests
# (tests/devices.rs: kernels, composed ops and CUDA agree on a training step, a neural ODE
# and the quickstart pipeline), the quickstart on `--device cuda`, and the benchmark
# workloads on the GPU for both sides (flowline built with `cuda`, PyTorch).
#
# Build on any machine first with scripts/cuda_build.sh, which stages the binaries, the MNIST
# test files and the trained model in target-cuda/gpu/; run this from the checkout's root
# with that folder present (the device tool: carry target-cuda/gpu). It needs the CUDA 13
# libraries (cuBLAS, cuRAND, NVRTC, the runtime), found in the machine's PyTorch wheels or
# the system's.
# Logs (five files) go to $OUT (default /tmp/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
staged=${FLOWLINE_GPU_BUILD:-target-cuda/gpu}
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
[ -f "$staged/flowline.xz" ] || { echo "no $staged/flowline.xz: run scripts/cuda_build.sh first" >&2; exit 2; }
gpu=$(mktemp -d)
# Python's lzma, not xz: the GPU image is not known to carry xz, it does carry Python.
for b in flowline devices workloads; do
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$staged/$b.xz" "$gpu/$b" && chmod +x "$gpu/$b"
done

# The libraries flowline links against, from wherever this machine's Python keeps them.
libs=$(python3 - <<'PY' 2>/dev/null
import glob, os, site, sys
dirs = set()
for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    for name in ("libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnvrtc.so.13", "libcudart.so.13"):
        for f in glob.glob(os.path.join(base, "nvidia", "**", name), recursive=True):
            dirs.add(os.path.dirname(f))
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="${libs:+$libs:}${LD_LIBRARY_PATH:-}"
export FLOWLINE_ROOT=$PWD FLOWLINE_DATA=$staged/data FLOWLINE_BENCH_MODEL=$staged/data/model.safetensors
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
nvidia-smi -L | tee "$out/gpu.txt"
status=0

echo "== device-generic tests" | tee "$out/devices.log"
timeout 240 "$gpu/devices" --test-threads 1 --nocapture 2>&1 | tee -a "$out/devices.log" || status=1

echo "== quickstart (smoke) on cuda" | tee "$out/quickstart.log"
timeout 120 "$gpu/flowline" run pipelines/quickstart.flow --profile smoke --device cuda --out "$gpu/quickstart" \
    2>&1 | tee -a "$out/quickstart.log" || status=1
# Only the report comes back (the device tool returns at most 8 files).
cp "$gpu/quickstart/report.yaml" "$out/quickstart_report.yaml" 2>/dev/null || true

echo "== workloads on the GPU, flowline and PyTorch" | tee "$out/workloads.log"
for w in convnet_step example_step inference mlp_step node_rk4 node_dopri5 logbarrier; do
    FLOWLINE_BENCH_DEVICE=cuda FLOWLINE_BENCH_PYTHON=python3 ROUNDS=${ROUNDS:-3} timeout 150 "$gpu/workloads" "$w" \
        2>&1 | tee -a "$out/workloads.log" || status=1
done
exit $status
