#!/usr/bin/env bash
# `ebgan gpu-check OUT` on a machine with an NVIDIA GPU and a python3 that has torch 2.11.0 but
# no Rust (docs/performance.md, "How to use a GPU session"): build here, `just gpu-pack`, carry
# .device, then there:
#   scripts/gpu-check.sh OUT [--budget SECONDS] [--device auto|cuda|cpu]
# The binary finds libtorch (and libtorch_cuda) in that python's torch/lib.
set -euo pipefail
py="${PYTHON:-python3}"
torch_lib="$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The references' packages that machine's python lacks, as the pure-Python wheels `just gpu-pack`
# put in .device/wheels (a wheel on sys.path imports as it is).
for wheel in "$(dirname "$0")"/../.device/wheels/*.whl; do
  [[ -e "$wheel" ]] && export PYTHONPATH="$(realpath "$wheel")${PYTHONPATH:+:$PYTHONPATH}"
done
exec "${EBGAN_BIN:-.device/ebgan}" gpu-check --python "$py" "$@"
