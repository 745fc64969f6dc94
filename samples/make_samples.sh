#!/usr/bin/env bash
# Regenerate the checkpoint samples and their ground truth (*.truth.json).
#
#   samples/torch1/  written and read back by torch 1.13 (Debian's python3-torch)
#   samples/torch2/  written and read back by torch 2.x (CPU build, with numpy and safetensors)
#
# Interpreters (override with TORCH1_PY / TORCH2_PY):
#   torch 1.13: apt-get install python3-torch python3-numpy      -> /usr/bin/python3
#   torch 2.x : python3 -m venv /opt/torch2 &&
#               /opt/torch2/bin/python -m pip install torch numpy safetensors lightning   (CPU wheel of torch)
#
#   bash samples/make_samples.sh                  # everything, from scratch
#   bash samples/make_samples.sh --only NAME...   # some samples only (names: SAMPLES in make_samples.py and
#                                                 # make_samples_extra.py); other files are left alone
#
# Output is reproducible (fixed seeds, single thread, PYTHONHASHSEED=0) except the legacy files written by
# torch.save(_use_new_zipfile_serialization=False) (legacy.pt, legacy_protocol4.pt, whole_nested_legacy.pt):
# the legacy format names storages by memory address, so their bytes and the "key" fields of their truth
# files change on every run. torch 2 runs first: torch 1.13 adds its torch.load outcomes to the bare-pickle
# truths torch 2 wrote (torch2/bare_pickles/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH1_PY="${TORCH1_PY:-/usr/bin/python3}"
TORCH2_PY="${TORCH2_PY:-/opt/torch2/bin/python}"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""

if [ "${1:-}" != "--only" ]; then
  rm -rf "$here/torch1" "$here/torch2"
fi
"$TORCH2_PY" "$here/make_samples.py" "$here/torch2" "$@"
"$TORCH1_PY" "$here/make_samples.py" "$here/torch1" "$@"
du -sh "$here"
