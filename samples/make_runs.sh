#!/usr/bin/env bash
# Regenerate the run-directory samples (samples/outputs/<run>/) and what each framework's own resume does
# on them (samples/runs-truth/<run>.json + README.md).
#
# Interpreter (override with TORCH2_PY): torch 2.x CPU with numpy and safetensors, plus the frameworks
# that install here:
#   /opt/torch2/bin/python -m pip install lightning transformers accelerate timm
# (fvcore/detectron2, mmengine, DeepSpeed, pytracking, torchtitan, ultralytics, mmcv, AllenNLP and the
# torchvision reference scripts are not installable here: those runs are built from the reference notes or
# transcribed from source, with real torch.save; see make_runs.py and make_runs_extra.py.)
#
#   bash samples/make_runs.sh                 # everything, from scratch
#   bash samples/make_runs.sh --only hf timm  # some builders only (see BUILDERS in make_runs.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH2_PY="${TORCH2_PY:-/opt/torch2/bin/python}"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$TORCH2_PY" "$here/make_runs.py" "$@"
for d in "$here/outputs" "$here/runs-truth" "$here"; do du -sh --apparent-size "$d"; done
