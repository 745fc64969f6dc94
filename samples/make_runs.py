#!/usr/bin/env python3
"""Generate sample RUN DIRECTORIES plus what each framework's own resume does on them.

Usage (normally through make_runs.sh):
    python make_runs.py                 # regenerate samples/outputs/ and samples/runs-truth/
    python make_runs.py --only NAME...  # regenerate some runs only (others are left alone)

Needs torch 2.x (CPU) with numpy and safetensors; for the runs made by real framework code also
lightning, transformers, accelerate and timm (pip install lightning transformers accelerate timm).

Two kinds of runs:

* Made by REAL framework code (Lightning, transformers Trainer, accelerate, timm): each is trained in a
  subprocess of this script ("--worker ..."), then a copy of the run dir is RESUMED for one step by the
  same framework with the same configuration, and what happened (checkpoint picked, counter at start,
  optimizer / scheduler restored, learning rate, errors) is written to runs-truth/<run>.json with
  "established": "resumed".

* Built BY HAND for frameworks that cannot be installed here (fvcore/detectron2, Trackron, mmengine,
  DeepSpeed, pytracking) and for torchtitan-style DCP: the file names, pointer files and dict layouts
  follow /work/shared/reference/conventions.md, every checkpoint is written with real torch.save (or real
  torch.distributed.checkpoint.save), and framework classes that end up in the pickles (mmengine
  HistoryBuffer, DeepSpeed LossScaler/ZeroStageEnum, pytracking Settings/NetConstructor/AverageMeter) are
  recreated under their real module names so the pickles name the same globals. For fvcore/detectron2 the
  Checkpointer/PeriodicCheckpointer logic is transcribed from fvcore/common/checkpoint.py and the
  resume arithmetic from detectron2 tools/plain_train_net.py, and that transcription is actually run to
  resume; the truth says "established": "reference".

Everything is deterministic (fixed seeds, one thread, PYTHONHASHSEED=0 via make_runs.sh). Runs are built
under a cluster-like root (CKPT_SAMPLES_CLUSTER, default /mnt/cluster/alice/experiments), shipped to
samples/outputs as copies, and the root is removed: the absolute paths frameworks write into runs (Lightning
callback state, HF training_args.bin, mmengine's pointer and meta.cfg) name that cluster on every machine,
as those of a run copied off a cluster do. Every truth file records "generatedAt", the cluster path.
"""

import argparse
import collections
import copy
import enum
import io
import json
import math
import os
import pickletools
import shutil
import struct
import subprocess
import sys
import tempfile
import types
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Runs are built where a cluster would have written them and shipped as copies: every path a framework
# writes into a run (mmengine's absolute last_checkpoint, Lightning's callback dirpath, HF's output_dir,
# timm's args) then names that cluster, the same on every machine that has the samples, as a run copied off
# a cluster does; never the checkout of the machine that generated them.
CLUSTER = os.environ.get("CKPT_SAMPLES_CLUSTER", "/mnt/cluster/alice/experiments")
OUT = os.path.join(CLUSTER, "outputs")
SHIPPED = os.path.join(HERE, "outputs")
TRUTH = os.path.join(HERE, "runs-truth")
SCHEMA = "ckpt.run-truth/1"

warnings.simplefilter("ignore")


# ----------------------------------------------------------------------------------------------
# shared helpers (imported lazily so that workers control import order)
# ----------------------------------------------------------------------------------------------


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def seed_all(n):
    import random

    import numpy as np

    torch = _torch()
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)


def tiny_net():
    """4 -> 8 -> 2 MLP, 58 parameters (fc1.weight, fc1.bias, fc2.weight, fc2.bias)."""
    torch = _torch()
    nn = torch.nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    return TinyNet()


def toy_data(n=32, seed=0):
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x.sum(1) > 0).long()
    return x, y


def toy_batch(i, bs=4):
    x, y = toy_data()
    j = (i * bs) % len(x)
    return x[j : j + bs], y[j : j + bs]


def run_dir(name):
    return os.path.join(OUT, name)


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def write_truth(name, convention, established, version, pointer, framework_resume, correct_resume, extra=None):
    doc = collections.OrderedDict()
    doc["schema"] = SCHEMA
    doc["run"] = name
    doc["convention"] = convention
    doc["established"] = established
    doc["frameworkVersion"] = version
    doc["generatedAt"] = run_dir(name)
    doc["pointer"] = pointer
    doc["frameworkResume"] = framework_resume
    doc["correctResume"] = correct_resume
    if extra:
        doc.update(extra)
    os.makedirs(TRUTH, exist_ok=True)
    with open(os.path.join(TRUTH, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def rebase_paths(obj, tmp_copy, name):
    """Replace the temp copy's path by the run dir's generation-time path inside results."""
    return json.loads(json.dumps(obj).replace(tmp_copy, run_dir(name)))


def copy_for_resume(name):
    """Copy a run dir (symlinks kept, mtimes kept) to a temp dir; resumes never touch the sample."""
    tmp = tempfile.mkdtemp(prefix="ckpt-resume-")
    dst = os.path.join(tmp, name)
    shutil.copytree(run_dir(name), dst, symlinks=True)
    return tmp, dst


def err_str(e):
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    first = lines[0] if lines else ""
    if first.startswith("Weights only load failed"):
        # torch >= 2.6: the generic first paragraph is followed by the actual unpickler complaint
        cause = ""
        for i, l in enumerate(lines):
            if "WeightsUnpickler error:" in l:
                rest = l.split("WeightsUnpickler error:", 1)[1].strip()
                if not rest and i + 1 < len(lines):
                    rest = lines[i + 1]
                cause = "WeightsUnpickler error: " + rest
                break
        first = "Weights only load failed. " + cause
    if len(first) > 300:
        first = first[:300] + "..."
    return "%s: %s" % (type(e).__name__, first)


def weights_only_probe(path):
    """What plain torch.load(path) does on torch >= 2.6 (weights_only=True default) and with weights_only=False."""
    torch = _torch()
    res = collections.OrderedDict()
    for wo in (True, False):
        key = "weightsOnlyTrue" if wo else "weightsOnlyFalse"
        try:
            torch.load(path, map_location="cpu", weights_only=wo)
            res[key] = "ok"
        except Exception as e:  # noqa: BLE001 - we record whatever torch raises
            res[key] = err_str(e)
    return res


def run_worker(*args, env_extra=None, rebase=None):
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    env["LIGHTNING_DISABLE_TIPS"] = "1"
    if env_extra:
        env.update(env_extra)
    p = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            if rebase:
                result = rebase_paths(result, *rebase)
    if p.returncode != 0 or result is None:
        sys.stderr.write(p.stdout[-4000:] + "\n" + p.stderr[-6000:] + "\n")
        raise SystemExit("worker %s failed (rc=%s)" % (args, p.returncode))
    return result


def emit(result):
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------------------
# fvcore / detectron2 / Trackron (built by hand: transcription of fvcore Checkpointer)
# ----------------------------------------------------------------------------------------------

FVCORE_REF = "reference: fvcore Checkpointer/PeriodicCheckpointer (facebookresearch/fvcore 3378afe) + detectron2 tools/plain_train_net.py resume arithmetic"
TRACKRON_REF = "reference: Flowerfan/Trackron 439b1c9 TrackingCheckpointer.save + tools/train_net.py on fvcore Checkpointer"


class FvCheckpointer:
    """Transcription of fvcore.common.checkpoint.Checkpointer (save/load/resume_or_load/pointer).

    PathManager.open on a local path is plain open(); torch.save gets a file object, as in fvcore.
    `trace` records what load() did so the truth can say what was restored."""

    def __init__(self, model, save_dir="", **checkpointables):
        self.model = model
        self.checkpointables = dict(checkpointables)
        self.save_dir = save_dir
        self.trace = collections.OrderedDict(loaded=None, restored=[], skipped=[], log=[])

    def save(self, name, **kwargs):
        torch = _torch()
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = "{}.pth".format(name)
        save_file = os.path.join(self.save_dir, basename)
        with open(save_file, "wb") as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def load(self, path, checkpointables=None):
        if not path:
            self.trace["log"].append("No checkpoint found. Initializing model from scratch")
            return {}
        self.trace["log"].append("Loading checkpoint from {}".format(path))
        if not os.path.isfile(path):
            # path_manager.get_local_path(path) is the identity for a local path
            assert os.path.isfile(path), "Checkpoint {} not found!".format(path)
        checkpoint = self._load_file(path)
        self.trace["loaded"] = path
        sd = checkpoint.pop("model")
        self.model.load_state_dict(sd, strict=False)
        self.trace["restored"].append("model")
        for key in self.checkpointables if checkpointables is None else checkpointables:
            if key in checkpoint:
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
                self.trace["restored"].append(key)
            else:
                self.trace["skipped"].append(key)  # fvcore: silently skipped, no log line
        return checkpoint

    def has_checkpoint(self):
        return os.path.exists(os.path.join(self.save_dir, "last_checkpoint"))

    def get_checkpoint_file(self):
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        try:
            with open(save_file, "r") as f:
                last_saved = f.read().strip()
        except IOError:
            return ""
        return os.path.join(self.save_dir, last_saved)

    def resume_or_load(self, path, *, resume=True):
        if resume and self.has_checkpoint():
            path = self.get_checkpoint_file()
            return self.load(path)
        return self.load(path, checkpointables=[])

    def tag_last_checkpoint(self, basename):
        with open(os.path.join(self.save_dir, "last_checkpoint"), "w") as f:
            f.write(basename)  # no newline, as fvcore

    def _load_file(self, f):
        torch = _torch()
        return torch.load(f, map_location=torch.device("cpu"))  # fvcore: no weights_only argument


class TrackingCheckpointer(FvCheckpointer):
    """Trackron's override (trackron/checkpoint/tracking_checkpoint.py): full save, then overwritten with {'model'}."""

    def save(self, name, **kwargs):
        torch = _torch()
        if name != "model_final":
            super().save(name, **kwargs)
        basename = "{}.pth".format(name)
        save_file = os.path.join(self.save_dir, basename)
        data = {"model": self.model.state_dict()}
        with open(save_file, "wb") as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)


class PeriodicCheckpointer:
    """Transcription of fvcore PeriodicCheckpointer.step."""

    def __init__(self, checkpointer, period, max_iter=None, max_to_keep=None, file_prefix="model"):
        self.checkpointer = checkpointer
        self.period = int(period)
        self.max_iter = max_iter
        self.max_to_keep = max_to_keep
        self.recent_checkpoints = []
        self.file_prefix = file_prefix

    def step(self, iteration, **kwargs):
        iteration = int(iteration)
        additional_state = {"iteration": iteration}
        additional_state.update(kwargs)
        if (iteration + 1) % self.period == 0:
            self.checkpointer.save("{}_{:07d}".format(self.file_prefix, iteration), **additional_state)
            if self.max_to_keep is not None:
                self.recent_checkpoints.append(self.checkpointer.get_checkpoint_file())
                if len(self.recent_checkpoints) > self.max_to_keep:
                    file_to_delete = self.recent_checkpoints.pop(0)
                    if os.path.exists(file_to_delete) and not file_to_delete.endswith(f"{self.file_prefix}_final.pth"):
                        os.remove(file_to_delete)
        if self.max_iter is not None:
            if iteration >= self.max_iter - 1:
                self.checkpointer.save(f"{self.file_prefix}_final", **additional_state)


def make_lr_multiplier(optimizer, max_iter, steps, gamma=0.1, warmup_iters=5, warmup_factor=0.001):
    """detectron2 LRMultiplier(WarmupParamScheduler(MultiStepParamScheduler)): state_dict = {base_lrs, last_epoch}."""
    torch = _torch()

    class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
        def __init__(self, opt):
            self._max_iter = max_iter
            super().__init__(opt, last_epoch=-1)

        def state_dict(self):
            # detectron2: "fvcore schedulers are stateless. Only keep pytorch scheduler states"
            return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

        def get_lr(self):
            it = self.last_epoch
            mult = gamma ** sum(1 for s in steps if it >= s)
            if it < warmup_iters:
                alpha = it / warmup_iters
                mult *= warmup_factor * (1 - alpha) + alpha
            return [base_lr * mult for base_lr in self.base_lrs]

    return LRMultiplier(optimizer)


def d2_config_yaml(name, max_iter, period, steps, weights, optimizer_name="SGD", extra=None):
    # yacs CfgNode.dump() style: keys sorted, two-space indent.
    lines = [
        "CUDNN_BENCHMARK: false",
        "MODEL:",
        "  DEVICE: cpu",
        "  META_ARCHITECTURE: TinyNet",
        "  WEIGHTS: %s" % (weights if weights else "''"),
        "OUTPUT_DIR: ./outputs/%s" % name,
        "SEED: 0",
        "SOLVER:",
        "  BASE_LR: 0.01",
        "  CHECKPOINT_PERIOD: %d" % period,
        "  GAMMA: 0.1",
        "  IMS_PER_BATCH: 4",
        "  MAX_ITER: %d" % max_iter,
        "  MOMENTUM: 0.9",
        "  OPTIMIZER: %s" % optimizer_name,
        "  STEPS:",
    ]
    lines += ["  - %d" % s for s in steps]
    lines += ["  WARMUP_ITERS: 5", "  WEIGHT_DECAY: 0.0001"]
    if extra:
        lines += extra
    lines.append("VERSION: 2")
    return "\n".join(lines) + "\n"


def d2_train(out_dir, max_iter, period, steps, *, resume, weights="", trackron=False, stop_after=None, log=None, run_iters=None, box=None):
    """detectron2 tools/plain_train_net.py do_train() on TinyNet (Trackron: tools/train_net.py with AdamW)."""
    torch = _torch()
    seed_all(0)
    model = tiny_net()
    if trackron:
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0001)
        import_timm()  # Trackron builds timm schedulers; LR is a pure function of the iteration
        import timm.scheduler

        scheduler = timm.scheduler.CosineLRScheduler(optimizer, t_initial=max_iter, warmup_t=5, warmup_lr_init=1e-5, t_in_epochs=False)
        checkpointer = TrackingCheckpointer(model, out_dir, optimizer=optimizer, scheduler=scheduler)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0001)
        scheduler = make_lr_multiplier(optimizer, max_iter, steps)
        checkpointer = FvCheckpointer(model, out_dir, optimizer=optimizer, scheduler=scheduler)
    if box is not None:
        box["checkpointer"] = checkpointer
    start_iter = checkpointer.resume_or_load(weights, resume=resume).get("iteration", -1) + 1
    periodic = PeriodicCheckpointer(checkpointer, period, max_iter=max_iter)
    first = None
    end = max_iter if stop_after is None else min(max_iter, stop_after + 1)  # stop_after: iteration at which the run is killed
    if run_iters is not None:
        end = min(end, start_iter + run_iters)
    for iteration in range(start_iter, end):
        if first is None:
            first = collections.OrderedDict(
                iteration=iteration,
                lr=optimizer.param_groups[0]["lr"],
                optimizerStateEntries=len(optimizer.state),
            )
        x, y = toy_batch(iteration)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if trackron:
            scheduler.step_update(iteration + 1)
        else:
            scheduler.step()
        if log is not None and (iteration + 1) % 5 == 0:
            log.append("iter: %d  total_loss: %.4f  lr: %.6g" % (iteration, loss.item(), optimizer.param_groups[0]["lr"]))
        periodic.step(iteration)
    return start_iter, first, checkpointer.trace


