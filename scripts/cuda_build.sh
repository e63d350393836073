#!/usr/bin/env bash
# Builds flowline with `--features cuda` on a machine that has no GPU and no CUDA install,
# so that the CUDA path is compiled and type-checked anywhere (it is not part of CI's default
# path: it downloads ~1.5 GB of NVIDIA wheels and compiles candle's kernels, ~15 min here).
#
# The toolkit comes from the Python package registry: nvidia-cuda-nvcc carries nvcc and the
# headers, the runtime/nvrtc/cublas/curand wheels the libraries candle links against. The
# version defaults to 13.0, the CUDA version of the driver on the GPU machines we are lent
# (PTX from a newer nvcc does not load on an older driver); every part is pinned, nvcc's own
# dependencies (nvvm, crt) too, which would otherwise come at the newest version. The driver library itself
# (libcuda.so.1) only exists where a GPU driver is installed, so the link uses a stub with
# the same soname and the driver's entry points; at run time the real driver is loaded.
#
# Usage: scripts/cuda_build.sh [cargo command and args, e.g. `clippy --features cuda
# --all-targets -- -D warnings`], in the toolkit's environment. Without arguments: the binary, tests and
# benchmarks in release mode into target-cuda/, and what a GPU machine needs staged in
# target-cuda/gpu/ (see scripts/gpu_check.sh).
# Environment: CUDA_WHEELS (13.0), CUDA_COMPUTE_CAP (90 = Hopper), FLOWLINE_CUDA_TOOLKIT
# (where the wheels are installed; default ~/.cache/flowline/cuda-$CUDA_WHEELS).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${CUDA_WHEELS:-13.0}
toolkit=${FLOWLINE_CUDA_TOOLKIT:-$HOME/.cache/flowline/cuda-$version}
python=${PYTHON:-python3}

if [ ! -x "$toolkit/venv/bin/python" ]; then
    echo "installing the CUDA $version toolkit wheels into $toolkit" >&2
    "$python" -m venv "$toolkit/venv"
    "$toolkit/venv/bin/pip" install -q \
        "nvidia-cuda-nvcc==$version.*" "nvidia-nvvm==$version.*" "nvidia-cuda-crt==$version.*" \
        "nvidia-cuda-runtime==$version.*" "nvidia-cuda-nvrtc==$version.*" "nvidia-cublas==$version.*" "nvidia-curand" \
        "nvidia-cuda-cccl==$version.*"
fi
root=$(echo "$toolkit"/venv/lib/python3*/site-packages/nvidia/cu13)
[ -x "$root/bin/nvcc" ] || { echo "no nvcc under $root" >&2; exit 1; }

# Unversioned names for the linker, and the driver stub, in the toolkit's lib/stubs.
stubs="$root/lib/stubs"
mkdir -p "$stubs"
for lib in "$root"/lib/lib*.so.*; do
    base=$(basename "$lib")
    ln -sf "$lib" "$stubs/${base%%.so.*}.so"
done
if [ ! -f "$stubs/libcuda.so" ]; then
    # The driver API entry points cudarc declares, each an empty function: enough to link.
    cudarc=$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
        "$python" -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))')
    grep -ohE '\bfn cu[A-Za-z0-9_]+\(' "$(dirname "$cudarc")/src/driver/sys/mod.rs" |
        sed 's/fn //; s/($//' | sort -u | sed 's/.*/void &(void) {}/' >"$stubs/cuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/cuda_stub.c"
fi

export CUDA_HOME="$root" PATH="$root/bin:$PATH"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-cuda}
nvcc --version | tail -1

if [ $# -gt 0 ]; then
    exec cargo "$@"
fi
cargo build --release --features cuda --all-targets

# What scripts/gpu_check.sh runs on a GPU machine (which has no Rust toolchain and no
# ../shared): the binary, the device-generic tests, the benchmark, and the MNIST test files
# and trained model the attack workload needs, in one folder to carry (the binaries embed
# candle's kernels, ~55 MB each, so they travel stripped and xz-compressed, ~7 MB each).
gpu="$CARGO_TARGET_DIR/gpu"
rm -rf "$gpu" && mkdir -p "$gpu/data/mnist"
newest() { ls -t "$CARGO_TARGET_DIR"/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
cp "$CARGO_TARGET_DIR/release/flowline" "$gpu/flowline"
cp "$(newest devices)" "$gpu/devices"
cp "$(newest workloads)" "$gpu/workloads"
strip "$gpu"/flowline "$gpu"/devices "$gpu"/workloads
xz -T0 -6 "$gpu"/flowline "$gpu"/devices "$gpu"/workloads
data=${FLOWLINE_DATA:-../shared/data}
cp "$data"/mnist/t10k-*-ubyte.gz "$gpu/data/mnist/" 2>/dev/null || echo "no MNIST test files under $data: the logbarrier workload will say so" >&2
cp runs/mnist_convnet/fit/model.safetensors "$gpu/data/" 2>/dev/null ||
    echo "no runs/mnist_convnet/fit/model.safetensors (run pipelines/mnist_convnet.flow): the logbarrier workload will say so" >&2
du -sh "$gpu"
echo "staged in $gpu; on a GPU machine, from the checkout: scripts/gpu_check.sh (carry $gpu)" >&2
