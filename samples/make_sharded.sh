#!/usr/bin/env bash
# Regenerate the sharded-checkpoint samples (samples/sharded/) and their truth (<dir>.truth.json,
# schema ckpt.sharded-truth/1). See the header of make_sharded.py for what made each one.
#
# Interpreters (override with TORCH1_PY / TORCH2_PY):
#   torch 1.13: /usr/bin/python3 (Debian python3-torch): the torch1_13 DCP sample only
#   torch 2.x : /opt/torch2/bin/python with numpy, safetensors, transformers, accelerate, lightning
#
#   bash samples/make_sharded.sh                 # everything, from scratch
#   bash samples/make_sharded.sh --only NAME...  # some builders only (BUILDERS in make_sharded.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH1_PY="${TORCH1_PY:-/usr/bin/python3}"
TORCH2_PY="${TORCH2_PY:-/opt/torch2/bin/python}"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore
if [ "${1:-}" != "--only" ]; then
  mkdir -p "$here/sharded"
  find "$here/sharded" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
  "$TORCH1_PY" "$here/make_sharded.py" --torch1
fi
"$TORCH2_PY" "$here/make_sharded.py" "$@"
du -sh --apparent-size "$here/sharded"