def d2_resume(name, max_iter, period, steps, weights="", trackron=False):
    """Resume a copy of the run with the transcribed plain_train_net / Trackron train_net loop; run one iteration."""
    tmp, dst = copy_for_resume(name)
    out = collections.OrderedDict()
    box = {}
    try:
        try:
            start_iter, first, trace = d2_train(dst, max_iter, period, steps, resume=True, weights=weights, trackron=trackron, run_iters=1, box=box)
        except Exception as e:  # noqa: BLE001
            ck = box["checkpointer"]
            out["error"] = err_str(e)
            out["attempted"] = ck.get_checkpoint_file() if ck.has_checkpoint() else None
            out["trace"] = ck.trace
            return rebase_paths(out, dst, name)
        out["startIter"] = start_iter
        out["trace"] = trace
        if first is not None:
            out["lrAtStart"] = first["lr"]
            out["optimizerStateEntries"] = first["optimizerStateEntries"]
            out["iterationsRun"] = 1
        else:
            out["iterationsRun"] = 0
            out["log"] = "Starting training from iteration {}".format(start_iter)
        return rebase_paths(out, dst, name)
    finally:
        shutil.rmtree(tmp)


def relpath_in(name, path):
    if not path:
        return None
    # path is inside the temp copy: <tmp>/<name>/...
    parts = path.replace(os.sep, "/").split("/" + name + "/", 1)
    return parts[1] if len(parts) == 2 else path


def d2_pointer(name, status):
    p = os.path.join(run_dir(name), "last_checkpoint")
    with open(p, "rb") as f:
        content = f.read().decode()
    return collections.OrderedDict(file="last_checkpoint", content=content, status=status)


FV_MAX_ITER, FV_PERIOD, FV_STEPS = 40, 10, [30]


def build_fvcore_base(name, *, max_iter=FV_MAX_ITER, stop_after=None, trackron=False, weights=""):
    d = run_dir(name)
    os.makedirs(d)
    log = []
    d2_train(d, max_iter, FV_PERIOD, FV_STEPS, resume=False, weights="", trackron=trackron, stop_after=stop_after, log=log)
    write_text(os.path.join(d, "config.yaml"), d2_config_yaml(name, max_iter, FV_PERIOD, FV_STEPS, weights, "AdamW" if trackron else "SGD"))
    # detectron2's setup_logger writes OUTPUT_DIR/log.txt (real lines carry timestamps; these don't)
    write_text(os.path.join(d, "log.txt"), "\n".join(["Starting training from iteration 0"] + log) + "\n")
    return d


def fv_framework_resume(name, res, outcome, counter="iteration", notes=""):
    fr = collections.OrderedDict()
    trace = res.get("trace", {})
    fr["file"] = relpath_in(name, trace.get("loaded")) if "error" not in res else None
    if "error" in res:
        fr["attempted"] = relpath_in(name, res.get("attempted"))
        fr["error"] = res["error"]
    fr["outcome"] = outcome
    fr["startsAt"] = res.get("startIter", None)
    fr["counterName"] = counter
    restored = list(trace.get("restored", [])) if "error" not in res else []
    if "error" not in res and res.get("startIter", 0) > 0:
        restored.append("counter")
    fr["restores"] = restored
    # a crash restores and resets nothing: training never starts
    fr["resets"] = [] if "error" in res else [k for k in ["model", "optimizer", "scheduler", "counter"] if k not in restored]
    if "lrAtStart" in res:
        fr["lrAtStart"] = res["lrAtStart"]
    fr["notes"] = notes
    return fr


def build_fvcore_healthy():
    name = "fvcore_healthy"
    build_fvcore_base(name, stop_after=24)  # killed at iteration 24 of 40: model_0000009/19 on disk
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert res["startIter"] == 20, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "ok"),
        fv_framework_resume(name, res, "resumes", notes="resume_or_load(cfg.MODEL.WEIGHTS, resume=True): has_checkpoint() sees last_checkpoint, loads OUTPUT_DIR/model_0000019.pth with model+optimizer+scheduler; start_iter = iteration + 1 = 20. Run was killed at iteration 24, so iterations 20-24 are redone."),
        collections.OrderedDict(file="model_0000019.pth", startsAt=20, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="pointer names the newest complete checkpoint; it has model, optimizer, scheduler and iteration=19"),
        extra={"observed": weights_only_probe(os.path.join(run_dir(name), "model_0000019.pth"))},
    )


def build_trackron():
    name = "trackron_model_only"
    weights = "./outputs/%s/last_checkpoint" % name
    build_fvcore_base(name, stop_after=24, trackron=True, weights=weights)
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS, weights=weights, trackron=True)
    assert res["startIter"] == 0, res
    # What MODEL.WEIGHTS=<pointer file> does when not resuming (fvcore load(path) -> torch.load on text)
    torch = _torch()
    try:
        torch.load(os.path.join(run_dir(name), "last_checkpoint"), map_location="cpu")
        weights_err = None
    except Exception as e:  # noqa: BLE001
        weights_err = err_str(e)
    try:
        torch.load(os.path.join(run_dir(name), "last_checkpoint"), map_location="cpu", weights_only=False)
        weights_err2 = None
    except Exception as e:  # noqa: BLE001
        weights_err2 = err_str(e)
    fr = fv_framework_resume(
        name, res, "starts-over",
        notes="Every model_XXXXXXX.pth holds only {'model'} (TrackingCheckpointer.save overwrites the full dict). --resume loads model_0000019.pth weights, silently skips optimizer and scheduler (fvcore 'if key in checkpoint'), returned dict is {} so start_iter = -1 + 1 = 0: 'Starting training from iteration 0', AdamW moments and the timm warm-up/cosine schedule restart, and the run re-writes model_0000009.pth... with fresh numbering.",
    )
    write_truth(
        name, "trackron", "reference", TRACKRON_REF, d2_pointer(name, "ok"), fr,
        collections.OrderedDict(
            file="model_0000019.pth", startsAt=20, restores=["model", "counter", "scheduler"], resets=["optimizer"],
            why="iteration is only recoverable from the file name model_0000019.pth (start at 20); the timm scheduler is a pure function of the iteration (step_update(20) restores the LR exactly); optimizer moments are absent from every file and cannot be recovered (warm restart of AdamW).",
        ),
        extra={
            "configWeights": collections.OrderedDict(
                key="MODEL.WEIGHTS", value=weights,
                note="pointer-as-weights mistake: ignored while resuming (last_checkpoint exists), but without --resume fvcore does load(MODEL.WEIGHTS) -> torch.load on the text file",
                torchLoadDefault=weights_err, torchLoadWeightsOnlyFalse=weights_err2,
            ),
            "observed": weights_only_probe(os.path.join(run_dir(name), "model_0000019.pth")),
        },
    )


def build_fvcore_dangling():
    name = "fvcore_dangling"
    d = build_fvcore_base(name, stop_after=24)
    os.remove(os.path.join(d, "model_0000019.pth"))  # deleted by hand (e.g. to free space); pointer still names it
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert "error" in res, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "dangling"),
        fv_framework_resume(name, res, "crashes", notes="has_checkpoint() only checks that last_checkpoint exists; load() then asserts os.path.isfile -> AssertionError 'Checkpoint ... not found!' (detectron2 DDP path: OSError 'File ... not found on main worker.'). No fallback to model_0000009.pth."),
        collections.OrderedDict(file="model_0000009.pth", startsAt=10, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="pointer target model_0000019.pth is gone; model_0000009.pth is the newest complete checkpoint (iteration 9)"),
    )


