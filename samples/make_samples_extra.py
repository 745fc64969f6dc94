#!/usr/bin/env python3
"""More single-file samples for `ckpt` (imported by make_samples.py; run through it: `--only NAME`).

Layouts ckpt misjudged: training checkpoints of the canonical scripts (with a "training" and a "parameters"
section in the truth), whole modules in every serialization, pickles as torch 0.3 / 0.4 wrote them, bare
pickles that are not torch.save output, text files and pointer files, TorchScript archives in every shape,
packed (quantized) parameters.

Every file is written by real torch (or, for torch 0.3/0.4 streams, by a transcription of torch 0.4's
serialization on top of the real pickle module) and its truth comes from what torch itself returns when it
loads the file. Helpers (Walker, torch_save_truth, write_truth, ...) are the ones of make_samples.py, which
runs as __main__.

Sources read (for the layouts and the resume code transcribed below):
  pytorch/tutorials recipes_source/recipes/saving_and_loading_a_general_checkpoint.py @ 0a7e686
  pytorch/examples imagenet/main.py @ 493da93 (save_checkpoint, --resume: start_epoch = checkpoint['epoch'])
  pytorch/pytorch torch/nn/parameter.py as of 0.4 (Parameter.__reduce_ex__ returns
      (Parameter, (super(Parameter, self), self.requires_grad))) - read in the search index;
  torch 0.3/0.4 torch/serialization.py _save, torch/tensor.py and torch/autograd/variable.py __reduce_ex__ and
      Module.__init__ attribute order: FROM KNOWLEDGE (the index holds no 0.3/0.4 copy of these files), see
      _legacy04_* below.
  Megatron-LM megatron/training/checkpointing.py (get_checkpoint_tracker_filename / read_metadata: tracker
      <save>/latest_checkpointed_iteration.txt holds str(iteration), no newline, or 'release';
      checkpoint dir <save>/iter_{:07d}/mp_rank_00/model_optim_rng.pt) - read in the search index.
"""

import collections
import copyreg
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.simplefilter("ignore")
TORCH2 = int(torch.__version__.split(".")[0]) >= 2


def M():
    """make_samples.py, running as __main__."""
    return sys.modules["__main__"]


def in_main(*classes):
    """Make classes pickle as __main__.<name> (like the models in make_samples.py)."""
    main = M()
    for c in classes:
        c.__module__ = "__main__"
        c.__qualname__ = c.__name__
        setattr(main, c.__name__, c)
    return classes[0] if len(classes) == 1 else classes


# --------------------------------------------------------------------------
# Models (tiny, pickled under __main__)
# --------------------------------------------------------------------------


