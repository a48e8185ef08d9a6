#!/usr/bin/env bash
# What the main job's install costs: a fresh venv, `pip install '.[EXTRA]'` (cpu by
# default), then the size of its site-packages, pip included. Prints one line.
#
#   bash scripts/install_size.sh [cpu|gpu]
set -euo pipefail
extra="${1:-cpu}"
cd "$(dirname "$0")/.."
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet ".[$extra]"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
bytes="$(du -sb "$site" | cut -f1)"
echo "fashion-onnx[$extra]: $(((bytes + 500000) / 1000000)) MB of site-packages, pip included ($bytes bytes)"