def build_fvcore_truncated():
    name = "fvcore_truncated_newest"
    d = build_fvcore_base(name, stop_after=24)
    p = os.path.join(d, "model_0000019.pth")
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(data[: size // 2])  # cut in the middle: no central directory, no end-of-central-directory record
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert "error" in res, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "truncated-target"),
        fv_framework_resume(name, res, "crashes", notes="torch.load of the truncated zip fails ('failed finding central directory'). fvcore writes last_checkpoint only after torch.save returns, so a kill during torch.save leaves the pointer on the OLDER file; a pointer naming a truncated file comes from a full disk / network file system / partial copy or sync of the run dir."),
        collections.OrderedDict(file="model_0000009.pth", startsAt=10, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="model_0000019.pth is truncated (%d of %d bytes, no zip end records); model_0000009.pth is the newest complete checkpoint" % (size // 2, size)),
        extra={"truncatedFile": collections.OrderedDict(file="model_0000019.pth", keptBytes=size // 2, originalBytes=size)},
    )


def build_fvcore_killed_mid_save():
    name = "fvcore_killed_mid_save"
    d = build_fvcore_base(name, stop_after=24)
    p = os.path.join(d, "model_0000019.pth")
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(data[: size // 2])
    with open(os.path.join(d, "last_checkpoint"), "w") as f:
        f.write("model_0000009.pth")  # fvcore tags the pointer only after torch.save returns
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert res.get("startIter") == 10, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "ok"),
        fv_framework_resume(name, res, "resumes", notes="the process was killed inside torch.save of model_0000019.pth (fvcore writes straight to the final path, not atomic): the file is truncated, but last_checkpoint was not yet re-tagged and still names model_0000009.pth, so resume loads that and starts at iteration 10. The truncated model_0000019.pth stays on disk and is overwritten when iteration 19 is reached again."),
        collections.OrderedDict(file="model_0000009.pth", startsAt=10, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="pointer names the newest COMPLETE checkpoint; model_0000019.pth is newer by name but truncated (%d of %d bytes)" % (size // 2, size)),
        extra={"truncatedFile": collections.OrderedDict(file="model_0000019.pth", keptBytes=size // 2, originalBytes=size)},
    )


def zip_member_data_offset(buf, member):
    z = zipfile.ZipFile(io.BytesIO(bytes(buf)))
    info = z.getinfo(member)
    nl, el = struct.unpack("<HH", bytes(buf[info.header_offset + 26 : info.header_offset + 30]))
    return info.header_offset + 30 + nl + el, info


def build_fvcore_bitflip():
    name = "fvcore_bitflip"
    d = build_fvcore_base(name, stop_after=24)
    p = os.path.join(d, "model_0000019.pth")
    buf = bytearray(open(p, "rb").read())
    z = zipfile.ZipFile(io.BytesIO(bytes(buf)))
    # fc1.weight is the first tensor pickled -> storage key "0"
    member = [n for n in z.namelist() if n.endswith("/data/0")][0]
    off, info = zip_member_data_offset(buf, member)
    flip_at = off + 4 * 5 + 3  # element 5 of fc1.weight, most significant byte (sign/exponent)
    bit = 0x20
    before = struct.unpack("<f", bytes(buf[off + 20 : off + 24]))[0]
    buf[flip_at] ^= bit
    after = struct.unpack("<f", bytes(buf[off + 20 : off + 24]))[0]
    with open(p, "wb") as f:
        f.write(buf)
    bad = zipfile.ZipFile(p).testzip()
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert res.get("startIter") == 20, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "corrupt-target"),
        fv_framework_resume(name, res, "resumes", notes="torch (2.13 observed) does not verify zip CRC-32 when loading: the file loads, training resumes at iteration 20 with fc1.weight[1][1] silently changed from %r to %r." % (before, after)),
        collections.OrderedDict(file="model_0000009.pth", startsAt=10, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="model_0000019.pth member %s fails its CRC-32 (one flipped bit in tensor bytes); the newest intact checkpoint is model_0000009.pth" % member),
        extra={"corruption": collections.OrderedDict(file="model_0000019.pth", member=member, byteOffset=flip_at, xorMask=bit, tensor="model.fc1.weight", element=5, before=before, after=after, zipTestzipFirstBad=bad)},
    )


def build_fvcore_bitflip_pickle():
    name = "fvcore_bitflip_pickle"
    d = build_fvcore_base(name, stop_after=24)
    p = os.path.join(d, "model_0000019.pth")
    buf = bytearray(open(p, "rb").read())
    z = zipfile.ZipFile(io.BytesIO(bytes(buf)))
    member = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
    pkl = z.read(member)
    off, info = zip_member_data_offset(buf, member)
    # flip the high bit of the first BINPUT opcode after the middle of data.pkl: 'q' (0x71) -> 0xf1,
    # which is not a pickle opcode, so unpickling stops there with "invalid load key".
    target = None
    for op, arg, pos in pickletools.genops(pkl):
        if pos > len(pkl) // 2 and op.name == "BINPUT":
            target = pos
            break
    assert target is not None
    buf[off + target] ^= 0x80
    with open(p, "wb") as f:
        f.write(buf)
    bad = zipfile.ZipFile(p).testzip()
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert "error" in res, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "corrupt-target"),
        fv_framework_resume(name, res, "crashes", notes="one flipped bit turns a BINPUT opcode (0x71) in data.pkl into 0xf1; torch.load fails while unpickling (the zip container itself still parses; only the CRC-32 of data.pkl is wrong)."),
        collections.OrderedDict(file="model_0000009.pth", startsAt=10, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="data.pkl of model_0000019.pth is corrupt (CRC mismatch, invalid opcode); the newest intact checkpoint is model_0000009.pth"),
        extra={
            "corruption": collections.OrderedDict(file="model_0000019.pth", member=member, byteOffset=off + target, pickleOffset=target, xorMask=0x80, zipTestzipFirstBad=bad),
            "observed": weights_only_probe(p),
        },
    )


def build_fvcore_pointer_to_text():
    name = "fvcore_pointer_to_text"
    d = build_fvcore_base(name, stop_after=24)
    with open(os.path.join(d, "last_checkpoint"), "w") as f:
        f.write("log.txt")  # e.g. a script that tags "the newest file in OUTPUT_DIR"
    res = d2_resume(name, FV_MAX_ITER, FV_PERIOD, FV_STEPS)
    assert "error" in res, res
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "not-a-checkpoint"),
        fv_framework_resume(name, res, "crashes", notes="last_checkpoint names log.txt (detectron2's own log file); torch.load on a text file fails in the unpickler ('invalid load key' from the first byte of the text; wrapped in 'Weights only load failed' on torch >= 2.6)."),
        collections.OrderedDict(file="model_0000019.pth", startsAt=20, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="the pointer names a text file; the newest checkpoint in OUTPUT_DIR by iteration is model_0000019.pth"),
    )


def build_fvcore_finished():
    name = "fvcore_finished"
    max_iter = 30
    d = run_dir(name)
    os.makedirs(d)
    log = []
    d2_train(d, max_iter, FV_PERIOD, [20], resume=False, log=log)
    write_text(os.path.join(d, "config.yaml"), d2_config_yaml(name, max_iter, FV_PERIOD, [20], ""))
    write_text(os.path.join(d, "log.txt"), "\n".join(["Starting training from iteration 0"] + log) + "\n")
    res = d2_resume(name, max_iter, FV_PERIOD, [20])
    assert res["startIter"] == 30 and res["iterationsRun"] == 0, res
    fr = fv_framework_resume(name, res, "trains-nothing", notes="pointer names model_final.pth with iteration=29 = MAX_ITER-1; start_iter = 30 = MAX_ITER, so the loop body never runs: 'Starting training from iteration 30' and training ends immediately (detectron2#1294).")
    write_truth(
        name, "fvcore", "reference", FVCORE_REF, d2_pointer(name, "ok"), fr,
        collections.OrderedDict(file="model_final.pth", startsAt=30, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="the run is finished (iteration 29 of MAX_ITER 30); nothing to resume. To train longer, raise SOLVER.MAX_ITER; to fine-tune from it, load weights only (MODEL.WEIGHTS, no --resume). model_0000029.pth holds the same iteration."),
        extra={"config": collections.OrderedDict(file="config.yaml", maxIter=max_iter)},
    )


# ----------------------------------------------------------------------------------------------
# mmengine (built by hand)
# ----------------------------------------------------------------------------------------------

MMENGINE_VERSION = "0.10.7"
MMENGINE_REF = "reference: open-mmlab/mmengine 25434293 Runner.save_checkpoint / CheckpointHook / find_latest_checkpoint (mmengine_version written: %s)" % MMENGINE_VERSION


def fake_module(modname, classes):
    """Create (or extend) a module in sys.modules holding classes whose pickles name modname.qualname."""
    parts = modname.split(".")
    for i in range(1, len(parts) + 1):
        mn = ".".join(parts[:i])
        if mn not in sys.modules:
            sys.modules[mn] = types.ModuleType(mn)
        if i > 1:
            setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[mn])
    mod = sys.modules[modname]
    out = []
    for cls in classes:
        cls.__module__ = modname
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
        out.append(cls)
    return out


def mm_classes():
    import numpy as np

    class HistoryBuffer:
        def __init__(self, log_history=(), count_history=(), max_length=1000000):
            self.max_length = max_length
            self._log_history = np.array(log_history)
            self._count_history = np.array(count_history)

        def update(self, v, c=1):
            self._log_history = np.append(self._log_history, v)
            self._count_history = np.append(self._count_history, c)

    fake_module("mmengine.logging.history_buffer", [HistoryBuffer])
    return HistoryBuffer


def mm_multistep_state(milestones, gamma, base_lr, last_step, optimizer):
    # MultiStepLR(MultiStepParamScheduler) __dict__ minus optimizer, in attribute-assignment order
    st = collections.OrderedDict()
    st["milestones"] = collections.Counter(milestones)
    st["gamma"] = gamma
    st["param_name"] = "lr"
    st["begin"] = 0
    st["end"] = 1000000000
    st["by_epoch"] = True
    st["base_values"] = [base_lr]
    st["last_step"] = last_step
    st["_global_step"] = last_step
    st["verbose"] = False
    st["_last_value"] = [g["lr"] for g in optimizer.param_groups]
    return dict(st)


def build_mmengine():
    name = "mmengine_run"
    torch = _torch()
    d = run_dir(name)
    os.makedirs(d)
    HistoryBuffer = mm_classes()
    seed_all(0)
    model = tiny_net()
    base_lr = 0.01
    opt = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, weight_decay=0.0001)
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])  # _ParamScheduler.__init__ does setdefault('initial_lr', ...)
    max_epochs, iters_per_epoch, milestones = 4, 4, [3]
    cfg_text = (
        "default_scope = 'mmengine'\n"
        "model = dict(type='TinyNet')\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))\n"
        "param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[3], gamma=0.1)]\n"
        "train_cfg = dict(by_epoch=True, max_epochs=4, val_interval=1)\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))\n"
        "randomness = dict(seed=0)\n"
        "resume = False\n"
        "load_from = None\n"
        "work_dir = '%s'\n" % d
    )
    hub_scalars = collections.OrderedDict()
    for k in ("train/lr", "train/loss", "train/time", "train/data_time"):
        hub_scalars[k] = HistoryBuffer()
    it = 0
    lr_now = base_lr
    for epoch in range(2):  # killed during epoch 3 (index 2)
        for b in range(iters_per_epoch):
            x, y = toy_batch(it)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            hub_scalars["train/lr"].update(lr_now)
            hub_scalars["train/loss"].update(round(loss.item(), 6))
            hub_scalars["train/time"].update(0.01)
            hub_scalars["train/data_time"].update(0.001)
        # scheduler.step() at epoch end (by_epoch)
        last_step = epoch + 1
        if last_step in milestones:
            for g in opt.param_groups:
                g["lr"] *= 0.1
        lr_now = opt.param_groups[0]["lr"]
        meta = collections.OrderedDict()
        meta["epoch"] = epoch + 1  # by-epoch save: epochs completed
        meta["iter"] = it
        meta["cfg"] = cfg_text
        meta["seed"] = 0
        meta["experiment_name"] = "tiny_20250101_000000"
        meta["time"] = "20250101_0000%02d" % (epoch + 1)
        meta["mmengine_version"] = MMENGINE_VERSION
        runtime_info = collections.OrderedDict(
            [("epoch", epoch + 1), ("iter", it), ("max_epochs", max_epochs), ("max_iters", max_epochs * iters_per_epoch)]
        )
        resumed = collections.OrderedDict((k, True) for k in list(hub_scalars) + list(runtime_info))
        ckpt = {
            "meta": dict(meta),
            "state_dict": collections.OrderedDict((k, v.cpu()) for k, v in model.state_dict().items()),
            "message_hub": {
                "log_scalars": copy.deepcopy(hub_scalars),
                "runtime_info": copy.deepcopy(runtime_info),
                "resumed_keys": copy.deepcopy(resumed),
            },
            "optimizer": opt.state_dict(),
            "param_schedulers": [mm_multistep_state(milestones, 0.1, base_lr, last_step, opt)],
        }
        fname = os.path.join(d, "epoch_%d.pth" % (epoch + 1))
        with io.BytesIO() as f:  # mmengine: torch.save to BytesIO, then file_backend.put(bytes, path)
            torch.save(ckpt, f)
            with open(fname, "wb") as out:
                out.write(f.getvalue())
        with open(os.path.join(d, "last_checkpoint"), "w") as f:
            f.write(fname)  # absolute path, no newline (CheckpointHook)
    write_text(os.path.join(d, "tiny_config.py"), cfg_text)  # Runner.dump_config
    pointer_text = open(os.path.join(d, "last_checkpoint")).read()
    pointer = collections.OrderedDict(file="last_checkpoint", content=pointer_text, status="moved")
    write_truth(
        name, "mmengine", "reference", MMENGINE_REF, pointer,
        collections.OrderedDict(
            file=None, outcome="crashes", startsAt=None, counterName="epoch",
            restores=[], resets=[],
            attempted=pointer_text,
            error="FileNotFoundError: [Errno 2] No such file or directory: '%s'" % pointer_text,
            notes="The run was written on the cluster (generatedAt) and is shipped as a copy, as a run copied off a cluster is. Runner(resume=True, load_from=None): find_latest_checkpoint(work_dir) reads last_checkpoint, .strip(), and returns the ABSOLUTE path as-is (not joined with work_dir), so in the copy mmengine's load_checkpoint opens the cluster path, which does not exist off the cluster: FileNotFoundError. Where the pointer is rewritten to the copy's own epoch_2.pth, train_loop._epoch = meta.epoch = 2, _iter = meta.iter = 8, so training continues with the 3rd epoch. torch >= 2.6 caveat: see observed.",
        ),
        collections.OrderedDict(file="epoch_2.pth", startsAt=2, restores=["model", "optimizer", "scheduler", "counter", "message_hub"], resets=[], why="the pointer names the cluster's epoch_2.pth; the copy holds the same file, the newest complete checkpoint: meta.epoch=2, meta.iter=8, optimizer and param_schedulers present"),
        extra={
            "pointerRebase": collections.OrderedDict(generatedAt=d, pointerTarget=open(os.path.join(d, "last_checkpoint")).read(), relativeTarget="epoch_2.pth"),
            "observed": weights_only_probe(os.path.join(d, "epoch_2.pth")),
        },
    )