class TutorialNet(nn.Module):
    """Shape of the tutorial recipe's Net, scaled down: conv, pool, conv, 3 linears."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(2, 4, 3)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 5)
        self.fc3 = nn.Linear(5, 3)

    def forward(self, x):  # input [N, 1, 8, 8]
        x = self.pool(F.relu(self.conv1(x)))
        x = F.relu(self.conv2(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x))) + x


class NestedNet(nn.Module):
    """stem conv+bn, a Sequential of two Blocks (nested submodules), a Linear head; params and BN buffers."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(3)
        self.blocks = nn.Sequential(Block(3), Block(3))
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class KnownMLP(nn.Module):
    """10 -> 20 -> 5 MLP: exactly 325 parameters (200 + 20 + 100 + 5), no buffers."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.fc2 = nn.Linear(20, 5)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class QuantNet(nn.Module):
    """QuantStub -> Conv2d(1,2,3) -> Linear(8,3) -> DeQuantStub, for static quantization."""

    def __init__(self):
        super().__init__()
        tq = _tq()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 2 * 2, 3)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.conv(x)
        x = x.reshape(x.shape[0], -1)
        x = self.fc(x)
        return self.dequant(x)


class DynNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class TSNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.register_buffer("offset", torch.arange(3, dtype=torch.float32))

    def forward(self, x):
        return torch.relu(self.lin(x)) + self.offset


in_main(TutorialNet, Block, NestedNet, KnownMLP, QuantNet, DynNet, TSNet)


def _tq():
    try:
        from torch.ao import quantization as tq
    except ImportError:  # pragma: no cover
        import torch.quantization as tq
    return tq


# --------------------------------------------------------------------------
# "training" and "parameters" truth sections
# --------------------------------------------------------------------------


def tensors_in(obj, out=None, seen=None):
    """Every tensor reachable through dicts/lists/tuples (optimizer / scaler state)."""
    if out is None:
        out, seen = [], set()
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            tensors_in(v, out, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            tensors_in(v, out, seen)
    return out


def nbytes(t):
    return t.numel() * t.element_size()


def parameters_section(model, optimizer_sd=None, ema_model=None, model_sd=None):
    """Counts of the model that was saved (not of every number in the file)."""
    sd = model.state_dict() if model_sd is None else model_sd
    p = collections.OrderedDict()
    p["modelParameters"] = sum(x.numel() for x in model.parameters())
    p["modelBuffers"] = sum(x.numel() for x in model.buffers())
    p["modelStateBytes"] = sum(nbytes(v) for v in sd.values() if isinstance(v, torch.Tensor))
    ot = tensors_in(optimizer_sd) if optimizer_sd is not None else []
    p["optimizerStateElements"] = sum(t.numel() for t in ot) if optimizer_sd is not None else None
    p["optimizerStateBytes"] = sum(nbytes(t) for t in ot) if optimizer_sd is not None else None
    p["emaParameters"] = None if ema_model is None else sum(x.numel() for x in ema_model.parameters())
    return p


def training_section(framework, source, keys, counter_key, counter_value, resume, notes=()):
    t = collections.OrderedDict()
    t["framework"] = framework
    t["source"] = source
    k = collections.OrderedDict()
    for name in ("model", "optimizer", "scheduler", "scaler", "ema"):
        k[name] = keys.get(name)
    t["keys"] = k
    t["counter"] = collections.OrderedDict([("key", counter_key), ("value", counter_value)])
    t["resume"] = resume
    t["notes"] = list(notes)
    return t


def resume_section(script, loads, start, counter_name, code, observed=None, notes=""):
    r = collections.OrderedDict()
    r["script"] = script
    r["loads"] = loads
    r["startsAt"] = start
    r["counterName"] = counter_name
    r["code"] = code
    if observed is not None:
        r["observed"] = observed
    r["notes"] = notes
    return r


def add_sections(out_dir, fname, training, parameters):
    path = os.path.join(out_dir, fname + ".truth.json")
    with open(path, encoding="utf-8") as f:
        truth = json.load(f, object_pairs_hook=collections.OrderedDict)
    truth["training"] = training
    truth["parameters"] = parameters
    with open(path, "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def train_steps(model, opt, n, shape, classes, seed, sched=None, scaler=None):
    gen = torch.Generator().manual_seed(seed)
    model.train()
    loss = None
    for _ in range(n):
        x = torch.randn(4, *shape, generator=gen)
        y = torch.randint(0, classes, (4,), generator=gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
    return float(loss)


def make_scaler():
    """A real GradScaler: torch.amp.GradScaler('cpu') (enabled on CPU, torch >= 2.3); torch 1.13 has only
    torch.cuda.amp.GradScaler, which disables itself without CUDA (state_dict() is then {})."""
    if TORCH2 and hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cpu"), "torch.amp.GradScaler('cpu'), enabled"
    return torch.cuda.amp.GradScaler(), "torch.cuda.amp.GradScaler() without CUDA: disabled, state_dict() == {}"


# --------------------------------------------------------------------------
# A. training checkpoints
# --------------------------------------------------------------------------

TUTORIAL_SRC = "pytorch/tutorials recipes_source/recipes/saving_and_loading_a_general_checkpoint.py @ 0a7e686"
IMAGENET_SRC = "pytorch/examples imagenet/main.py @ 493da93 (save_checkpoint / --resume)"


def sample_tutorial(out_dir):
    M().seed(20)
    net = TutorialNet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    train_steps(net, optimizer, 3, (1, 8, 8), 3, seed=20)
    EPOCH, PATH, LOSS = 5, "tutorial_general_checkpoint.pt", 0.4
    obj = {
        "epoch": EPOCH,
        "model_state_dict": net.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": LOSS,
    }
    M().torch_save_truth(out_dir, PATH, obj, extra_notes=["the recipe's torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}, PATH): SGD(lr=0.001, momentum=0.9), EPOCH = 5, LOSS = 0.4"])
    # the recipe's load code, run on the file
    model = TutorialNet()
    opt2 = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    checkpoint = load(os.path.join(out_dir, PATH))
    model.load_state_dict(checkpoint["model_state_dict"])
    opt2.load_state_dict(checkpoint["optimizer_state_dict"])
    epoch = checkpoint["epoch"]
    loss = checkpoint["loss"]
    tr = training_section(
        "pytorch-tutorial", TUTORIAL_SRC,
        {"model": "model_state_dict", "optimizer": "optimizer_state_dict"}, "epoch", EPOCH,
        resume_section(
            TUTORIAL_SRC, ["model", "optimizer"], epoch, "epoch",
            "model.load_state_dict(checkpoint['model_state_dict']); optimizer.load_state_dict(checkpoint['optimizer_state_dict']); epoch = checkpoint['epoch']; loss = checkpoint['loss']",
            observed={"epoch": epoch, "loss": loss, "optimizerStateEntries": len(opt2.state)},
            notes="the recipe reads epoch back as-is and never says whether it counts completed epochs (it has no loop); a resume that runs range(epoch, N) repeats nothing only if EPOCH was saved as 'epochs done'. No scheduler, no scaler.",
        ),
        notes=["'loss' is a plain float (0.4) in the recipe"],
    )
    add_sections(out_dir, PATH, tr, parameters_section(net, obj["optimizer_state_dict"]))


def sample_imagenet(out_dir):
    M().seed(21)
    model = TutorialNet()
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    best_acc1 = 0
    acc_by_epoch = [torch.tensor(37.5), torch.tensor(50.0), torch.tensor(43.75)]  # top1.avg is a 0-d tensor
    written = {}
    for epoch in range(0, 3):  # main_worker loop, epochs 0..2 of 90
        train_steps(model, optimizer, 2, (1, 8, 8), 3, seed=100 + epoch)
        acc1 = acc_by_epoch[epoch]
        scheduler.step()
        is_best = acc1 > best_acc1
        best_acc1 = max(acc1, best_acc1)
        state = {
            "epoch": epoch + 1,
            "arch": "resnet18",
            "state_dict": model.state_dict(),
            "best_acc1": best_acc1,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        # save_checkpoint(state, is_best): torch.save(state, 'checkpoint.pth.tar'); copyfile -> model_best.pth.tar
        buf = io.BytesIO()
        torch.save(state, buf)
        state = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)  # snapshot: state_dict() holds live tensors
        written["checkpoint.pth.tar"] = (buf.getvalue(), state, epoch)
        if is_best:
            written["model_best.pth.tar"] = (buf.getvalue(), state, epoch)
    for fname in ("checkpoint.pth.tar", "model_best.pth.tar"):
        _, state, ep = written[fname]
        M().torch_save_truth(out_dir, fname, state, extra_notes=[
            "pytorch/examples imagenet main.py: saved after epoch index %d of 90 (epoch stored as epoch + 1 = %d); best_acc1 is a 0-d float32 tensor (top1.avg of acc1[0] tensors)%s"
            % (ep, ep + 1, "; model_best.pth.tar is shutil.copyfile of checkpoint.pth.tar when is_best" if fname == "model_best.pth.tar" else "")])
        path = os.path.join(out_dir, fname)
        # the example's --resume code
        m2 = TutorialNet()
        o2 = torch.optim.SGD(m2.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
        s2 = torch.optim.lr_scheduler.StepLR(o2, step_size=30, gamma=0.1)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        start_epoch = checkpoint["epoch"]
        best = checkpoint["best_acc1"]
        m2.load_state_dict(checkpoint["state_dict"])
        o2.load_state_dict(checkpoint["optimizer"])
        s2.load_state_dict(checkpoint["scheduler"])
        wo = _wo_probe(path)
        tr = training_section(
            "pytorch-examples-imagenet", IMAGENET_SRC,
            {"model": "state_dict", "optimizer": "optimizer", "scheduler": "scheduler"}, "epoch", checkpoint["epoch"],
            resume_section(
                IMAGENET_SRC, ["model", "optimizer", "scheduler"], start_epoch, "epoch",
                "checkpoint = torch.load(args.resume); args.start_epoch = checkpoint['epoch']; best_acc1 = checkpoint['best_acc1']; model/optimizer/scheduler.load_state_dict(...); for epoch in range(args.start_epoch, args.epochs)",
                observed={"startEpoch": start_epoch, "bestAcc1": float(best), "schedulerLastEpoch": s2.last_epoch, "optimizerStateEntries": len(o2.state), "torchLoadDefault": wo},
                notes="epoch is saved as epoch + 1 (epochs completed), so resume starts at checkpoint['epoch'] with no + 1. Without --resume the script trains from scratch. The example's plain torch.load(args.resume) uses the torch >= 2.6 default weights_only=True: see torchLoadDefault.",
            ),
            notes=["arch 'resnet18' is the script's default --arch string; the model here is a tiny stand-in (TutorialNet)"],
        )
        add_sections(out_dir, fname, tr, parameters_section(m2, checkpoint["optimizer"], model_sd=checkpoint["state_dict"]))


def _wo_probe(path):
    if not TORCH2:
        return None
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return "%s: %s" % (type(e).__name__, _first_line(e))


def sample_everyday(out_dir):
    # {"net", "optim", "epoch"}
    M().seed(22)
    net = TutorialNet()
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_steps(net, optim, 3, (1, 8, 8), 3, seed=22)
    obj = {"net": net.state_dict(), "optim": optim.state_dict(), "epoch": 12}
    fname = "net_optim_epoch.pth"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=["everyday layout {'net', 'optim', 'epoch'}: Adam(1e-3), epoch 12"])
    add_sections(out_dir, fname, training_section(
        "custom", None, {"model": "net", "optimizer": "optim"}, "epoch", 12,
        resume_section(None, ["model", "optimizer"], None, "epoch", None,
                       notes="no canonical script: a resume typically does net.load_state_dict(ck['net']); optim.load_state_dict(ck['optim']); start = ck['epoch'] (or + 1) - whether 12 is 'epochs done' or 'last epoch index' is not recorded in the file"),
    ), parameters_section(net, obj["optim"]))

    # {"model", "optimizer", "step"}
    M().seed(23)
    model = KnownMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_steps(model, opt, 7, (10,), 5, seed=23)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 7}
    fname = "model_optimizer_step.pt"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=["everyday layout {'model', 'optimizer', 'step'}: SGD momentum, 7 optimizer steps done"])
    add_sections(out_dir, fname, training_section(
        "custom", None, {"model": "model", "optimizer": "optimizer"}, "step", 7,
        resume_section(None, ["model", "optimizer"], None, "step", None,
                       notes="no canonical script; step = optimizer steps done (7) in this sample; no scheduler key"),
    ), parameters_section(model, obj["optimizer"]))

    # {"model", "optimizer", "global_step", "scheduler", "scaler"} with a real GradScaler
    M().seed(24)
    model = KnownMLP()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    scaler, scaler_note = make_scaler()
    train_steps(model, opt, 5, (10,), 5, seed=24, sched=sched, scaler=scaler)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "global_step": 5,
           "scheduler": sched.state_dict(), "scaler": scaler.state_dict()}
    fname = "global_step_scaler.pt"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=["'scaler' = %s after 5 scaler.step()/update(): %s" % (scaler_note, json.dumps(obj["scaler"]))])
    add_sections(out_dir, fname, training_section(
        "custom", None, {"model": "model", "optimizer": "optimizer", "scheduler": "scheduler", "scaler": "scaler"}, "global_step", 5,
        resume_section(None, ["model", "optimizer", "scheduler", "scaler"], None, "global_step", None,
                       notes="no canonical script; LambdaLR warm-up state last_epoch = 5 matches global_step; the scaler dict is GradScaler.state_dict() (%s)" % scaler_note),
    ), parameters_section(model, obj["optimizer"]))

    # {"model", "optimizer", "iteration", "lr_scheduler", "amp"} (apex amp.state_dict() layout)
    M().seed(25)
    model = TutorialNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[4], gamma=0.1)
    train_steps(model, opt, 6, (1, 8, 8), 3, seed=25, sched=sched)
    amp_state = collections.OrderedDict([("loss_scaler0", {"loss_scale": 32768.0, "unskipped": 6})])
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "iteration": 5,
           "lr_scheduler": sched.state_dict(), "amp": amp_state}
    fname = "iteration_amp.pth"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=[
        "'amp' mimics NVIDIA apex amp.state_dict() (apex is not installable here; layout from knowledge: OrderedDict loss_scaler{i} -> {'loss_scale', 'unskipped'}); iteration = last finished iteration index (5 of 0-based 0..5)"])
    add_sections(out_dir, fname, training_section(
        "custom", None, {"model": "model", "optimizer": "optimizer", "scheduler": "lr_scheduler", "scaler": "amp"}, "iteration", 5,
        resume_section(None, ["model", "optimizer", "scheduler", "scaler"], None, "iteration", None,
                       notes="no canonical script (maskrcnn-benchmark-like layout); apex resume is amp.load_state_dict(ck['amp']) after amp.initialize"),
    ), parameters_section(model, obj["optimizer"]))


def sample_nanogpt(out_dir):
    """nanoGPT's train.py checkpoint (github.com/karpathy/nanoGPT), the dict it saves to out_dir/ckpt.pt:
    model, optimizer, model_args, iter_num, best_val_loss (a 0-d tensor: estimate_loss returns tensors),
    config (the script's globals). Resume: iter_num = checkpoint['iter_num']; the loop saves before the step
    of that iteration, so it continues with iter_num itself."""
    M().seed(25)
    model = KnownMLP()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    train_steps(model, optimizer, 4, (10,), 5, seed=25)
    model_args = dict(n_layer=2, n_head=2, n_embd=16, block_size=32, bias=False, vocab_size=65, dropout=0.0)
    config = dict(out_dir="out", eval_interval=2000, init_from="scratch", batch_size=12, learning_rate=6e-4,
                  max_iters=600000, decay_lr=True, dtype="bfloat16", compile=True)
    obj = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "model_args": model_args,
           "iter_num": 2000, "best_val_loss": torch.tensor(1.4697), "config": config}
    fname = "nanogpt_ckpt.pt"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=["nanoGPT train.py's checkpoint dict, saved at iter_num 2000"])
    add_sections(out_dir, fname, training_section(
        "custom", "https://github.com/karpathy/nanoGPT/blob/master/train.py",
        {"model": "model", "optimizer": "optimizer"}, "iter_num", 2000,
        resume_section("train.py init_from='resume'", ["model", "optimizer"], 2000, "iteration",
                       "iter_num = checkpoint['iter_num']; best_val_loss = checkpoint['best_val_loss']",
                       notes="the checkpoint is written before the step of iter_num, so training continues at iter_num"),
    ), parameters_section(model, obj["optimizer"]))


def sample_torchtune(out_dir):
    """torchtune's recipe_state.pt (recipes/full_finetune_single_device.py save_checkpoint, keys from
    torchtune/training/checkpointing/_utils.py): the weights go to epoch_N/, this file holds seed, epochs_run,
    total_epochs, max_steps_per_epoch, the optimizer and the data loader's state. Resume
    (resume_from_checkpoint=True): epochs_run = ckpt_dict["epochs_run"]; for curr_epoch in range(epochs_run,
    total_epochs)."""
    M().seed(27)
    model = KnownMLP()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    train_steps(model, optimizer, 3, (10,), 5, seed=27)
    obj = {"seed": 1234, "epochs_run": 2, "total_epochs": 3, "max_steps_per_epoch": None,
           "optimizer": optimizer.state_dict(), "dataloader": {"sampler_iter_state": {"samples_yielded": 0}}}
    fname = "torchtune_recipe_state.pt"
    M().torch_save_truth(out_dir, fname, obj, extra_notes=["torchtune recipe_state.pt after 2 of 3 epochs"])
    add_sections(out_dir, fname, training_section(
        "torchtune", "https://github.com/pytorch/torchtune/blob/main/recipes/full_finetune_single_device.py",
        {"model": None, "optimizer": "optimizer"}, "epochs_run", 2,
        resume_section("tune run full_finetune_single_device resume_from_checkpoint=True", ["optimizer"], 2, "epoch",
                       "self.epochs_run = ckpt_dict[training.EPOCHS_KEY]",
                       notes="the model is loaded from epoch_N/ by the checkpointer; this file restores the optimizer and the epoch"),
    ), parameters_section(model, obj["optimizer"]))


def sample_adamw_known(out_dir):
    M().seed(26)
    model = KnownMLP()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    train_steps(model, opt, 1, (10,), 5, seed=26)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 0}
    fname = "adamw_known_size.pt"
    n = sum(p.numel() for p in model.parameters())
    M().torch_save_truth(out_dir, fname, obj, extra_notes=[
        "KnownMLP 10->20->5 = %d parameters, AdamW after ONE step: optimizer state holds exp_avg + exp_avg_sq (%d elements each) + a step tensor per parameter: the file holds ~3x the model's numbers; 'parameters' counts the model only" % (n, n)])
    add_sections(out_dir, fname, training_section(
        "custom", None, {"model": "model", "optimizer": "optimizer"}, "epoch", 0,
        resume_section(None, ["model", "optimizer"], None, "epoch", None, notes="no canonical script"),
    ), parameters_section(model, obj["optimizer"]))


class _ProbeDone(Exception):
    pass


def sample_lightning_no_sched(out_dir):
    if not TORCH2:
        return
    try:
        import lightning as L
    except ImportError:
        print("lightning not installed: skipping lightning_no_scheduler.ckpt", file=sys.stderr)
        return

    class NoSchedModule(L.LightningModule):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.fc2(torch.relu(self.fc1(x))), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)  # optimizer only

    NoSchedModule.__module__ = "tiny_lightning"
    NoSchedModule.__qualname__ = "NoSchedModule"
    from lightning.pytorch.callbacks import ModelCheckpoint

    root = "/tmp/ckpt-samples-lightning-nosched"
    shutil.rmtree(root, ignore_errors=True)
    L.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=g)
    y = (x.sum(1) > 0).long()
    dl = lambda: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)  # noqa: E731
    ck = ModelCheckpoint(dirpath=os.path.join(root, "checkpoints"), filename="last", save_top_k=1)
    tr = L.Trainer(default_root_dir=root, max_steps=2, max_epochs=1, callbacks=[ck], logger=False,
                   enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, deterministic=True)
    module = NoSchedModule()
    tr.fit(module, dl())
    src = os.path.join(root, "checkpoints", "last.ckpt")
    fname = "lightning_no_scheduler.ckpt"
    dst = os.path.join(out_dir, fname)
    data = torch.load(src, map_location="cpu", weights_only=False)
    assert data["lr_schedulers"] == [], data.keys()
    # re-save the exact dict Lightning saved (bytes identical up to the zip record prefix, which is the file name)
    M().torch_save_truth(out_dir, fname, data, extra_notes=[
        "written by real Lightning %s (Trainer.fit, max_steps=2, ModelCheckpoint) with configure_optimizers returning only an SGD optimizer: lr_schedulers == []; re-saved with torch.save under this name (Lightning's zip prefix is the original file stem)" % L.__version__])
    # resume with real Lightning
    probe = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            probe.update(globalStep=trainer.global_step, currentEpoch=trainer.current_epoch,
                         optimizerStateEntries=len(trainer.optimizers[0].state), lrSchedulers=len(trainer.lr_scheduler_configs))
            raise _ProbeDone()

    tr2 = L.Trainer(default_root_dir=root, max_steps=4, max_epochs=2, callbacks=[Probe()], logger=False,
                    enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    try:
        tr2.fit(NoSchedModule(), dl(), ckpt_path=dst)
    except _ProbeDone:
        pass
    shutil.rmtree(root, ignore_errors=True)
    module_for_counts = NoSchedModule()
    module_for_counts.load_state_dict(data["state_dict"])
    add_sections(out_dir, fname, training_section(
        "lightning", "Lightning %s (real)" % L.__version__,
        {"model": "state_dict", "optimizer": "optimizer_states", "scheduler": None}, "global_step", data["global_step"],
        resume_section(
            "Trainer.fit(model, ckpt_path=<file>)", ["model", "optimizer", "counter"], probe.get("globalStep"), "global_step",
            "checkpoint_connector.restore_training_state: loops, optimizer_states; lr_schedulers [] restores nothing and there is nothing to restore",
            observed=probe,
            notes="no LR scheduler was configured, so an empty lr_schedulers list is complete, not missing state",
        ),
        notes=["lr_schedulers: [] (configure_optimizers returned only the optimizer)"],
    ), parameters_section(module_for_counts, data["optimizer_states"][0]))


def sample_allennlp_training_state(out_dir):
    """Training state without weights (AllenNLP training_state_e{E}_b{B}.th); see make_runs.py allennlp_run."""
    M().seed(27)
    model = KnownMLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_steps(model, opt, 4, (10,), 5, seed=27, sched=None)
    sched.step()
    state = {
        "version": 1,
        "metric_tracker": {"best_so_far": 0.5, "epochs_with_no_improvement": 0, "is_best_so_far": True,
                           "epoch_number": 1, "best_epoch": 0, "best_epoch_metrics": {"validation_loss": 0.5}},
        "optimizer": opt.state_dict(),
        "callbacks": [{}],
        "epochs_completed": 1,
        "batches_in_epoch_completed": 0,
        "best_model_filename": "/serialization_dir/best.th",
        "learning_rate_scheduler": sched.state_dict(),
    }
    fname = "training_state_e1_b0.th"
    M().torch_save_truth(out_dir, fname, state, extra_notes=[
        "AllenNLP GradientDescentTrainer.get_checkpoint_state().trainer_state (allenai/allennlp gradient_descent_trainer.py @ 048c300): optimizer, LR scheduler, metric tracker and counters but NO model weights (those are in model_state_e1_b0.th)"])
    add_sections(out_dir, fname, training_section(
        "allennlp", "allenai/allennlp allennlp/training/gradient_descent_trainer.py @ 048c300, checkpointer.py @ 10b1b8c",
        {"model": None, "optimizer": "optimizer", "scheduler": "learning_rate_scheduler"}, "epochs_completed", 1,
        resume_section("allennlp train --recover (GradientDescentTrainer._restore_checkpoint)", ["optimizer", "scheduler", "metric_tracker", "counter"], 1, "epochs_completed",
                       "model_state, training_state = checkpointer.load_checkpoint(); ... self._start_after_epochs_completed = training_state['epochs_completed']",
                       notes="this file alone cannot resume: the weights live in the paired model_state_e1_b0.th"),
        notes=["a training-state file with no model state: modelParameters are of the model the optimizer belongs to (KnownMLP, 325)"],
    ), parameters_section(model, state["optimizer"]))


# --------------------------------------------------------------------------
# B1. whole modules: zip and legacy, torch 1.13 and 2.x
# --------------------------------------------------------------------------


def sample_whole_modules(out_dir):
    M().seed(30)
    net = NestedNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    train_steps(net, opt, 3, (1, 6, 6), 2, seed=30)
    net.eval()
    M().torch_save_truth(out_dir, "whole_nested_zip.pt", net, extra_notes=[
        "torch.save(model) of __main__.NestedNet (nested Sequential of __main__.Block, BatchNorm2d buffers incl. num_batches_tracked); zip format"])
    M().torch_save_truth(out_dir, "whole_nested_legacy.pt", net, legacy=True, extra_notes=[
        "torch.save(model, _use_new_zipfile_serialization=False): magic-number stream; nested modules"])
    for fname in ("whole_nested_zip.pt", "whole_nested_legacy.pt"):
        m = load(os.path.join(out_dir, fname))
        add_sections(out_dir, fname, None, parameters_section(m))


# --------------------------------------------------------------------------
# B2. whole modules as torch 0.3 / 0.4 wrote them (transcription of torch 0.4 torch/serialization.py _save)
# --------------------------------------------------------------------------

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


class _OldStorage:
    """A storage as torch 0.3/0.4 saw it: root storage (key = str(_cdata)) or a view of one."""

    def __init__(self, data, key, root=None, offset=0):
        self.data = data  # float32 1-d tensor with this storage's elements
        self.key = key
        self.root = root
        self.offset = offset


class _OldTensor:
    def __init__(self, storage, offset, size, stride, requires_grad=False):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.requires_grad = requires_grad


class _OldParameter:
    def __init__(self, tensor, requires_grad=True):
        self.tensor, self.requires_grad = tensor, requires_grad


class _OldModule:
    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    @property
    def __class__(self):  # the pickler checks obj.__class__ is args[0] of __newobj__ (NEWOBJ)
        return self.cls


class _ThnnBackend:
    """torch.nn.backends.thnn.THNNFunctionBackend: pickles as _get_thnn_function_backend() (0.3/0.4)."""


_THNN = _ThnnBackend()


def _legacy04_reducers(version):
    import torch.nn.backends.thnn as thnn

    def red_backend(obj):
        return (thnn._get_thnn_function_backend, ())

    def red_tensor(t):
        if version == "0.3":
            # 0.3 _TensorBase.__reduce__: (_rebuild_tensor, (storage, storage_offset, size, stride))
            return (torch._utils._rebuild_tensor, (t.storage, t.offset, t.size, t.stride))
        # 0.4 Tensor.__reduce_ex__: (_rebuild_tensor_v2, (storage, offset, size, stride, requires_grad, _backward_hooks))
        return (torch._utils._rebuild_tensor_v2, (t.storage, t.offset, t.size, t.stride, t.requires_grad, None))

    def red_param(p):
        if version == "0.3":
            # 0.3 Variable.__reduce_ex__(proto > 1): (type(self), (self.data,), (requires_grad, volatile=False, _backward_hooks))
            return (torch.nn.parameter.Parameter, (p.tensor,), (p.requires_grad, False, collections.OrderedDict()))
        # 0.4 Parameter.__reduce_ex__: (Parameter, (super(Parameter, self), self.requires_grad)); the super() proxy
        # pickles through Tensor.__reduce_ex__
        return (torch.nn.parameter.Parameter, (p.tensor, p.requires_grad))

    def red_module(m):
        return (copyreg.__newobj__, (m.cls,), m.state)

    return {_ThnnBackend: red_backend, _OldTensor: red_tensor, _OldParameter: red_param, _OldModule: red_module}


def _legacy04_save(obj, f, version, storages):
    """torch 0.4 torch/serialization.py _save (from knowledge): magic number, protocol version, sys_info, the
    object with persistent ids, the sorted storage keys, then each root storage as int64 element count + raw bytes."""
    serialized_container_types = {}
    serialized_storages = {}

    def persistent_id(o):
        if isinstance(o, type) and issubclass(o, nn.Module):
            if o in serialized_container_types:
                return None
            serialized_container_types[o] = True
            source_file = source = None
            try:
                import inspect

                # The script that defined the class, as it lay on the machine that trained: a cluster path,
                # never the checkout that generates the samples.
                source_file = "/mnt/cluster/alice/experiments/train.py"
                source = inspect.getsource(o)
            except Exception:  # noqa: BLE001 - 0.4: "saving the source is optional"
                pass
            return ("module", o, source_file, source)
        if isinstance(o, _OldStorage):
            root = o.root or o
            serialized_storages[root.key] = root
            view_metadata = (o.key, o.offset, o.data.numel()) if o.root is not None else None
            return ("storage", torch.FloatStorage, root.key, "cpu", root.data.numel(), view_metadata)
        return None

    sys_info = dict(protocol_version=PROTOCOL_VERSION, little_endian=True, type_sizes=dict(short=2, int=4, long=8))
    pickle.dump(MAGIC_NUMBER, f, protocol=2)
    pickle.dump(PROTOCOL_VERSION, f, protocol=2)
    pickle.dump(sys_info, f, protocol=2)
    pickler = pickle.Pickler(f, protocol=2)
    pickler.persistent_id = persistent_id
    pickler.dispatch_table = _legacy04_reducers(version)
    pickler.dump(obj)
    keys = sorted(serialized_storages.keys())
    pickle.dump(keys, f, protocol=2)
    for key in keys:
        data = serialized_storages[key].data.contiguous()
        f.write(struct.pack("<q", data.numel()))
        f.write(data.numpy().tobytes())


class _Legacy04Builder:
    """Turns a real modern module into the object graph torch 0.3/0.4 would pickle."""

    def __init__(self, version):
        self.version = version
        self.next_key = 94371608301568  # keys were str(storage._cdata): memory addresses; fixed here
        self.storages = []

    def storage(self, data, root=None, offset=0):
        s = _OldStorage(data, str(self.next_key), root, offset)
        self.next_key += 4096 + 64 * len(self.storages)
        self.storages.append(s)
        return s

    def tensor(self, t, requires_grad=False):
        t = t.detach().float().contiguous()
        st = self.storage(t.reshape(-1).clone())
        return _OldTensor(st, 0, t.shape, t.stride(), requires_grad)

    def module(self, m):
        v = self.version
        st = collections.OrderedDict() if False else {}
        st["_backend"] = _THNN  # one module-level backend object in 0.3/0.4 (memoized after its first use)
        params = collections.OrderedDict()
        for name, p in m._parameters.items():
            params[name] = None if p is None else _OldParameter(self.tensor(p, p.requires_grad if v != "0.3" else False), p.requires_grad)
        bufs = collections.OrderedDict()
        for name, b in m._buffers.items():
            if name == "num_batches_tracked":
                continue  # added in 0.4.1
            bufs[name] = self.tensor(b)
        st["_parameters"] = params
        st["_buffers"] = bufs
        st["_backward_hooks"] = collections.OrderedDict()
        st["_forward_hooks"] = collections.OrderedDict()
        st["_forward_pre_hooks"] = collections.OrderedDict()
        mods = collections.OrderedDict()
        for name, c in m._modules.items():
            mods[name] = self.module(c)
        st["_modules"] = mods
        st["training"] = m.training
        if isinstance(m, nn.Conv2d):
            for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "transposed", "output_padding", "groups"):
                st[k] = getattr(m, k)
        elif isinstance(m, nn.Linear):
            st["in_features"], st["out_features"] = m.in_features, m.out_features
        elif isinstance(m, nn.BatchNorm2d):
            st["num_features"] = m.num_features
            if v == "0.3":
                st["affine"], st["eps"], st["momentum"] = m.affine, m.eps, m.momentum
            else:
                st["eps"], st["momentum"], st["affine"], st["track_running_stats"] = m.eps, m.momentum, m.affine, True
        return _OldModule(type(m), st)


def sample_torch04(out_dir):
    if not TORCH2:
        return  # written once, by torch 2.x with the transcribed writer
    for version in ("0.3", "0.4"):
        M().seed(31)
        net = NestedNet().eval()
        b = _Legacy04Builder(version)
        root = b.module(net)
        # one storage view (as storage[a:b] produced in 0.3/0.4): a tensor over elements 2..5 of head.weight's storage
        head_w = root.state["_modules"]["head"].state["_parameters"]["weight"].tensor
        view = b.storage(head_w.storage.data[2:6].clone(), root=head_w.storage, offset=2)
        obj = {"model": root, "head_weight_view": _OldTensor(view, 0, (2, 2), (2, 1)), "epoch": 3, "arch": "NestedNet"}
        fname = "torch%s_whole_module.pt" % version.replace(".", "")
        path = os.path.join(out_dir, fname)
        with open(path, "wb") as f:
            _legacy04_save(obj, f, version, b.storages)
        truth = _legacy_truth(out_dir, fname, version, b, view, head_w)
        M().write_truth(out_dir, fname, truth)


def _legacy_truth(out_dir, fname, version, builder, view, viewed):
    path = os.path.join(out_dir, fname)
    with warnings.catch_warnings(record=True) as wl:
        warnings.simplefilter("always")
        loaded, keymap, records = M().load_with_capture(path)
    # views: the capture maps the view's storage to the ROOT key; name it by its view key instead (the key the
    # stream gives that storage: deserialized_objects[view_key])
    for saved_id, res in records:
        if saved_id[0] == "storage" and saved_id[5] is not None:
            keymap[M()._untyped(res)._cdata] = (saved_id[5][0], saved_id[3])
    w = M().Walker(keymap)
    w.walk(loaded)
    truth = M().base_truth(fname, "torch-legacy", 2)
    truth["tensors"] = w.tensors
    truth["notes"] = [
        "written by a transcription of torch %s torch/serialization.py _save (magic number 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info, pickle protocol 2 with persistent ids, sorted storage keys, then per root storage an int64 element count + raw little-endian bytes); the transcription is from knowledge, not from a stored copy of the 0.3/0.4 source" % version,
        "persistent ids: ('module', cls, source_file, source) the first time each nn.Module subclass is pickled (later: a plain GLOBAL); ('storage', torch.FloatStorage, root_key, 'cpu', root_numel, view_metadata) with view_metadata = (view_key, element_offset, numel) for a view, else None",
        "tensors: %s; parameters: %s; Module state = 0.3/0.4 Module.__dict__ (_backend pickled as torch.nn.backends.thnn._get_thnn_function_backend(), _parameters, _buffers, _backward_hooks, _forward_hooks, _forward_pre_hooks, _modules, training, then the layer's own attributes); BatchNorm has no num_batches_tracked (added in 0.4.1)%s"
        % (
            "torch._utils._rebuild_tensor(storage, offset, size, stride) (4 args)" if version == "0.3" else "torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, None)",
            "REDUCE(torch.nn.parameter.Parameter, (data,)) then BUILD with state (requires_grad, False, OrderedDict()) (0.3 Variable.__reduce_ex__, protocol 2)" if version == "0.3" else "REDUCE(torch.nn.parameter.Parameter, (tensor, requires_grad)) (0.4 Parameter.__reduce_ex__ returns (Parameter, (super(Parameter, self), self.requires_grad)))",
            " and no track_running_stats (0.4.0 added it)" if version == "0.3" else "",
        ),
        "'head_weight_view' is a tensor over a storage VIEW: elements 2..5 of model.head.weight's root storage %s (view key %s, element offset 2, 4 elements); modern torch.load maps it to a slice of the root's bytes, so it shares memory with model._modules.head.weight; its truth storage.key is the view key and sizeBytes is the view's size (16)" % (viewed.storage.key, view.key),
        "storage keys are fixed fake memory addresses (0.3/0.4 used str(storage._cdata)), so this file is byte-for-byte reproducible",
        "truth = torch %s torch.load(weights_only=False); warnings on load: %s" % (torch.__version__, sorted({type(x.message).__name__ for x in wl}) or "none"),
    ]
    truth["legacyStream"] = collections.OrderedDict(
        writer="torch %s (transcribed)" % version,
        storageKeys=sorted(s.key for s in builder.storages if s.root is None),
        views=[collections.OrderedDict(viewKey=view.key, rootKey=viewed.storage.key, elementOffset=2, numel=4)],
        moduleClasses=sorted({"%s.%s" % (c.__module__, c.__qualname__) for c in _module_classes(loaded["model"])}),
    )
    truth["notes"].extend(w.notes)
    wo = _wo_probe(path)
    truth["weightsOnlyTrue"] = wo
    truth["parameters"] = parameters_section(loaded["model"])
    return truth


def _module_classes(m):
    return {type(x) for x in m.modules()}


# --------------------------------------------------------------------------
# B3. bare pickles (not torch.save output)
# --------------------------------------------------------------------------


def _first_line(e):
    """The first line of an exception; for torch >= 2.6 weights_only failures, the WeightsUnpickler cause."""
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    first = lines[0] if lines else ""
    if first.startswith("Weights only load failed"):
        for i, l in enumerate(lines):
            if "WeightsUnpickler error:" in l:
                rest = l.split("WeightsUnpickler error:", 1)[1].strip() or (lines[i + 1] if i + 1 < len(lines) else "")
                return ("Weights only load failed. WeightsUnpickler error: " + rest)[:300]
        return "Weights only load failed."
    return first[:300]


def _load_outcome(fn):
    try:
        res = fn()
        return {"ok": True, "type": type(res).__name__}
    except BaseException as e:  # noqa: BLE001
        return {"ok": False, "exception": type(e).__name__, "message": _first_line(e)}


def sample_bare_pickles(out_dir):
    """pickle.dump of plain data / numpy arrays, protocols 0..5, written under torch 2 into torch2/bare_pickles/.
    Truth records what torch.load does on them (weights_only True and False) and what pickle.load returns;
    run under torch 1.13 (after torch 2) this adds torch 1.13's outcomes to the same truths."""
    if not TORCH2:
        cross_bare_pickles(os.path.join(os.path.dirname(os.path.abspath(out_dir)), "torch2"))
        return
    d = os.path.join(out_dir, "bare_pickles")
    os.makedirs(d, exist_ok=True)
    payloads = {
        "plain": collections.OrderedDict([("epoch", 3), ("lr", 0.001), ("name", "run-1"), ("tags", ["a", "b"]), ("shape", (2, 3)), ("none", None)]),
        "numpy": collections.OrderedDict([("weight", np.arange(6, dtype=np.float32).reshape(2, 3)), ("bias", np.array([0.5, -1.0], dtype=np.float64)), ("step", np.int64(7))]),
    }
    for kind, obj in payloads.items():
        for proto in range(0, 6):
            fname = "%s_protocol%d.pkl" % (kind, proto)
            path = os.path.join(d, fname)
            with open(path, "wb") as f:
                pickle.dump(obj, f, protocol=proto)
            truth = M().base_truth(fname, "pickle", proto)
            back = pickle.load(open(path, "rb"))
            truth["pickleLoad"] = _describe(back)
            truth["torchLoad"] = collections.OrderedDict()
            truth["torchLoad"]["torch " + torch.__version__] = collections.OrderedDict(
                weightsOnlyTrue=_load_outcome(lambda: torch.load(path, weights_only=True)),
                weightsOnlyFalse=_load_outcome(lambda: torch.load(path, weights_only=False)),
            )
            truth["notes"] = [
                "bare pickle.dump(obj, f, protocol=%d) of %s: not torch.save output (no zip, no magic number); there are no tensors" % (proto, "plain Python data" if kind == "plain" else "numpy arrays and a numpy scalar"),
                "torchLoad: what torch.load(path) raises or returns, per torch version (the torch 1.13 entry is added when make_samples.py runs under torch 1.13 after torch 2, see make_samples.sh)",
            ]
            M().write_truth(d, fname, truth)


