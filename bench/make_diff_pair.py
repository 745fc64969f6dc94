"""Two ~1 GB checkpoints for `ckpt diff --values` (bench/diff.mjs): A, a model of 64 float32 matrices of
1024 x 4096 and a bfloat16 embedding; B, the same after a "fine-tune" that left half the matrices frozen
(identical bytes) and moved the others slightly (every element differs).

Usage: python make_diff_pair.py A.pt B.pt
"""
import sys

import torch

torch.manual_seed(0)
a = {"embed.weight": torch.randn(32000, 1024).bfloat16()}
for i in range(64):
    a["layers.%d.weight" % i] = torch.randn(1024, 4096)
b = {k: (v + 1e-3 * torch.randn_like(v) if i % 2 else v.clone()) for i, (k, v) in enumerate(a.items())}
torch.save({"model": a, "iteration": 1000}, sys.argv[1])
torch.save({"model": b, "iteration": 2000}, sys.argv[2])