# ----------------------------------------------------------------------------------------------
# DeepSpeed (built by hand)
# ----------------------------------------------------------------------------------------------

DS_VERSION = "0.16.4"
DS_REF = "reference: microsoft/DeepSpeed 38327e07f engine.save_checkpoint / load_checkpoint, ZeRO stage 1 (ds_version written: %s)" % DS_VERSION


def ds_classes():
    class LossScaler:
        def __init__(self, scale=1.0):
            self.cur_scale = scale
            self.dynamic = False

    class ZeroStageEnum(int, enum.Enum):
        disabled = 0
        optimizer_states = 1
        gradients = 2
        weights = 3
        max_stage = 3

    class fragment_address(collections.namedtuple("fragment_address", ["numel", "start"])):
        __slots__ = ()

    fake_module("deepspeed.runtime.fp16.loss_scaler", [LossScaler])
    fake_module("deepspeed.runtime.zero.config", [ZeroStageEnum])
    fragment_address.__qualname__ = "fragment_address"
    fake_module("deepspeed.utils.tensor_fragment", [fragment_address])
    return LossScaler, ZeroStageEnum, fragment_address


def ds_model_states(module, param_shapes, step, ds_config, lr_scheduler):
    """engine._save_checkpoint's dict for ZeRO-1/2 on one rank, in its order (the optimizer is in the partitions)."""
    state = collections.OrderedDict()
    state["module"] = module
    state["buffer_names"] = []
    state["optimizer"] = None  # ZeRO: optimizer state lives in the *_optim_states.pt shards
    state["param_shapes"] = param_shapes
    state["frozen_param_shapes"] = None
    state["shared_params"] = {}
    state["frozen_param_fragments"] = None
    state["lr_scheduler"] = lr_scheduler
    state["data_sampler"] = None
    state["random_ltd"] = None
    state["sparse_tensor_module_names"] = set()
    state["skipped_steps"] = 0
    state["global_steps"] = step
    state["global_samples"] = step * 4
    state["dp_world_size"] = 1
    state["mp_world_size"] = 1
    state["ds_config"] = ds_config
    state["ds_version"] = DS_VERSION
    return state


def ds_zero1_optim_states(classes, base_optimizer_state, flat_groups, slice_mappings, ds_config):
    """What stage_1_and_2.py's state_dict saves for one rank holding every partition (partition_count 1);
    `classes` is the one ds_classes() registration the rest of the save pickles too."""
    LossScaler, ZeroStageEnum, _ = classes
    osd = collections.OrderedDict()
    osd["loss_scaler"] = LossScaler(1.0)
    osd["dynamic_loss_scale"] = False
    osd["overflow"] = False
    osd["clip_grad"] = 1.0
    osd["base_optimizer_state"] = base_optimizer_state
    osd["single_partition_of_fp32_groups"] = flat_groups
    osd["zero_stage"] = ZeroStageEnum.optimizer_states
    osd["group_paddings"] = [0 for _ in flat_groups]
    osd["partition_count"] = [1 for _ in flat_groups]
    osd["ds_version"] = DS_VERSION
    osd["param_slice_mappings"] = slice_mappings
    return {"optimizer_state_dict": dict(osd), "ds_config": ds_config, "ds_version": DS_VERSION}


def build_deepspeed(name, write_latest=True):
    torch = _torch()
    classes = ds_classes()
    fragment_address = classes[2]
    d = run_dir(name)
    os.makedirs(d)
    seed_all(0)
    model = tiny_net()
    names = [n for n, _ in model.named_parameters()]
    ds_config = {
        "train_batch_size": 4,
        "train_micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 1,
        "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.0}},
        "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 0.01, "warmup_num_steps": 5}},
        "zero_optimization": {"stage": 1},
        "gradient_clipping": 1.0,
        "steps_per_print": 10,
    }
    # ZeRO-1: the optimizer runs on one flat fp32 partition holding every parameter
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    opt = torch.optim.AdamW([flat], lr=0.01, weight_decay=0.0)

    def unflatten():
        off = 0
        with torch.no_grad():
            for p in model.parameters():
                n = p.numel()
                p.copy_(flat[off : off + n].view_as(p))
                off += n

    def warmup_lr(step):
        return 0.01 * min(1.0, math.log(step + 1) / math.log(5)) if step < 5 else 0.01

    slice_map = collections.OrderedDict()
    off = 0
    for n, p in model.named_parameters():
        slice_map[n] = fragment_address(numel=p.numel(), start=off)
        off += p.numel()
    for step in range(1, 21):
        x, y = toy_batch(step)
        unflatten()
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        flat.grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        for g in opt.param_groups:
            g["lr"] = warmup_lr(step - 1)
        opt.step()
        if step % 10 == 0:
            unflatten()
            tag = "global_step%d" % step
            td = os.path.join(d, tag)
            os.makedirs(td)
            param_shapes = [collections.OrderedDict((n, p.shape) for n, p in model.named_parameters())]
            state = ds_model_states(model.state_dict(), param_shapes, step, ds_config, {"last_batch_iteration": step - 1})
            state["step"] = step  # client_state={'step': step} merged at top level
            torch.save(dict(state), os.path.join(td, "mp_rank_00_model_states.pt"))
            zero_sd = ds_zero1_optim_states(classes, opt.state_dict(), [flat.detach().clone()], [slice_map], ds_config)
            torch.save(zero_sd, os.path.join(td, "zero_pp_rank_0_mp_rank_00_optim_states.pt"))
            if write_latest:
                with open(os.path.join(d, "latest"), "w") as f:
                    f.write(tag)  # tag only, no newline
    return d


def build_deepspeed_run():
    name = "deepspeed_run"
    d = build_deepspeed(name)
    write_truth(
        name, "deepspeed", "reference", DS_REF,
        collections.OrderedDict(file="latest", content=open(os.path.join(d, "latest")).read(), status="ok"),
        collections.OrderedDict(
            file="global_step20/mp_rank_00_model_states.pt", outcome="resumes", startsAt=20, counterName="global_step",
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            notes="engine.load_checkpoint(save_dir): reads 'latest' (.strip()) -> tag global_step20, loads mp_rank_00_model_states.pt (module, lr_scheduler, global_steps=20) and zero_pp_rank_0_mp_rank_00_optim_states.pt; returns (path, client_state={'step': 20}). zero_to_fp32.py (copied by DeepSpeed next to 'latest') is not included in this sample.",
        ),
        collections.OrderedDict(file="global_step20/mp_rank_00_model_states.pt", startsAt=20, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="'latest' names global_step20, whose model-state and ZeRO optimizer shard files are both present and complete"),
        extra={"observed": weights_only_probe(os.path.join(d, "global_step20", "zero_pp_rank_0_mp_rank_00_optim_states.pt"))},
    )


def build_deepspeed_no_latest():
    name = "deepspeed_no_latest"
    build_deepspeed(name, write_latest=False)
    write_truth(
        name, "deepspeed", "reference", DS_REF,
        collections.OrderedDict(file="latest", content=None, status="missing"),
        collections.OrderedDict(
            file=None, outcome="starts-over", startsAt=0, counterName="global_step",
            restores=[], resets=["model", "optimizer", "scheduler", "counter"],
            notes="No 'latest' file (saved with save_latest=False, or the run dir was copied without it): load_checkpoint(dir) logs 'Unable to find latest file at .../latest, if trying to load latest checkpoint please ensure this file exists or pass an explicit checkpoint tag when loading a checkpoint.' and returns (None, None); unless the caller checks, training silently starts from step 0 (tdrussell/diffusion-pipe#387).",
        ),
        collections.OrderedDict(file="global_step20/mp_rank_00_model_states.pt", startsAt=20, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="highest complete tag dir is global_step20; pass tag='global_step20' (or recreate 'latest' with content 'global_step20', no newline)"),
    )


# ----------------------------------------------------------------------------------------------
# pytracking / ltr (built by hand)
# ----------------------------------------------------------------------------------------------

