#!/usr/bin/env bash
# The one device command (docs/performance.md, "How to use a GPU session"). Here: `just gpu-pack`,
# then give the device tool this command with carry [".device"]; there, from the carried tree:
#   scripts/gpu-check.sh "$OUT" [--budget SECONDS] [--device auto|cuda|cpu] [...]
# The full tree goes to a scratch folder ($EBGAN_WORK, default /tmp/ebgan-gpu-check) that dies
# with the machine; $OUT gets what comes back within the device tool's limits: gpu-check.md,
# performance-rows.md, gpu-check.log and results.zip. No network, no cargo, no just: the binary
# finds libtorch (and libtorch_cuda) in that python's torch/lib. The same command with
# `--device cpu` is the dry run here (`just gpu-dry-run`, and in `just test`).
set -euo pipefail
ret="${1:?usage: scripts/gpu-check.sh OUT [gpu-check flags]}"
shift
py="${PYTHON:-python3}"
work="${EBGAN_WORK:-/tmp/ebgan-gpu-check}"
mkdir -p "$work" "$ret"
torch_lib="$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The references' packages that machine's python lacks, as the pure-Python wheels `just gpu-pack`
# put in .device/wheels (a wheel on sys.path imports as it is).
for wheel in "$(dirname "$0")"/../.device/wheels/*.whl; do
  [[ -e "$wheel" ]] && export PYTHONPATH="$(realpath "$wheel")${PYTHONPATH:+:$PYTHONPATH}"
done
# Everything the command prints also goes to the work folder's gpu-check.log, which is returned
# whole (the device tool returns only the last 12,000 characters of output).
exec "${EBGAN_BIN:-.device/ebgan}" gpu-check "$work" --return "$ret" --device-limits \
  --python "$py" "$@" > >(tee -a "$work/gpu-check.log") 2> >(tee -a "$work/gpu-check.log" >&2)
