"""The minimal Python inspector over an outputs tree: the audit baseline of issue 18. Walks the tree
(os.walk, sorted), runs peek.py's zipfile + stub unpickler over every checkpoint file and reads each run's
last_checkpoint pointer; prints one line per run with its newest checkpoint and tensor count.

Usage: python peek_tree.py DIR
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peek import peek  # noqa: E402

CHECKPOINT = re.compile(r"\.(pt|pth|ckpt|bin)$")

runs = files = 0
for top, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    found = sorted(n for n in names if CHECKPOINT.search(n))
    if not found:
        continue
    runs += 1
    counts = {n: len(peek(os.path.join(top, n))) for n in found}
    files += len(found)
    pointer = None
    if "last_checkpoint" in names:
        with open(os.path.join(top, "last_checkpoint")) as f:
            pointer = f.read().strip()
    print("%s: %d checkpoints, last_checkpoint -> %s (%s tensors)" % (top, len(found), pointer, counts.get(pointer)))
print("%d runs, %d checkpoints" % (runs, files))