PYTRACKING_REF = "reference: visionml/pytracking 7eb9e74 ltr/trainers/base_trainer.py (save_checkpoint / load_checkpoint)"


def pt_classes():
    class NetConstructor:
        def __init__(self, fun_name, fun_module, args, kwds):
            self.fun_name = fun_name
            self.fun_module = fun_module
            self.args = args
            self.kwds = kwds

    class AverageMeter:
        def __init__(self):
            self.val = 0
            self.avg = 0
            self.sum = 0
            self.count = 0
            self.has_new_data = False

        def update(self, val, n=1):
            self.val = val
            self.sum += val * n
            self.count += n
            self.avg = self.sum / self.count
            self.has_new_data = True

    class StatValue:
        def __init__(self):
            self.val = 0
            self.history = []
            self.has_new_data = False

    class Settings:
        pass

    class EnvironmentSettings:
        pass

    fake_module("ltr.admin.model_constructor", [NetConstructor])
    fake_module("ltr.admin.stats", [AverageMeter, StatValue])
    fake_module("ltr.admin.settings", [Settings])
    fake_module("ltr.admin.local", [EnvironmentSettings])
    return NetConstructor, AverageMeter, StatValue, Settings, EnvironmentSettings


def build_pytracking():
    name = "pytracking_run"
    torch = _torch()
    NetConstructor, AverageMeter, StatValue, Settings, EnvironmentSettings = pt_classes()
    d = run_dir(name)
    os.makedirs(d)
    seed_all(0)
    net = tiny_net()
    net.__class__.__name__ = "DiMPnet"  # type(net).__name__ is the net_type used in file names
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.2)
    env = EnvironmentSettings()
    env.workspace_dir = d
    env.tensorboard_dir = d + "/tensorboard"
    env.pretrained_networks = d + "/pretrained_networks"
    settings = Settings()
    settings.env = env
    settings.use_gpu = False
    settings.module_name = "dimp"
    settings.script_name = "dimp18"
    settings.project_path = "ltr/dimp/dimp18"
    settings.description = "Default train settings for DiMP with ResNet18 as backbone."
    settings.batch_size = 4
    settings.num_workers = 0
    settings.multi_gpu = False
    settings.print_interval = 1
    constructor = NetConstructor("dimpnet18", "ltr.models.tracking.dimpnet", (), {"filter_size": 4, "optim_iter": 5, "backbone_pretrained": True})
    stats = collections.OrderedDict([("train", None), ("val", None)])
    ckdir = os.path.join(d, "checkpoints", "ltr", "dimp", "dimp18")
    os.makedirs(ckdir)
    max_epochs = 5
    for epoch in range(1, 4):  # crash while saving epoch 4
        sched.step()  # BaseTrainer.train: lr_scheduler.step() before train_epoch()
        meters = collections.OrderedDict([("Loss/total", AverageMeter()), ("LearningRate/group0", StatValue())])
        for b in range(4):
            x, y = toy_batch(epoch * 4 + b)
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            meters["Loss/total"].update(round(loss.item(), 6), 4)
        meters["LearningRate/group0"].val = opt.param_groups[0]["lr"]
        meters["LearningRate/group0"].history.append(opt.param_groups[0]["lr"])
        stats["train"] = meters
        state = {
            "epoch": epoch,
            "actor_type": "DiMPActor",
            "net_type": "DiMPnet",
            "net": net.state_dict(),
            "net_info": None,
            "constructor": constructor,
            "optimizer": opt.state_dict(),
            "stats": stats,
            "settings": settings,
        }
        tmp_path = os.path.join(ckdir, "DiMPnet_ep%04d.tmp" % epoch)
        torch.save(state, tmp_path)
        os.rename(tmp_path, os.path.join(ckdir, "DiMPnet_ep%04d.pth.tar" % epoch))
    # epoch 4 finished training but the process died inside torch.save of the .tmp file
    state["epoch"] = 4
    tmp_path = os.path.join(ckdir, "DiMPnet_ep0004.tmp")
    torch.save(state, tmp_path)
    with open(tmp_path, "rb") as f:
        whole = f.read()
    with open(tmp_path, "wb") as f:
        f.write(whole[: len(whole) // 3])
    newest = os.path.join(ckdir, "DiMPnet_ep0003.pth.tar")
    write_truth(
        name, "pytracking", "reference", PYTRACKING_REF, None,
        collections.OrderedDict(
            file="checkpoints/ltr/dimp/dimp18/DiMPnet_ep0003.pth.tar", outcome="resumes", startsAt=3, counterName="epoch",
            restores=["model", "optimizer", "counter", "scheduler"], resets=[],
            notes="train(max_epochs=%d, load_latest=True): sorted(glob('<workspace>/checkpoints/ltr/dimp/dimp18/DiMPnet_ep*.pth.tar'))[-1] = DiMPnet_ep0003.pth.tar (the leftover DiMPnet_ep0004.tmp from the crash is ignored by the glob); self.epoch = 3, loop runs epochs 4..5 (1-based), lr_scheduler.last_epoch = 3 (scheduler state is never saved; rebuilt from epoch). torch >= 2.6 caveat: ltr.admin.loading.torch_load_legacy calls torch.load(path) with the weights_only=True default, which rejects the pickled Settings/NetConstructor/AverageMeter objects (see observed); with fail_safe=True the trainer then retries 10 times and prints 'Finished training!' without training." % max_epochs,
        ),
        collections.OrderedDict(file="checkpoints/ltr/dimp/dimp18/DiMPnet_ep0003.pth.tar", startsAt=3, restores=["model", "optimizer", "counter", "scheduler"], resets=[], why="newest complete epoch file (epoch 3 done); DiMPnet_ep0004.tmp is a partial write and must be ignored; scheduler position is recomputed from epoch"),
        extra={"observed": weights_only_probe(newest)},
    )


# ----------------------------------------------------------------------------------------------
# torchtitan-style DCP (real torch.distributed.checkpoint.save)
# ----------------------------------------------------------------------------------------------


def build_dcp():
    name = "dcp_run"
    torch = _torch()
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    import torch.distributed.checkpoint.filesystem as dcp_fs

    # DCP stamps each save with a random uuid4 (StorageMeta.save_id in .metadata); make it reproducible
    ids = iter(["00000000-0000-4000-8000-%012d" % i for i in range(1, 1000)])
    dcp_fs._generate_uuid = lambda: next(ids)
    d = run_dir(name)
    ck = os.path.join(d, "checkpoint")
    os.makedirs(ck)
    seed_all(0)
    model = tiny_net()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
    ntok = 0
    for step in range(1, 31):
        x, y = toy_batch(step)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ntok += 4 * 16
        if step % 10 == 0:
            state = {}
            state.update(get_model_state_dict(model))  # torchtitan: model FQNs flattened to the top level
            state["optimizer"] = get_optimizer_state_dict(model, opt)
            state["lr_scheduler"] = sched.state_dict()
            state["train_state"] = {"step": torch.tensor(step), "ntokens_seen": torch.tensor(ntok)}
            sd = os.path.join(ck, "step-%d" % step)
            dcp.save(state, checkpoint_id=sd)
            if step == 30:
                os.remove(os.path.join(sd, ".metadata"))  # killed before DCP wrote .metadata (written last)
    # torchtitan _find_load_step: regex step-(\d+), valid only if .metadata exists, take max
    import re

    steps = [int(m.group(1)) for e in os.listdir(ck) if (m := re.search(r"step-(\d+)", e)) and os.path.isfile(os.path.join(ck, e, ".metadata"))]
    chosen = max(steps)
    # verify by actually loading the chosen step with DCP into a fresh state
    seed_all(1)
    m2 = tiny_net()
    o2 = torch.optim.AdamW(m2.parameters(), lr=0.01)
    st2 = {}
    st2.update(get_model_state_dict(m2))
    st2["train_state"] = {"step": torch.tensor(0), "ntokens_seen": torch.tensor(0)}
    dcp.load(st2, checkpoint_id=os.path.join(ck, "step-%d" % chosen))
    loaded_step = int(st2["train_state"]["step"])
    # and what DCP does on the incomplete dir
    try:
        st3 = {"train_state": {"step": torch.tensor(0), "ntokens_seen": torch.tensor(0)}}
        dcp.load(st3, checkpoint_id=os.path.join(ck, "step-30"))
        incomplete_err = None
    except BaseException as e:  # noqa: BLE001 - CheckpointException derives from BaseException
        last = [l.strip() for l in str(e).splitlines() if l.strip()][-1]
        incomplete_err = "%s: %s" % (type(e).__name__, last[:300])
    write_truth(
        name, "dcp", "reference", "reference: pytorch/torchtitan b5bcd76c6 CheckpointManager._find_load_step; files written and re-read by real torch.distributed.checkpoint (torch %s)" % torch.__version__,
        None,
        collections.OrderedDict(
            file="checkpoint/step-20", outcome="resumes", startsAt=loaded_step, counterName="step",
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            notes="torchtitan picks the max step-N dir that contains .metadata: step-30 has __0_0.distcp but no .metadata (killed mid-save; DCP writes .metadata last) so it is skipped; dcp.load of step-20 verified (train_state.step=%d). dcp.load on step-30 directly: %s" % (loaded_step, incomplete_err),
        ),
        collections.OrderedDict(file="checkpoint/step-20", startsAt=20, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="step-30 lacks .metadata (incomplete); step-20 is the newest committed DCP checkpoint"),
        extra={"incomplete": collections.OrderedDict(dir="checkpoint/step-30", missing=".metadata", dcpLoadError=incomplete_err)},
    )


# ----------------------------------------------------------------------------------------------
# Lightning (real)
# ----------------------------------------------------------------------------------------------


class SimulatedKill(Exception):
    pass


def lightning_common():
    torch = _torch()
    import lightning as L

    class TinyModule(L.LightningModule):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.fc1 = torch.nn.Linear(4, 8)
            self.fc2 = torch.nn.Linear(8, 2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.fc2(torch.relu(self.fc1(x))), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}

    TinyModule.__module__ = "tiny_lightning"
    TinyModule.__qualname__ = "TinyModule"

    def loader():
        x, y = toy_data(16)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)

    return L, TinyModule, loader


def worker_lightning(root, layout, mode, kill_at, ckpt_path):
    """mode=train: fit from scratch, raise SimulatedKill at global_step kill_at.
    mode=rerun: fit(ckpt_path=ckpt) like a user restarting the job, raise SimulatedKill at global_step kill_at.
    mode=resume: fit(ckpt_path=ckpt), probe state at on_train_start, stop after one batch."""
    _torch()
    L, TinyModule, loader = lightning_common()
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(0, verbose=False)
    probe = {}

    class Killer(Callback):
        def on_train_start(self, trainer, pl_module):
            if mode == "resume":
                opt = trainer.optimizers[0]
                sch = trainer.lr_scheduler_configs[0].scheduler
                probe.update(
                    globalStep=trainer.global_step, currentEpoch=trainer.current_epoch,
                    optimizerStateEntries=len(opt.state), schedulerLastEpoch=sch.last_epoch,
                    lr=opt.param_groups[0]["lr"], ckptPath=trainer.ckpt_path,
                    logDir=trainer.logger.log_dir if trainer.logger else None,
                )

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if mode in ("train", "rerun") and trainer.global_step == kill_at:
                raise SimulatedKill("killed at global_step %d" % trainer.global_step)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if mode == "resume":
                raise SimulatedKill("probe done")

    if layout == "default":
        ckcb = ModelCheckpoint(save_last=True, save_top_k=-1)
    else:  # explicit dirpath + save_last="link"
        ckcb = ModelCheckpoint(dirpath=os.path.join(root, "checkpoints"), save_last="link", save_top_k=-1)
    trainer = L.Trainer(
        default_root_dir=root, max_epochs=4, callbacks=[ckcb, Killer()],
        logger=CSVLogger(root, name="lightning_logs"), log_every_n_steps=2,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
        deterministic=True,
    )
    caught = []
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        try:
            trainer.fit(TinyModule(), loader(), ckpt_path=(ckpt_path or None) if mode in ("resume", "rerun") else None)
        except SimulatedKill as e:
            caught.append(str(e))
    msgs = [str(w.message) for w in wlist if "ckpt_path" in str(w.message) or "checkpoint" in str(w.message).lower()]
    emit({"probe": probe, "killed": caught, "warnings": msgs, "version": L.__version__})


def lightning_files(d):
    out = []
    for base, dirs, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(base, f), d).replace(os.sep, "/"))
    return sorted(out)


