#!/usr/bin/env bash
# The GPU check: every CUDA path of fashion-onnx on a real GPU, in one call of a few
# minutes, with no network. Writes one JSON file (see bench/gpu.py for its sections).
#
#   bash scripts/gpu_check.sh [WHEEL_DIR] [OUT_JSON]
#
# WHEEL_DIR holds the onnxruntime-gpu wheel for the machine's Python. It is installed with
# `pip install --no-index --no-deps` into a folder put first on PYTHONPATH, after the CPU
# onnxruntime is uninstalled (the two must never both be importable). Everything else it
# needs must be there already: Python 3.12, numpy, Pillow, typer, rich, onnx, onnxscript,
# torch with CUDA, the nvidia-* CUDA 13 and cuDNN 9 wheels, pytest. Make the folder where
# there is network, for the GPU machine's Python (3.12 here):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     -d WHEEL_DIR onnxruntime-gpu==1.31.1
#
# The real FashionMNIST: FASHION_ONNX_DEBIAN_DIR=DIR, DIR holding Debian's four .gz files
# (default /usr/share/datasets/fashion-mnist). Without a GPU or without CUDA, the CUDA
# sections are skipped with the reason and the JSON still comes out.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=${1:-}
out=${2:-gpu_check.json}
py=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "$wheels" ]; then
    site=$(mktemp -d)
    "$py" -m pip uninstall -y -q onnxruntime onnxruntime-gpu 2>/dev/null
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl \
        || { echo "gpu_check: installing $wheels failed" >&2; exit 2; }
    export PYTHONPATH="$site:$PYTHONPATH"
fi
export FASHION_ONNX_DATA_DIR=${FASHION_ONNX_DATA_DIR:-$(mktemp -d)}
exec "$py" -m bench.gpu --out "$out" "${@:3}"
