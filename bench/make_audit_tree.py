"""Writes an outputs tree for the audit benchmark with real torch: RUNS fvcore-style runs of PER_RUN
checkpoints each (model, optimizer, scheduler, iteration), with last_checkpoint pointers.

Usage: python make_audit_tree.py OUT_DIR [runs] [per_run] [floats_per_checkpoint]
"""
import os
import sys

import torch

out = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
per_run = int(sys.argv[3]) if len(sys.argv) > 3 else 20
floats = int(sys.argv[4]) if len(sys.argv) > 4 else 128 * 1024

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(floats // 256, 256), torch.nn.Linear(256, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
model(torch.randn(2, floats // 256)).sum().backward()
opt.step()
state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
for r in range(runs):
    run = os.path.join(out, "run_%03d" % r)
    os.makedirs(run, exist_ok=True)
    for c in range(per_run):
        iteration = (c + 1) * 1000 - 1
        torch.save({**state, "iteration": iteration}, os.path.join(run, "model_%07d.pth" % iteration))
    with open(os.path.join(run, "last_checkpoint"), "w") as f:
        f.write("model_%07d.pth" % iteration)