def build_lightning():
    # 1) default layout: lightning_logs/version_0/checkpoints, save_last=True (a full copy)
    name = "lightning_run"
    d = run_dir(name)
    os.makedirs(d)
    tr = run_worker("lightning", d, "default", "train", "10", "")
    ver = tr["version"]
    tmp, dst = copy_for_resume(name)
    r_last = run_worker("lightning", dst, "default", "resume", "0", "last", rebase=(dst, name))
    shutil.rmtree(tmp)
    tmp, dst = copy_for_resume(name)
    r_path = run_worker("lightning", dst, "default", "resume", "0", os.path.join(dst, "lightning_logs/version_0/checkpoints/last.ckpt"), rebase=(dst, name))
    shutil.rmtree(tmp)
    assert r_last["probe"]["globalStep"] == 0 and r_path["probe"]["globalStep"] == 8, (r_last, r_path)
    write_truth(
        name, "lightning", "resumed", "lightning %s" % ver, None,
        collections.OrderedDict(
            file=None, outcome="starts-over", startsAt=r_last["probe"]["globalStep"], counterName="global_step",
            restores=[], resets=["model", "optimizer", "scheduler", "counter"],
            notes="Observed: Trainer(default_root_dir=run, same config).fit(model, ckpt_path='last') creates logger version_1, ModelCheckpoint.dirpath becomes lightning_logs/version_1/checkpoints, which has no last.ckpt -> warning %r and training starts at global_step 0, lr %r. Even the very first rerun misses version_0's last.ckpt with the default per-version checkpoint dir." % ((r_last["warnings"] or [""])[0][:200], r_last["probe"]["lr"]),
            observed=r_last["probe"],
        ),
        collections.OrderedDict(
            file="lightning_logs/version_0/checkpoints/last.ckpt", startsAt=r_path["probe"]["globalStep"],
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            why="newest checkpoint of the run (epoch 1 finished, global_step 8; the process was killed at step 10). Verified: fit(ckpt_path=<this file>) starts at global_step %d, epoch %d, optimizer state restored (%d entries), scheduler last_epoch %d, lr %r. epoch=1-step=8.ckpt is the same state." % (r_path["probe"]["globalStep"], r_path["probe"]["currentEpoch"], r_path["probe"]["optimizerStateEntries"], r_path["probe"]["schedulerLastEpoch"], r_path["probe"]["lr"]),
            verified=r_path["probe"],
        ),
        extra={"files": lightning_files(d), "observed": weights_only_probe(os.path.join(d, "lightning_logs/version_0/checkpoints/last.ckpt"))},
    )

    # 2) rerun: version_0 has checkpoints; a second run (ckpt_path="last") made version_1, started over, died early
    name = "lightning_rerun"
    d = run_dir(name)
    os.makedirs(d)
    run_worker("lightning", d, "default", "train", "10", "")
    # the rerun: fit(ckpt_path="last") then killed at global_step 2 (before its first checkpoint)
    rr = run_worker("lightning", d, "default", "rerun", "2", "last")
    tmp, dst = copy_for_resume(name)
    r_last = run_worker("lightning", dst, "default", "resume", "0", "last", rebase=(dst, name))
    shutil.rmtree(tmp)
    tmp, dst = copy_for_resume(name)
    r_path = run_worker("lightning", dst, "default", "resume", "0", os.path.join(dst, "lightning_logs/version_0/checkpoints/last.ckpt"), rebase=(dst, name))
    shutil.rmtree(tmp)
    assert r_last["probe"]["globalStep"] == 0 and r_path["probe"]["globalStep"] == 8
    write_truth(
        name, "lightning", "resumed", "lightning %s" % ver, None,
        collections.OrderedDict(
            file=None, outcome="starts-over", startsAt=0, counterName="global_step",
            restores=[], resets=["model", "optimizer", "scheduler", "counter"],
            notes="version_0 holds epoch=0-step=4.ckpt, epoch=1-step=8.ckpt and last.ckpt; a second run with fit(ckpt_path='last') found nothing in version_1/checkpoints, started from scratch and was killed at global_step 2 (version_1 has hparams.yaml/metrics.csv but no checkpoints). Observed: resuming again with ckpt_path='last' creates version_2 and starts at global_step 0 (warning %r)." % ((r_last["warnings"] or [""])[0][:120]),
            observed=r_last["probe"],
        ),
        collections.OrderedDict(
            file="lightning_logs/version_0/checkpoints/last.ckpt", startsAt=8, restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            why="the only checkpoints of this run dir are in version_0; last.ckpt there is the newest (global_step 8). Verified with fit(ckpt_path=<this file>): global_step %d, epoch %d." % (r_path["probe"]["globalStep"], r_path["probe"]["currentEpoch"]),
            verified=r_path["probe"],
        ),
        extra={"files": lightning_files(d), "rerun": collections.OrderedDict(ckptPath="last", killed=rr["killed"], warnings=rr["warnings"], created="lightning_logs/version_1")},
    )

    # 3) explicit dirpath + save_last="link": last.ckpt is a symlink; ckpt_path="last" works
    name = "lightning_dirpath_link"
    d = run_dir(name)
    os.makedirs(d)
    run_worker("lightning", d, "dirpath", "train", "10", "")
    tmp, dst = copy_for_resume(name)
    r_last = run_worker("lightning", dst, "dirpath", "resume", "0", "last", rebase=(dst, name))
    shutil.rmtree(tmp)
    assert r_last["probe"]["globalStep"] == 8, r_last
    link = os.path.join(d, "checkpoints", "last.ckpt")
    write_truth(
        name, "lightning", "resumed", "lightning %s" % ver, None,
        collections.OrderedDict(
            file="checkpoints/last.ckpt", outcome="resumes", startsAt=r_last["probe"]["globalStep"], counterName="global_step",
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            notes="ModelCheckpoint(dirpath=<run>/checkpoints, save_last='link'): last.ckpt is a symlink -> %s. Observed: fit(ckpt_path='last') finds it (dirpath does not depend on the logger version) and starts at global_step %d, epoch %d, optimizer entries %d, scheduler last_epoch %d, lr %r." % (os.readlink(link), r_last["probe"]["globalStep"], r_last["probe"]["currentEpoch"], r_last["probe"]["optimizerStateEntries"], r_last["probe"]["schedulerLastEpoch"], r_last["probe"]["lr"]),
            observed=r_last["probe"],
        ),
        collections.OrderedDict(file="checkpoints/last.ckpt", startsAt=8, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="last.ckpt links to %s, the newest checkpoint (global_step 8)" % os.readlink(link)),
        extra={"files": lightning_files(d), "symlinks": {"checkpoints/last.ckpt": os.readlink(link)}},
    )


# ----------------------------------------------------------------------------------------------
# transformers Trainer (real)
# ----------------------------------------------------------------------------------------------


def hf_common():
    torch = _torch()
    from transformers import PretrainedConfig, PreTrainedModel

    class TinyConfig(PretrainedConfig):
        model_type = "ckpt-tiny"

        def __init__(self, n_in=4, n_hidden=8, n_out=2, **kw):
            self.n_in = n_in
            self.n_hidden = n_hidden
            self.n_out = n_out
            super().__init__(**kw)

    class TinyModel(PreTrainedModel):
        config_class = TinyConfig

        def __init__(self, config):
            super().__init__(config)
            self.fc1 = torch.nn.Linear(config.n_in, config.n_hidden)
            self.fc2 = torch.nn.Linear(config.n_hidden, config.n_out)
            self.post_init()

        def forward(self, x, labels=None):
            logits = self.fc2(torch.relu(self.fc1(x)))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return {"loss": loss, "logits": logits}

    class DS(torch.utils.data.Dataset):
        def __init__(self):
            self.x, self.y = toy_data(32)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"x": self.x[i], "labels": self.y[i]}

    return TinyConfig, TinyModel, DS


def worker_hf(root, mode, stop_at):
    torch = _torch()
    import transformers
    import transformers.trainer as trainer_mod
    from transformers import Trainer, TrainerCallback, TrainingArguments

    transformers.logging.set_verbosity_error()
    TinyConfig, TinyModel, DS = hf_common()
    args = TrainingArguments(
        output_dir=root, max_steps=12, save_steps=3, per_device_train_batch_size=4, learning_rate=0.1,
        lr_scheduler_type="linear", warmup_steps=2, logging_steps=1, report_to="none", use_cpu=True,
        seed=0, data_seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )
    torch.manual_seed(0)
    model = TinyModel(TinyConfig())
    probe = {}
    picked = []
    loaded_opt = []
    orig_glc = trainer_mod.get_last_checkpoint

    def glc(folder):
        r = orig_glc(folder)
        picked.append(r)
        return r

    trainer_mod.get_last_checkpoint = glc
    orig_los = Trainer._load_optimizer_and_scheduler

    def los(self, checkpoint):
        loaded_opt.append(checkpoint)
        return orig_los(self, checkpoint)

    Trainer._load_optimizer_and_scheduler = los

    class CB(TrainerCallback):
        def on_train_begin(self, a, state, control, optimizer=None, lr_scheduler=None, **kw):
            if mode == "resume":
                probe.update(globalStep=state.global_step, epoch=state.epoch, optimizerStateEntries=len(optimizer.state),
                             schedulerLastEpoch=lr_scheduler.last_epoch, lr=lr_scheduler.get_last_lr()[0])

        def on_step_end(self, a, state, control, **kw):
            if mode == "train" and state.global_step == stop_at:
                control.should_training_stop = True  # the "kill": stop right after checkpoint-<stop_at> was saved
            if mode == "resume":
                control.should_training_stop = True
                control.should_save = False

    t = Trainer(model=model, args=args, train_dataset=DS(), callbacks=[CB()])
    err = None
    try:
        t.train(resume_from_checkpoint=True if mode == "resume" else None)
    except Exception as e:  # noqa: BLE001
        err = err_str(e)
    emit({"probe": probe, "picked": [os.path.basename(p) if p else None for p in picked],
          "optimizerSchedulerLoadCalledWith": [os.path.basename(p) if p else None for p in loaded_opt],
          "error": err, "version": transformers.__version__})


def hf_probe(name):
    tmp, dst = copy_for_resume(name)
    try:
        return run_worker("hf", dst, "resume", "0", rebase=(dst, name))
    finally:
        shutil.rmtree(tmp)


def hf_files(d):
    return lightning_files(d)


