#!/usr/bin/env bash
# Regenerate the pairs `ckpt diff` is tested on (samples/pairs/) and the checkpoints whose size has a story
# (samples/size/), with what torch makes of them (*.truth.json; make_pairs.py says what each holds).
#
# Needs torch 2.x with safetensors, lightning and timm (TORCH2_PY, default /opt/torch2/bin/python), the
# sharded samples (samples/sharded/, for the DCP and transformers pairs), and ckpt built (npm run build):
# two pairs ask what `ckpt repair` changed, so their B files are ckpt's own output, judged by torch.
#
#   bash samples/make_pairs.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH2_PY="${TORCH2_PY:-/opt/torch2/bin/python}"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
ckpt=(node "$here/../bin/ckpt.js")

"$TORCH2_PY" "$here/make_pairs.py" make "$here"
"${ckpt[@]}" repair "$here/pairs/fvcore/model_0000059.pth" -o "$here/pairs/fvcore/model_0000059.repaired.pth" \
  --counter-from-filename > /dev/null
"${ckpt[@]}" repair "$here/pairs/dataparallel.pt" -o "$here/pairs/dataparallel.stripped.pt" \
  --strip-prefix module. > /dev/null
"$TORCH2_PY" "$here/make_pairs.py" truth "$here"
du -sh --apparent-size "$here/pairs" "$here/size"
