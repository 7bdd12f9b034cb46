#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one go, on a machine with an NVIDIA GPU and a python3
# that has torch 2.11.0 but no Rust: build here, copy the binary to .device/ebgan, run this there.
#   mkdir -p .device && cp target/release/ebgan .device/ && (on the GPU machine) scripts/gpu-bench.sh OUT
# Writes OUT/{gpu.txt,bench-gpu.md,grid-gpu.md,grid-gpu-per-tensor.md,conv-gpu.md}.
set -euo pipefail
out="${1:?usage: scripts/gpu-bench.sh OUT_DIR}"
mkdir -p "$out"
py="${PYTHON:-python3}"
torch_lib="$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="${EBGAN_BIN:-.device/ebgan}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt"
"$bin" bench-conv --device cuda --python "$py" --steps 50 --warmup 10 --batch 32 --batch 64 --out "$out/conv-gpu.md"
"$bin" bench --device cuda --python "$py" --out "$out/bench-gpu.md"
"$bin" bench-grid --device cuda --python "$py" --out "$out/grid-gpu.md"
# The same grid sample with the CPU's optimizer layout: what packing the parameters buys on CUDA.
"$bin" bench-grid --device cuda --optim-layout per-tensor --out "$out/grid-gpu-per-tensor.md"