def build_hf():
    # healthy
    name = "hf_trainer_run"
    d = run_dir(name)
    os.makedirs(d)
    tr = run_worker("hf", d, "train", "6")
    ver = tr["version"]
    r = hf_probe(name)
    p = r["probe"]
    assert r["error"] is None and p["globalStep"] == 6 and p["optimizerStateEntries"] > 0 and p["schedulerLastEpoch"] == 6, r
    write_truth(
        name, "hf-trainer", "resumed", "transformers %s" % ver, None,
        collections.OrderedDict(
            file="checkpoint-6", outcome="resumes", startsAt=p["globalStep"], counterName="global_step",
            restores=["model", "optimizer", "scheduler", "counter", "rng"], resets=[],
            notes="Observed: trainer.train(resume_from_checkpoint=True) -> get_last_checkpoint picked %s; global_step %d at train begin, optimizer state %d entries, scheduler last_epoch %d, lr %r; data loader fast-forwarded 6 batches." % (r["picked"][0], p["globalStep"], p["optimizerStateEntries"], p["schedulerLastEpoch"], p["lr"]),
            observed=p,
        ),
        collections.OrderedDict(file="checkpoint-6", startsAt=6, restores=["model", "optimizer", "scheduler", "counter", "rng"], resets=[], why="highest checkpoint-N and complete (model.safetensors, optimizer.pt, scheduler.pt, rng_state.pth, trainer_state.json)"),
        extra={"files": hf_files(d)},
    )

    # newest lacks scheduler.pt
    name = "hf_missing_scheduler"
    d = run_dir(name)
    os.makedirs(d)
    run_worker("hf", d, "train", "6")
    os.remove(os.path.join(d, "checkpoint-6", "scheduler.pt"))
    r = hf_probe(name)
    p = r["probe"]
    assert r["error"] is None and p["globalStep"] == 6 and p["optimizerStateEntries"] == 0 and p["schedulerLastEpoch"] == 0, r
    write_truth(
        name, "hf-trainer", "resumed", "transformers %s" % ver, None,
        collections.OrderedDict(
            file="checkpoint-6", outcome="resumes", startsAt=p["globalStep"], counterName="global_step",
            restores=["model", "counter", "rng"], resets=["optimizer", "scheduler"],
            notes="Observed: picked %s; trainer_state.json gives global_step %d, but _load_optimizer_and_scheduler loads optimizer AND scheduler only when both files exist: optimizer.pt is present yet skipped silently (optimizer state %d entries at train begin), scheduler restarts (last_epoch %d, lr %r: back in warm-up, instead of 0.06 at step 6 of 12). No log line." % (r["picked"][0], p["globalStep"], p["optimizerStateEntries"], p["schedulerLastEpoch"], p["lr"]),
            observed=p,
        ),
        collections.OrderedDict(
            file="checkpoint-3", startsAt=3, restores=["model", "optimizer", "scheduler", "counter", "rng"], resets=[],
            why="the newest checkpoint that truly resumes: checkpoint-6 lacks scheduler.pt, and the Trainer then drops optimizer.pt too (both restart), so resuming there loses the optimizer moments and the warm-up position; checkpoint-3 is complete and costs 3 steps of recomputation. (An expert could also load checkpoint-6's optimizer.pt by hand and fast-forward the LambdaLR to step 6, since it is a pure function of the step.)",
        ),
        extra={"files": hf_files(d), "removed": ["checkpoint-6/scheduler.pt"]},
    )

    # newest checkpoint dir without model weights
    name = "hf_incomplete_newest"
    d = run_dir(name)
    os.makedirs(d)
    run_worker("hf", d, "train", "9")
    cdir = os.path.join(d, "checkpoint-9")
    removed = []
    for f in sorted(os.listdir(cdir)):
        if f != "config.json":  # save_model writes config.json first, then model.safetensors: killed in between
            os.remove(os.path.join(cdir, f))
            removed.append("checkpoint-9/" + f)
    r = hf_probe(name)
    assert r["error"] is not None, r
    write_truth(
        name, "hf-trainer", "resumed", "transformers %s" % ver, None,
        collections.OrderedDict(
            file=None, attempted="checkpoint-9", error=r["error"], outcome="crashes", startsAt=None, counterName="global_step",
            restores=[], resets=[],
            notes="Observed: get_last_checkpoint picked %s (max N, no completeness check; transformers#35782) and train() raised: %s" % (r["picked"][0] if r["picked"] else None, r["error"]),
        ),
        collections.OrderedDict(file="checkpoint-6", startsAt=6, restores=["model", "optimizer", "scheduler", "counter", "rng"], resets=[], why="checkpoint-9 holds only config.json (killed while saving: no weights, optimizer, scheduler, rng or trainer_state.json); checkpoint-6 is the newest complete checkpoint"),
        extra={"files": hf_files(d), "removed": removed},
    )


# ----------------------------------------------------------------------------------------------
# accelerate (real)
# ----------------------------------------------------------------------------------------------


def worker_accelerate(root, mode):
    torch = _torch()
    import accelerate
    import accelerate.accelerator as acc_mod
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    set_seed(0)

    class StepCounter:
        def __init__(self):
            self.step = 0

        def state_dict(self):
            return {"step": self.step}

        def load_state_dict(self, sd):
            self.step = sd["step"]

    acc = Accelerator(cpu=True, project_config=ProjectConfiguration(project_dir=root, automatic_checkpoint_naming=True, total_limit=3))
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = toy_data(32)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=True)
    model, opt, dl, sched = acc.prepare(model, opt, dl, sched)
    ctr = StepCounter()
    acc.register_for_checkpointing(ctr)
    if mode == "resume":
        seen = []
        orig = acc_mod.load_accelerator_state

        def spy(input_dir, *a, **k):
            seen.append(input_dir)
            return orig(input_dir, *a, **k)

        acc_mod.load_accelerator_state = spy
        err = None
        try:
            acc.load_state()
        except Exception as e:  # noqa: BLE001
            err = err_str(e)
        probe = dict(loadedDir=os.path.relpath(seen[0], root) if seen else None, counterStep=ctr.step,
                     optimizerStateEntries=len(opt.optimizer.state), schedulerLastEpoch=sched.scheduler.last_epoch,
                     lr=opt.param_groups[0]["lr"], saveIteration=acc.project_configuration.iteration)
        try:
            acc.save_state()
            save_err = None
        except Exception as e:  # noqa: BLE001
            save_err = err_str(e)
        emit({"probe": probe, "error": err, "nextSaveState": save_err, "version": accelerate.__version__})
        return
    for epoch in range(3):
        for xb, yb in dl:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            acc.backward(loss)
            opt.step()
            sched.step()
            opt.zero_grad()
            ctr.step += 1
            if ctr.step % 3 == 0:
                acc.save_state()
            if ctr.step == 7:  # killed at step 7
                emit({"version": accelerate.__version__})
                return


def build_accelerate():
    name = "accelerate_run"
    d = run_dir(name)
    os.makedirs(d)
    tr = run_worker("accelerate", d, "train")
    tmp, dst = copy_for_resume(name)
    r = run_worker("accelerate", dst, "resume", rebase=(dst, name))
    shutil.rmtree(tmp)
    p = r["probe"]
    assert r["error"] is None and p["loadedDir"] == "checkpoints/checkpoint_1" and p["counterStep"] == 6, r
    write_truth(
        name, "accelerate", "resumed", "accelerate %s" % tr["version"], None,
        collections.OrderedDict(
            file="checkpoints/checkpoint_1", outcome="resumes", startsAt=p["counterStep"], counterName="step",
            restores=["model", "optimizer", "scheduler", "rng", "counter"], resets=[],
            notes="Observed: accelerator.load_state() with automatic_checkpoint_naming lists checkpoints/, sorts by the trailing integer and loads %s (checkpoint_K counts SAVES, not steps: checkpoint_1 = 2nd save = step 6). The step counter is NOT an accelerate concept: this run registers a StepCounter with register_for_checkpointing (custom_checkpoint_0.pkl -> step %d); without it the loop restarts at 0 while model/optimizer/scheduler are restored. Scheduler last_epoch %d, lr %r, optimizer state %d entries. The next save_state() after load_state fails: %s (accelerate#1601, #3306)." % (p["loadedDir"], p["counterStep"], p["schedulerLastEpoch"], p["lr"], p["optimizerStateEntries"], r["nextSaveState"]),
            observed=p, nextSaveState=r["nextSaveState"],
        ),
        collections.OrderedDict(file="checkpoints/checkpoint_1", startsAt=6, restores=["model", "optimizer", "scheduler", "rng", "counter"], resets=[], why="highest checkpoint_K, complete; step 6 from custom_checkpoint_0.pkl (and scheduler.bin last_epoch 6); set ProjectConfiguration.iteration = 2 before the next save_state"),
        extra={"files": lightning_files(d)},
    )


# ----------------------------------------------------------------------------------------------
# timm (real CheckpointSaver / resume_checkpoint)
# ----------------------------------------------------------------------------------------------

TVSTUB = r'''
import sys, types, importlib.abc, importlib.machinery
_cache = {}
class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"): raise AttributeError(name)
        key = cls.__qualname__ + "." + name
        if key not in _cache: _cache[key] = _Meta(name, (_Dummy,), {"__qualname__": key})
        return _cache[key]
class _Dummy(metaclass=_Meta):
    def __init__(self, *a, **k): raise RuntimeError("torchvision stub: not available")
def _modgetattr(attr):
    if attr.startswith("__"): raise AttributeError(attr)
    return getattr(_Dummy, attr)
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = types.ModuleType(spec.name); m.__path__ = []; m.__getattr__ = _modgetattr; return m
    def exec_module(self, m): pass
sys.meta_path.insert(0, _Finder())
'''


def import_timm():
    """timm imports torchvision at import time; the only torchvision wheel reachable here is a CUDA build that
    cannot load on this CPU torch, so when torchvision is missing or broken an import-time stub stands in (only
    the data/transforms modules use it; CheckpointSaver and resume_checkpoint are untouched real timm code)."""
    try:
        import torchvision  # noqa: F401

        stub = False
    except Exception:  # noqa: BLE001
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        exec(TVSTUB, {})
        stub = True
    import timm

    return timm, stub


def worker_timm(root, mode):
    torch = _torch()
    timm, stub = import_timm()
    from timm.models import resume_checkpoint
    from timm.scheduler import create_scheduler_v2
    from timm.utils import CheckpointSaver

    seed_all(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tinynet")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--opt", default="sgd")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--sched", default="cosine")
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("-b", "--batch-size", type=int, default=4)
    parser.add_argument("--checkpoint-hist", type=int, default=2)
    parser.add_argument("--resume", default="")
    parser.add_argument("--no-resume-opt", action="store_true", default=False)
    parser.add_argument("--start-epoch", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="")
    parser.add_argument("--experiment", default="timm_run")
    parser.add_argument("--eval-metric", default="top1")
    args = parser.parse_args(["--output", os.path.dirname(root), "--experiment", os.path.basename(root)]
                             + (["--resume", os.path.join(root, "last.pth.tar")] if mode == "resume" else []))
    model = tiny_net()
    model.__class__.__name__ = "TinyNet"
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    lr_scheduler, num_epochs = create_scheduler_v2(optimizer, sched=args.sched, num_epochs=args.epochs, warmup_epochs=args.warmup_epochs, warmup_lr=1e-4)
    x, y = toy_data(32)

    if mode == "resume":
        err = None
        start_epoch = None
        try:
            resume_epoch = resume_checkpoint(model, args.resume, optimizer=None if args.no_resume_opt else optimizer, log_info=False)
            start_epoch = 0
            if args.start_epoch is not None:
                start_epoch = args.start_epoch
            elif resume_epoch is not None:
                start_epoch = resume_epoch
            if lr_scheduler is not None and start_epoch > 0:
                lr_scheduler.step(start_epoch)
        except Exception as e:  # noqa: BLE001
            err = err_str(e)
        emit({"probe": dict(startEpoch=start_epoch, optimizerStateEntries=len(optimizer.state), lr=optimizer.param_groups[0]["lr"]),
              "error": err, "version": timm.__version__, "torchvisionStub": stub})
        return
    import yaml

    with open(os.path.join(root, "args.yaml"), "w") as f:
        f.write(yaml.safe_dump(vars(args), default_flow_style=False))
    saver = CheckpointSaver(model=model, optimizer=optimizer, args=args, model_ema=None, amp_scaler=None,
                            checkpoint_dir=root, recovery_dir=root, decreasing=False, max_history=args.checkpoint_hist)
    metrics = []
    for epoch in range(0, 4):  # killed during epoch 4 (0-based) of 6
        if epoch == 3:
            break
        for b in range(8):
            xb, yb = toy_batch(b)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        m = [62.5, 81.25, 75.0][epoch]  # eval metric handed to the saver: fixed values so that best != last
        metrics.append({"epoch": epoch, "eval_top1": m})
        saver.save_checkpoint(epoch, metric=m)
        lr_scheduler.step(epoch + 1, m)
    with open(os.path.join(root, "summary.csv"), "w") as f:
        f.write("epoch,eval_top1\n" + "".join("%d,%s\n" % (r["epoch"], r["eval_top1"]) for r in metrics))
    emit({"version": timm.__version__, "torchvisionStub": stub, "metrics": metrics})