def _describe(v):
    if isinstance(v, dict):
        return collections.OrderedDict((str(k), _describe(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return [_describe(x) for x in v]
    if isinstance(v, np.ndarray):
        return {"ndarray": str(v.dtype), "shape": list(v.shape), "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}
    if isinstance(v, np.generic):
        return {"numpy": type(v).__name__, "value": v.item()}
    return v


def cross_bare_pickles(out_dir_torch2):
    """Run under torch 1.13: add its torch.load outcomes to the bare-pickle truths written by torch 2."""
    d = os.path.join(out_dir_torch2, "bare_pickles")
    if not os.path.isdir(d):
        return
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".truth.json"):
            continue
        tp = os.path.join(d, fn)
        path = tp[: -len(".truth.json")]
        truth = json.load(open(tp), object_pairs_hook=collections.OrderedDict)
        ent = collections.OrderedDict(
            weightsOnlyTrue=_load_outcome(lambda: torch.load(path, weights_only=True)),
            weightsOnlyFalse=_load_outcome(lambda: torch.load(path, weights_only=False)),
        )
        truth["torchLoad"]["torch " + torch.__version__] = ent
        with open(tp, "w", encoding="utf-8") as f:
            json.dump(truth, f, indent=1, ensure_ascii=False, allow_nan=False)
            f.write("\n")


# --------------------------------------------------------------------------
# B4. text files and pointer files next to what they name
# --------------------------------------------------------------------------


def sample_text_and_pointers(out_dir):
    if not TORCH2:
        return
    base = os.path.join(out_dir, "pointers")
    shutil.rmtree(base, ignore_errors=True)
    M().seed(40)
    model = KnownMLP()
    # fvcore: last_checkpoint -> model_0000009.pth (basename, no newline)
    d = os.path.join(base, "fvcore")
    os.makedirs(d)
    torch.save({"model": model.state_dict(), "iteration": 9}, os.path.join(d, "model_0000009.pth"))
    _pointer(d, "last_checkpoint", "model_0000009.pth", "model_0000009.pth",
             "fvcore Checkpointer.tag_last_checkpoint: basename, no newline; resolved as os.path.join(save_dir, content.strip())")
    # DeepSpeed: latest -> tag dir global_step10
    d = os.path.join(base, "deepspeed")
    os.makedirs(os.path.join(d, "global_step10"))
    torch.save({"module": model.state_dict(), "global_steps": 10}, os.path.join(d, "global_step10", "mp_rank_00_model_states.pt"))
    _pointer(d, "latest", "global_step10", "global_step10",
             "DeepSpeed engine.save_checkpoint writes the tag only, no newline; load_checkpoint joins it with load_dir: a DIRECTORY")
    # Megatron-LM: latest_checkpointed_iteration.txt -> iter_0000010/mp_rank_00/model_optim_rng.pt
    d = os.path.join(base, "megatron")
    os.makedirs(os.path.join(d, "iter_0000010", "mp_rank_00"))
    torch.save({"checkpoint_version": 3.0, "iteration": 10, "model": model.state_dict()},
               os.path.join(d, "iter_0000010", "mp_rank_00", "model_optim_rng.pt"))
    _pointer(d, "latest_checkpointed_iteration.txt", "10", "iter_0000010",
             "Megatron-LM checkpointing.py: tracker <save>/latest_checkpointed_iteration.txt holds str(iteration) (no newline) or 'release'; read_metadata int()s it and the checkpoint is <save>/iter_{:07d}/mp_rank_00/model_optim_rng.pt: content '10' names directory iter_0000010, not a file called '10'")
    # text files that are NOT pointers
    d = os.path.join(out_dir, "text")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for fname, content, why in (
        ("notes.txt", "abc", "three letters of prose; no file or directory named 'abc' exists anywhere near it"),
        ("train_note.txt", "trained on 8 GPUs, lr 3e-4\n", "a one-line human note"),
        ("README.md", "# run 2024-05-01\n\nResNet-18 baseline. Checkpoints were moved to the cluster.\n\n- lr 0.1, 90 epochs\n- see `log.txt`\n", "a README"),
    ):
        with open(os.path.join(d, fname), "w", newline="") as f:
            f.write(content)
        truth = M().base_truth(fname, "text")
        truth["text"] = collections.OrderedDict(content=content, isPointer=False, why=why)
        outcome = _load_outcome(lambda: torch.load(os.path.join(d, fname), weights_only=False))
        truth["torchLoad"] = outcome
        truth["notes"] = ["a text file that is not a checkpoint and not a pointer: torch.load fails on it (%s)" % outcome.get("exception")]
        M().write_truth(d, fname, truth)


def _pointer(d, name, content, target, note):
    with open(os.path.join(d, name), "w", newline="") as f:
        f.write(content)
    truth = M().base_truth(name, "pointer")
    truth["pointer"] = collections.OrderedDict(content=content, target=target)
    truth["notes"] = [note]
    M().write_truth(d, name, truth)


# --------------------------------------------------------------------------
# B5. TorchScript archives in every shape torch.jit.save writes
# --------------------------------------------------------------------------


def _ts_truth(out_dir, fname, notes):
    import zipfile

    path = os.path.join(out_dir, fname)
    loaded = torch.jit.load(path, map_location="cpu")
    truth = M().base_truth(fname, "torchscript")
    params = {n for n, _ in loaded.named_parameters()}
    w = M().Walker(with_keys=False)
    for name, t in loaded.state_dict(keep_vars=True).items():
        w.record(name.split("."), t)
        w.tensors[-1]["parameter"] = name in params
    truth["tensors"] = w.tensors
    members = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            members.append(collections.OrderedDict(
                name=info.filename.split("/", 1)[1],
                compression={0: "stored", 8: "deflated"}.get(info.compress_type, str(info.compress_type)),
                size=info.file_size,
            ))
    truth["archive"] = collections.OrderedDict(prefix=z.namelist()[0].split("/", 1)[0], members=members)
    truth["notes"] = [
        "paths are torch.jit.load(...).state_dict(keep_vars=True) names split on '.'",
        "members: code/*.py and code/*.py.debug_pkl are DEFLATED; data.pkl, constants.pkl, data/N, extra/*, version are STORED (as torch.jit.save writes them)",
    ] + list(notes)
    M().write_truth(out_dir, fname, truth)


def sample_torchscript_shapes(out_dir):
    M().seed(41)
    scripted = torch.jit.script(TSNet())
    fname = "ts_scripted_extra_files.pt"
    torch.jit.save(scripted, os.path.join(out_dir, fname), _extra_files={"meta.json": '{"epoch": 3, "arch": "TSNet"}', "notes/readme.txt": "exported for serving\n"})
    _ts_truth(out_dir, fname, ["torch.jit.script + torch.jit.save with _extra_files {'meta.json', 'notes/readme.txt'} -> extra/meta.json, extra/notes/readme.txt"])
    M().seed(41)
    traced = torch.jit.trace(TSNet(), torch.ones(2, 4))
    fname = "ts_traced.pt"
    torch.jit.save(traced, os.path.join(out_dir, fname))
    _ts_truth(out_dir, fname, ["torch.jit.trace: mangled code names (___torch_mangle_N); torch 2.x also writes traced_inputs.pkl + traced_inputs/N"])
    fname = "ts_lite.ptl"
    scripted._save_for_lite_interpreter(os.path.join(out_dir, fname))
    _ts_truth(out_dir, fname, ["_save_for_lite_interpreter: adds bytecode.pkl (mobile bytecode) next to the TorchScript members"])
    # a traced module holding a scripted submodule, saved to a buffer then written (torch.jit.save to file object)
    M().seed(41)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.jit.script(TSNet())
            self.scale = nn.Parameter(torch.tensor([2.0, 0.5, 1.0]))

        def forward(self, x):
            return self.inner(x) * self.scale

    in_main(Wrap)
    m = torch.jit.trace(Wrap(), torch.ones(1, 4))
    buf = io.BytesIO()
    torch.jit.save(m, buf)
    fname = "ts_traced_with_scripted.pt"
    with open(os.path.join(out_dir, fname), "wb") as f:
        f.write(buf.getvalue())
    _ts_truth(out_dir, fname, ["trace of a module holding a scripted submodule + a top-level Parameter; torch.jit.save to a BytesIO (archive prefix is 'archive')"])


# --------------------------------------------------------------------------
# B6. packed / quantized parameters
# --------------------------------------------------------------------------


def _qweight_info(w):
    d = collections.OrderedDict()
    d["dtype"] = M().dtype_name(w.dtype)
    d["shape"] = list(w.shape)
    qs = w.qscheme()
    d["qscheme"] = str(qs).replace("torch.", "")
    if qs in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        d["scale"] = float(w.q_scale())
        d["zeroPoint"] = int(w.q_zero_point())
    else:
        d["axis"] = int(w.q_per_channel_axis())
        d["scales"] = [float(x) for x in w.q_per_channel_scales().tolist()]
        d["zeroPoints"] = [int(x) for x in w.q_per_channel_zero_points().tolist()]
    d["intReprSha256"] = hashlib.sha256(w.int_repr().contiguous().numpy().tobytes()).hexdigest()
    return d


def _bias_info(b):
    if b is None:
        return None
    b = b.detach().contiguous()
    return collections.OrderedDict(dtype=M().dtype_name(b.dtype), shape=list(b.shape), sha256=M().sha256_tensor(b))


def _unpack(obj):
    """(weight, bias, class name, __getstate__ shape) of a packed-params ScriptObject."""
    st = obj.__getstate__()
    cls = st[1] if isinstance(st, tuple) and len(st) == 2 and isinstance(st[1], str) else None
    inner = st[0] if cls else st
    if cls and "Conv" in cls:
        w, b = torch.ops.quantized.conv2d_unpack(obj)
        shape = "(version '%s', [config int16 tensor (%d elements), qweight], [bias])" % (inner[0], inner[1][0].numel())
    else:
        w, b = torch.ops.quantized.linear_unpack(obj)
        shape = "(qweight, bias)"
    return w, b, cls, shape


def _find_packed(root):
    """Every packed-params ScriptObject under a module, as (dotted module path, vars() path from the root).

    TorchScript modules: named_modules(). Eager modules: a walk of vars() (a quantized Conv2d rebuilt by its
    own __setstate__ from torch.save(model) has no _modules/_parameters, so named_modules() fails on it)."""
    out = []

    def is_so(o):
        return isinstance(o, torch.ScriptObject) or type(o).__name__ == "ScriptObject"

    if isinstance(root, torch.jit.ScriptModule):
        for name, sub in root.named_modules():
            obj = getattr(sub, "_packed_params", None)
            if obj is None:
                continue
            dotted = (name + "." if name else "") + "_packed_params"
            if not is_so(obj) and hasattr(obj, "_packed_params"):
                obj = obj._packed_params
                dotted += "._packed_params"
            if is_so(obj):
                out.append((dotted, None, obj))
        return out

    def walk(o, dotted, vpath):
        for k, v in vars(o).items():
            if k == "_modules":
                for n, c in v.items():
                    if c is not None:
                        walk(c, dotted + [n], vpath + ["_modules", n])
            elif k == "_packed_params":
                if is_so(v):
                    out.append((".".join(dotted + [k]), vpath + [k], v))
                elif isinstance(v, nn.Module):
                    walk(v, dotted + [k], vpath + [k])
            elif isinstance(v, nn.Module):
                walk(v, dotted + [k], vpath + [k])

    walk(root, [], [])
    return out


def _packed_entries(root, kind):
    entries = []
    for path, vpath, obj in _find_packed(root):
        w, b, cls, shape = _unpack(obj)
        e = collections.OrderedDict()
        e["location"] = path
        e["locationKind"] = kind
        if vpath is not None:
            e["varsPath"] = vpath
        e["class"] = cls
        e["getstate"] = shape
        e["weight"] = _qweight_info(w)
        e["bias"] = _bias_info(b)
        entries.append(e)
    return entries


GETSTATE_NOTE = (
    "__getstate__ per class (torch %s): LinearPackedParamsBase (torch.classes.quantized) ScriptObject.__getstate__() = ((qweight, bias), '__torch__.torch.classes.quantized.LinearPackedParamsBase') - qweight a quantized tensor, bias a float tensor (a Parameter for dynamic Linear) or None; "
    "Conv2dPackedParamsBase = (('2', [config (int16 1-d: spatial dim, stride, padding, dilation, output_padding, groups, transpose flag...), qweight], [bias]), '__torch__.torch.classes.quantized.Conv2dPackedParamsBase'); "
    "eager torch.ao.nn.quantized.modules.linear.LinearPackedParams state_dict saves <prefix>dtype and <prefix>_packed_params = (qweight, bias) (from _weight_bias()); "
    "eager quantized Conv2d state_dict saves <prefix>weight (qweight), <prefix>bias, <prefix>scale, <prefix>zero_point; pickling the whole module goes through the modules' __getstate__ (Linear packed params: (qweight, bias, training, dtype))"
) % torch.__version__


def sample_packed(out_dir):
    tq = _tq()
    engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "onednn"
    if engine not in torch.backends.quantized.supported_engines:
        engine = "qnnpack"
    torch.backends.quantized.engine = engine
    # dynamic quantized Linear (qint8)
    M().seed(50)
    dyn = tq.quantize_dynamic(DynNet().eval(), {nn.Linear}, dtype=torch.qint8)
    # static quantized Conv2d + Linear
    M().seed(51)
    st = QuantNet().eval()
    st.qconfig = tq.get_default_qconfig(engine)
    prep = tq.prepare(st)
    g = torch.Generator().manual_seed(51)
    for _ in range(4):
        prep(torch.randn(4, 1, 4, 4, generator=g))
    stat = tq.convert(prep)
    for tag, model in (("dynamic_linear", dyn), ("static_conv_linear", stat)):
        # (a) eager state_dict
        fname = "packed_%s_state_dict.pt" % tag
        M().torch_save_truth(out_dir, fname, model.state_dict(), extra_notes=["quantized engine %s; %s" % (engine, GETSTATE_NOTE)])
        sd = load(os.path.join(out_dir, fname))
        _add_packed(out_dir, fname, _packed_from_state_dict(sd), engine)
        # (b) whole module
        fname = "packed_%s_module.pt" % tag
        M().torch_save_truth(out_dir, fname, model, extra_notes=["torch.save(model) of a quantized module (engine %s): the packed params are ScriptObjects rebuilt by the modules' __setstate__; the walk cannot see inside them (see packedParams)" % engine, GETSTATE_NOTE])
        m = load(os.path.join(out_dir, fname))
        _add_packed(out_dir, fname, _packed_entries(m, "attribute"), engine)
        # (c) TorchScript
        fname = "packed_%s_script.pt" % tag
        torch.jit.save(torch.jit.script(model), os.path.join(out_dir, fname))
        _ts_truth(out_dir, fname, ["torch.jit.script of a quantized module (engine %s): packed params are serialized through their TorchBind __getstate__ into data.pkl" % engine, GETSTATE_NOTE])
        js = torch.jit.load(os.path.join(out_dir, fname))
        _add_packed(out_dir, fname, _packed_entries(js, "attribute"), engine)


def _packed_from_state_dict(sd):
    out = []
    for k, v in sd.items():
        if k.endswith("_packed_params._packed_params") and isinstance(v, tuple):
            w, b = v
            e = collections.OrderedDict(location=k, locationKind="state-dict key", **{"class": "torch.ao.nn.quantized.modules.linear.LinearPackedParams"})
            e["getstate"] = "state_dict value (qweight, bias) from _weight_bias()"
            e["weight"] = _qweight_info(w)
            e["bias"] = _bias_info(b)
            out.append(e)
        elif k.endswith(".weight") and isinstance(v, torch.Tensor) and v.is_quantized:
            pre = k[: -len("weight")]
            e = collections.OrderedDict(location=k, locationKind="state-dict key", **{"class": "torch.ao.nn.quantized.Conv2d"})
            e["getstate"] = "state_dict keys %sweight (qweight) and %sbias" % (pre, pre)
            e["weight"] = _qweight_info(v)
            e["bias"] = _bias_info(sd.get(pre + "bias"))
            out.append(e)
    return out


def _add_packed(out_dir, fname, entries, engine):
    path = os.path.join(out_dir, fname + ".truth.json")
    truth = json.load(open(path), object_pairs_hook=collections.OrderedDict)
    truth["quantizedEngine"] = engine
    truth["packedParams"] = entries
    with open(path, "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


SAMPLES = collections.OrderedDict(
    [
        ("tutorial", sample_tutorial),
        ("imagenet", sample_imagenet),
        ("everyday", sample_everyday),
        ("nanogpt", sample_nanogpt),
        ("torchtune", sample_torchtune),
        ("adamw_known", sample_adamw_known),
        ("lightning_no_sched", sample_lightning_no_sched),
        ("allennlp_state", sample_allennlp_training_state),
        ("whole_modules", sample_whole_modules),
        ("torch04", sample_torch04),
        ("bare_pickles", sample_bare_pickles),
        ("text_pointers", sample_text_and_pointers),
        ("torchscript_shapes", sample_torchscript_shapes),
        ("packed", sample_packed),
    ]
)
NEW_SAMPLES = list(SAMPLES)
