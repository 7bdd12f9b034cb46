# ebgan-rs recipes. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

export EBGAN_VENV := env_var_or_default("EBGAN_VENV", env_var("HOME") / ".cache/ebgan-rs/torch-2.11.0")
torch := "./scripts/with-torch"
ebgan := torch + " ./target/release/ebgan"

default:
    @just --list

# libtorch 2.11.0 from the PyPI wheel, in a virtual environment outside the repo (skipped when LIBTORCH is set)
torch:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -n "${LIBTORCH:-}" ]]; then echo "using LIBTORCH=$LIBTORCH"; exit 0; fi
    if ! "$EBGAN_VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.11.0")' 2>/dev/null; then
      echo "installing torch==2.11.0 into $EBGAN_VENV (about 4.6 GB with its CUDA packages)"
      python3 -m venv "$EBGAN_VENV"
      "$EBGAN_VENV/bin/pip" install --quiet --disable-pip-version-check torch==2.11.0 numpy
    fi
    # The parity references: pytorch-fid's Inception (with the torchvision of torch 2.11), scipy
    # torch-fidelity's KID, TensorBoard's reader of our event files, selenium (the browser test).
    if ! "$EBGAN_VENV/bin/python" -c 'import torchvision, pytorch_fid, scipy, torch_fidelity, tensorboard, selenium' 2>/dev/null; then
      "$EBGAN_VENV/bin/pip" install --quiet --disable-pip-version-check torchvision==0.26.0 pytorch-fid==0.3.0 scipy torch-fidelity==0.4.0 tensorboard==2.21.0 selenium==4.51.0
    fi

# release build of the `ebgan` binary (tests share it)
build: torch
    {{torch}} cargo build --release

# MNIST into data/mnist: imports FROM when given, else downloads (verified by MD5 either way)
mnist from="": build
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -n "{{from}}" ]]; then {{ebgan}} mnist --from "{{from}}"; else {{ebgan}} mnist; fi

# the shipped scoring classifier, installed into data/mnist-classifier (`ebgan classifier --train` trains your own)
classifier: mnist
    {{ebgan}} classifier

# everything the experiments need: torch, build, MNIST, classifier
setup: classifier

# unit and end-to-end tests (CPU, small), then the float-sensitive ones under other CPU code paths
test: mnist
    {{torch}} cargo test --release --workspace
    just test-isa

# a library that answers MKL's vendor check "not Intel" (scripts/mkl-vendor.c), to show that preloading it cannot move the binaries off their pinned MKL path
mkl-paths:
    mkdir -p target/mkl-paths
    gcc -shared -fPIC -O2 -DINTEL=0 -o target/mkl-paths/other.so scripts/mkl-vendor.c

# the pin of MKL's path against a preloaded "not Intel" answer, then the bit-exactness tests under ATen's AVX2 kernels (an AVX2-only CPU; parity too) and its scalar ones (the path furthest from the default)
test-isa: mnist mkl-paths
    #!/usr/bin/env bash
    set -euo pipefail
    echo "== MKL's path, another vendor's answer preloaded"
    env EBGAN_MKL_PRELOAD=other LD_PRELOAD="$PWD/target/mkl-paths/other.so" {{torch}} cargo test --release -p ebgan-core --lib -- mkl_path
    # ATen's own kernels by vector width: an AVX2-only CPU (parity too), and the scalar code.
    exact="train:: member_wise layers batch_invariance optim philox rng::"
    for isa in avx2 default; do
      echo "== ATEN_CPU_CAPABILITY=$isa"
      parity=$([[ $isa != avx2 ]] || echo parity::tests)
      ATEN_CPU_CAPABILITY=$isa {{torch}} cargo test --release -p ebgan-core -p ebgan-models -p ebgan-exp --lib -- $exact $parity
    done

# Table 1 grid (512 EBGAN + 6144 GAN runs); `quick`: the CPU-sized slice; `energy`: EBGAN, EBGAN-PT, BEGAN and MAGAN on the 512 EBGAN settings (and the GAN runs); `energy-quick`: its CPU slice
grid-mnist mode="" *flags="": setup
    {{ebgan}} run experiments/grid-mnist{{ if mode == "" { "" } else { "-" + mode } }}.toml {{flags}}

# Table 2: LN and EBGAN-LN on semi-supervised MNIST; `quick`: 1 seed x 1 epoch per cell; `medium`: 6 seeds at 100 labels, 3 at 200 and 1000, 5 epochs (about 75 min on 2 cores, estimated); `search-margin`, `search-g`: the staged search of docs/semi-supervised.md; `margin-search`: an older margin search
semi-mnist mode="" *flags="": mnist
    {{ebgan}} run experiments/semi-mnist{{ if mode == "" { "" } else { "-" + mode } }}.toml {{flags}}

