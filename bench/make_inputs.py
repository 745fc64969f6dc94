"""Writes the inputs of bench/run.mjs with real torch (issue 7). Each kind is one file:

  big-1g     ~1 GB zip checkpoint: 64 float32 tensors of 16 MiB in a model state dict
  big-6g     ~6.4 GB zip checkpoint (crosses 4 GiB, so zip64): a model with 96 tensors of 64 MiB, plus an
             optimizer state and a counter, as a training checkpoint holds them
  tiny-200k  a state dict of 200,000 small tensors (200,000 storage records in the zip)
  legacy-1g  ~1 GB legacy-format checkpoint (_use_new_zipfile_serialization=False), 256 tensors of 4 MiB

Usage: python make_inputs.py KIND OUT_FILE
"""
import os
import sys

import torch

kind, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)


def layers(count, rows, cols):
    return {"layers.%d.weight" % i: torch.randn(rows, cols) for i in range(count)}


if kind == "big-1g":
    obj, options = {"model": layers(64, 4096, 1024)}, {}
elif kind == "big-6g":
    model = layers(96, 4096, 4096)
    optimizer = {"state": {0: {"step": torch.tensor(1000.0)}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    obj, options = {"model": model, "optimizer": optimizer, "iteration": 999}, {}
elif kind == "tiny-200k":
    shapes = [(16,), (4, 4), (8,), (2, 3)]
    obj = {"blocks.%d.p%d" % (i // 4, i % 4): torch.randn(shapes[i % 4]) for i in range(200_000)}
    options = {}
elif kind == "legacy-1g":
    obj, options = {"model": layers(256, 1024, 1024)}, {"_use_new_zipfile_serialization": False}
else:
    sys.exit("unknown kind %r" % kind)

tmp = out + ".tmp"
torch.save(obj, tmp, **options)
os.replace(tmp, out)
print("%s: %s, %.2f GB" % (kind, out, os.path.getsize(out) / 1e9))