def build_timm():
    name = "timm_run"
    d = run_dir(name)
    os.makedirs(d)
    tr = run_worker("timm", d, "train")
    tmp, dst = copy_for_resume(name)
    r = run_worker("timm", dst, "resume", rebase=(dst, name))
    shutil.rmtree(tmp)
    p = r["probe"]
    assert r["error"] is None and p["startEpoch"] == 3, r
    stub_note = " (torchvision replaced by an import-time stub: the reachable torchvision wheel is a CUDA build that cannot load here)" if tr["torchvisionStub"] else ""
    write_truth(
        name, "timm", "resumed", "timm %s%s" % (tr["version"], stub_note), None,
        collections.OrderedDict(
            file="last.pth.tar", outcome="resumes", startsAt=p["startEpoch"], counterName="epoch",
            restores=["model", "optimizer", "counter", "scheduler"], resets=[],
            notes="timm has no auto-discovery: train.py --resume <file>; last.pth.tar is what users pass. Observed with timm.models.resume_checkpoint (weights_only=True with argparse.Namespace allow-listed): epoch 2 + 1 (version 2) -> start_epoch %d, optimizer state %d entries, LR rebuilt by lr_scheduler.step(start_epoch) = %r (scheduler state is never saved). model_best.pth.tar is epoch 1 (best eval_top1), not the newest." % (p["startEpoch"], p["optimizerStateEntries"], p["lr"]),
            observed=p,
        ),
        collections.OrderedDict(file="last.pth.tar", startsAt=3, restores=["model", "optimizer", "counter", "scheduler"], resets=[], why="last.pth.tar is epoch 2 (newest, written atomically via tmp + os.replace); checkpoint-2.pth.tar holds the same state; model_best.pth.tar/checkpoint-1.pth.tar are older (best metric)"),
        extra={"files": lightning_files(d), "metrics": tr["metrics"], "observed": weights_only_probe(os.path.join(d, "last.pth.tar"))},
    )


# ----------------------------------------------------------------------------------------------
# README
# ----------------------------------------------------------------------------------------------


def write_readme():
    rows = []
    for fn in sorted(os.listdir(TRUTH)):
        if not fn.endswith(".json"):
            continue
        t = json.load(open(os.path.join(TRUTH, fn)))
        fr, cr = t["frameworkResume"], t["correctResume"]
        ptr = t["pointer"]
        ptxt = "-" if ptr is None else "`%s` %s" % (ptr["file"], ptr["status"])
        if fr["outcome"] == "crashes":
            fw = "crashes on `%s` (%s)" % (fr.get("attempted") or "-", (fr.get("error") or "").split(":")[0])
        elif fr.get("file"):
            fw = "%s from `%s`, %s=%s" % (fr["outcome"], fr["file"], fr["counterName"], fr["startsAt"])
        else:
            fw = "%s (nothing loaded), %s=%s" % (fr["outcome"], fr["counterName"], fr["startsAt"])
        if fr.get("resets"):
            fw += "; resets " + ", ".join(fr["resets"])
        cc = "`%s`, %s=%s" % (cr["file"], fr["counterName"], cr["startsAt"])
        if cr.get("resets"):
            cc += "; resets " + ", ".join(cr["resets"])
        rows.append(["`%s`" % t["run"], t["convention"], t["established"], ptxt, fw, cc])
    header = ["run", "convention", "established", "pointer", "framework's own resume", "correct resume"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    table = "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
    size = 0
    for base, _, files in os.walk(OUT):
        for f in files:
            p = os.path.join(base, f)
            if not os.path.islink(p):
                size += os.path.getsize(p)
    text = """# Run-directory samples: what each framework's own resume does

Generated by `samples/make_runs.py` (wrapper `samples/make_runs.sh`) into `samples/outputs/<run>/`; one truth
file per run here, `<run>.json`, schema `ckpt.run-truth/1`.

- `established: "resumed"`: made by the real framework (versions in `frameworkVersion`) and a copy of the run
  dir was actually resumed for one step with the same configuration; `frameworkResume.observed` holds what was
  measured at the start of the resumed run (counter, optimizer state entries, scheduler position, lr).
  For Lightning `correctResume.verified` is a second real resume with the explicit file.
- `established: "reference"`: the framework cannot be installed here (fvcore/detectron2, Trackron, mmengine,
  DeepSpeed, pytracking, torchtitan). Files follow `/work/shared/reference/conventions.md` and are written with
  real `torch.save` / `torch.distributed.checkpoint.save`; framework classes that appear in pickles are
  recreated under their real module names. For fvcore/detectron2/Trackron the Checkpointer and
  PeriodicCheckpointer are transcribed from fvcore's source and that transcription is run to resume.
  ultralytics, torchvision references, mmcv 1.x runners and AllenNLP (make_runs_extra.py) are transcribed
  from their source the same way, save and resume logic both (files and commits cited there); their truths
  may add `startsAtBatch` (AllenNLP mid-epoch checkpoints), a `pointer` of `kind: "symlink"` (mmcv
  `latest.pth`), and `notes_only` has convention `none` and outcome `no-checkpoint`.

Field meanings:

- `startsAt`: value of the framework's counter when the resumed run starts = number of units (`counterName`)
  already completed = 0-based index of the first unit it will run (fvcore `start_iter`, HF/Lightning
  `global_step`, timm `start_epoch`, mmengine `meta.epoch`, pytracking `self.epoch`, DeepSpeed `global_steps`,
  torchtitan `train_state.step`). `null` when the resume crashes.
- `restores` / `resets`: among `model`, `optimizer`, `scheduler`, `counter`, `rng`, `message_hub`.
  A stateless schedule rebuilt from the counter (timm, pytracking, Trackron's timm scheduler) counts as restored.
- `file`: relative to the run dir; for directory-style checkpoints (HF, accelerate, DCP) the directory.
  `attempted` + `error` when the framework picks a file and crashes on it.
- `generatedAt`: absolute run dir at generation time. Files that embed absolute paths: mmengine
  `last_checkpoint` and `meta.cfg`, Lightning callback state, HF `training_args.bin`, timm `args`, pytracking
  `settings.env`. **Tests must resolve mmengine's absolute pointer relative to the run dir's location at
  generation time** (`pointerRebase` in `mmengine_run.json`).
- `observed`: what plain `torch.load` (torch 2.13) does on the framework's file with the `weights_only=True`
  default of torch >= 2.6 and with `weights_only=False`.
- fvcore/Trackron `config.yaml`: `OUTPUT_DIR` and `MODEL.WEIGHTS` are relative to `samples/` (the working
  directory of a detectron2-style launch), so `./outputs/<run>` is the run dir itself.
- Git does not keep mtimes; Lightning's `ckpt_path="last"` chooses among candidates by mtime (only one candidate
  exists in these samples). `lightning_dirpath_link/checkpoints/last.ckpt` is a symlink.

""" + table + """

Total size of `samples/outputs/`: %d bytes.
""" % size
    write_text(os.path.join(TRUTH, "README.md"), text)


# ----------------------------------------------------------------------------------------------

BUILDERS = collections.OrderedDict(
    [
        ("fvcore_healthy", build_fvcore_healthy),
        ("trackron_model_only", build_trackron),
        ("fvcore_dangling", build_fvcore_dangling),
        ("fvcore_truncated_newest", build_fvcore_truncated),
        ("fvcore_killed_mid_save", build_fvcore_killed_mid_save),
        ("fvcore_bitflip", build_fvcore_bitflip),
        ("fvcore_bitflip_pickle", build_fvcore_bitflip_pickle),
        ("fvcore_pointer_to_text", build_fvcore_pointer_to_text),
        ("fvcore_finished", build_fvcore_finished),
        ("mmengine_run", build_mmengine),
        ("deepspeed_run", build_deepspeed_run),
        ("deepspeed_no_latest", build_deepspeed_no_latest),
        ("pytracking_run", build_pytracking),
        ("dcp_run", build_dcp),
        ("lightning", build_lightning),  # lightning_run, lightning_rerun, lightning_dirpath_link
        ("hf", build_hf),  # hf_trainer_run, hf_missing_scheduler, hf_incomplete_newest
        ("accelerate_run", build_accelerate),
        ("timm_run", build_timm),
    ]
)
GROUP_RUNS = {
    "lightning": ["lightning_run", "lightning_rerun", "lightning_dirpath_link"],
    "hf": ["hf_trainer_run", "hf_missing_scheduler", "hf_incomplete_newest"],
}


def main():
    import make_runs_extra  # more runs (ultralytics, torchvision references, mmcv 1.x, AllenNLP), built by hand from source

    BUILDERS.update(make_runs_extra.BUILDERS)
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--worker", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.worker:
        kind, rest = a.worker[0], a.worker[1:]
        if kind == "lightning":
            root, layout, mode, kill_at, ckpt = rest
            worker_lightning(root, layout, mode, int(kill_at), ckpt)
        elif kind == "hf":
            worker_hf(rest[0], rest[1], int(rest[2]))
        elif kind == "accelerate":
            worker_accelerate(rest[0], rest[1])
        elif kind == "timm":
            worker_timm(rest[0], rest[1])
        else:
            raise SystemExit("unknown worker " + kind)
        return
    names = list(BUILDERS) if not a.only else a.only
    if not a.only:
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.rmtree(SHIPPED, ignore_errors=True)
        shutil.rmtree(TRUTH, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(TRUTH, exist_ok=True)
    for n in names:
        runs = GROUP_RUNS.get(n, [n])
        for r in runs:
            shutil.rmtree(run_dir(r), ignore_errors=True)
            tp = os.path.join(TRUTH, r + ".json")
            if os.path.exists(tp):
                os.remove(tp)
        print("building", n, flush=True)
        BUILDERS[n]()
        for r in runs:  # ship the run as copied off the cluster: links kept, modification times kept
            shutil.rmtree(os.path.join(SHIPPED, r), ignore_errors=True)
            shutil.copytree(run_dir(r), os.path.join(SHIPPED, r), symlinks=True)
    write_readme()
    # The cluster must not exist where the samples are used: its paths are foreign on every machine.
    shutil.rmtree(CLUSTER, ignore_errors=True)


if __name__ == "__main__":
    main()