# Figure 9: EBGAN margin sweep; `just margin-sweep quick` runs 1 epoch per margin
margin-sweep mode="" *flags="": setup
    {{ebgan}} run experiments/margin-sweep{{ if mode == "quick" { "-quick" } else { "" } }}.toml {{flags}}

# §4.3: EBGAN-PT, EBGAN and DCGAN on aligned CelebA 64x64, BEGAN and MAGAN beside them (data: $EBGAN_CELEBA or data/celeba)
celeba *flags="": build
    {{ebgan}} run experiments/celeba.toml {{flags}}

# §4.3: the same on LSUN bedroom (LMDB or image folder: $EBGAN_LSUN); `just lsun augmented` = random 64 crops of 96
lsun mode="" *flags="": build
    {{ebgan}} run experiments/lsun{{ if mode == "augmented" { "-augmented" } else { "" } }}.toml {{flags}}

# §4.4: EBGAN-PT with the noise-plane generator on ImageNet 128x128 ($EBGAN_IMAGENET: train/<wnid>/*.JPEG)
imagenet128 *flags="": build
    {{ebgan}} run experiments/imagenet128.toml {{flags}}

# §4.4: 256x256 on ImageNet's dog breeds (experiments/imagenet256-dogs.txt)
imagenet256 *flags="": build
    {{ebgan}} run experiments/imagenet256.toml {{flags}}

# the 64x64 models on MNIST padded to 64x64: a stand-in that runs without CelebA/LSUN
mnist64 *flags="": setup
    {{ebgan}} run experiments/mnist64.toml {{flags}}

# samples from a checkpoint, e.g. `just sample results/celeba/ebgan-pt-xxxx/checkpoint.safetensors grid.png`
sample checkpoint out *flags="": build
    {{ebgan}} sample {{checkpoint}} --out {{out}} {{flags}}

# submit the Table 1 grid to Slurm as an array job (docs/cluster.md); e.g. `just slurm-grid --partition gpu`
slurm-grid *flags="": setup
    {{ebgan}} slurm experiments/grid-mnist.toml --submit {{flags}}

# per-shard progress of runs/NAME, and its Slurm tasks
status name:
    {{ebgan}} status runs/{{name}}

# redraw figures and tables of runs/NAME from its results alone
report name:
    {{ebgan}} report runs/{{name}}

# runs/NAME against the committed reference results/NAME: runs bit-equal, I' quartiles against its noise floor
compare name:
    {{ebgan}} compare runs/{{name}} results/{{name}}

# one EBGAN and one GAN training step: Rust against PyTorch eager, same machine
bench *flags="": build
    {{ebgan}} bench --python "$EBGAN_VENV/bin/python" {{flags}}

# grid throughput: cohorts vs single runs vs PyTorch eager, extrapolated to a grid-epoch
bench-grid *flags="": build
    {{ebgan}} bench-grid --python "$EBGAN_VENV/bin/python" {{flags}}

# 64x64 EBGAN-PT step images/s: Rust against PyTorch eager, and the data pipeline alone
bench-conv *flags="": build
    {{ebgan}} bench-conv --python "$EBGAN_VENV/bin/python" {{flags}}

# the checks of a GPU session (set-up, correctness on the device, benchmarks, then the paper's results with what the budget leaves) into OUT/gpu-check.md; on a machine without CUDA, tiny sizes on the CPU
gpu-check out *flags="": build
    {{ebgan}} gpu-check {{out}} --python "$EBGAN_VENV/bin/python" {{flags}}

# what a device machine needs in .device/ (carry it): the binary (the scoring classifier is compiled in), MNIST gzipped, and the pure-Python wheels of the references its python lacks (pytorch-fid, torch-fidelity)
gpu-pack: mnist
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .device/mnist .device/wheels
    cp target/release/ebgan .device/
    "$EBGAN_VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --dest .device/wheels pytorch-fid==0.3.0 torch-fidelity==0.4.0
    for f in data/mnist/*-ubyte; do gzip -c "$f" > ".device/mnist/$(basename "$f").gz"; done
    du -sh .device

# the device command's dry run: scripts/gpu-check.sh with the carried .device/, as a device machine runs it, on the CPU at tiny sizes under the same limits; the returned folder is OUT
gpu-dry-run out="/tmp/ebgan-gpu-return" *flags="": gpu-pack
    EBGAN_WORK=/tmp/ebgan-gpu-dry-run PYTHON="$EBGAN_VENV/bin/python" {{torch}} scripts/gpu-check.sh {{out}} --device cpu {{flags}}

fmt:
    cargo fmt --all

lint: torch
    {{torch}} cargo clippy --release --workspace --all-targets -- -D warnings
