#!/usr/bin/env bash
# Regenerate the checkpoint samples and their ground truth (*.truth.json).
#
#   samples/torch1/  written and read back by torch 1.13 (Debian's python3-torch)
#   samples/torch2/  written and read back by torch 2.x (CPU build, with numpy and safetensors)
#
# Interpreters (override with TORCH1_PY / TORCH2_PY):
#   torch 1.13: apt-get install python3-torch python3-numpy      -> /usr/bin/python3
#   torch 2.x : python3 -m venv /opt/torch2 &&
#               /opt/torch2/bin/python -m pip install torch numpy safetensors   (CPU wheel of torch)
#
# Output is reproducible (fixed seeds, single thread, PYTHONHASHSEED=0) except legacy.pt and
# legacy_protocol4.pt: the legacy (non-zip) format names storages by memory address, so their bytes
# and the "key" fields of their truth files change on every run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH1_PY="${TORCH1_PY:-/usr/bin/python3}"
TORCH2_PY="${TORCH2_PY:-/opt/torch2/bin/python}"

rm -rf "$here/torch1" "$here/torch2"
PYTHONHASHSEED=0 "$TORCH1_PY" "$here/make_samples.py" "$here/torch1"
PYTHONHASHSEED=0 "$TORCH2_PY" "$here/make_samples.py" "$here/torch2"
du -sh "$here"
