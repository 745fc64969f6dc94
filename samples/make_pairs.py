#!/usr/bin/env python3
"""Pairs of checkpoints for `ckpt diff`, and checkpoints whose size has a story, with what torch makes of them.

Usage:
    make_pairs.py make  SAMPLES_DIR   writes samples/pairs/* and samples/size/* with real torch (and timm,
                                      lightning, safetensors, torch.distributed.checkpoint)
    make_pairs.py truth SAMPLES_DIR   writes the truths, after make_pairs.sh made the repaired copies with
                                      `ckpt repair` (what "what did repair change" asks about)

Run through `bash samples/make_pairs.sh` (torch 2.x). Every number in a truth file is computed by torch from
the files as torch.load (or safetensors, or dcp_to_torch_save) loads them:

pairs/<pair>.truth.json (schema "ckpt.diff-truth/1"), one per pair of inputs A and B:
    a, b             the inputs, relative to samples/ (a file, a sharded directory), and `select` (the dotted
                     key compared on each side, or null for the whole checkpoint)
    renames          the prefix renames the pair was made with: {from, to}, a key `from + rest` in A is
                     `to + rest` in B
    onlyInA, onlyInB tensor names (dotted key paths, `[i]` for integer keys and list indices, as ckpt prints
                     them) on one side only, once the renames are applied
    tensors          every tensor on both sides: dtype and shape on each, `torch.equal`, whether the bytes are
                     the same, sha256 of each side's contiguous bytes, and, when the shapes agree, computed in
                     float64 over the elements finite on both sides: `(a - b).abs().max()`, `(a - b).norm() /
                     a.norm()`, the elements where `a != b` (a NaN in both places is no difference), NaNs and
                     infinities in B where A had none
    values           non-tensor leaves (numbers, strings, None, empty containers) that differ or are on one
                     side only
    equal            whether nothing differs: what `ckpt diff` exits 0 for

size/<name>.truth.json (schema "ckpt.size-truth/1"), one per file:
    fileSize, storages (each storage once, by its data_ptr: bytes, dtype, the names that reach it),
    tensors (name, dtype, shape, stride, storage offset, bytes of its own elements, its storage's bytes),
    clone (the same object with every tensor .clone()d, as pytorch#53419 advises, saved by torch: its file
    size and storage bytes), parts (storage bytes under each top-level key, each storage once), float64
    (float64 tensors under `model` when the model's other floating tensors are float32 or bfloat16)
"""

import collections
import copy
import ctypes
import glob
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import warnings

warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def seed(n):
    torch.manual_seed(n)
    np.random.seed(n)


def generator_info():
    import safetensors

    return {"torch": torch.__version__, "python": platform.python_version(), "safetensors": safetensors.__version__}


# --------------------------------------------------------------------------------------------------------------
# Models and training
# --------------------------------------------------------------------------------------------------------------


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class Net(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.backbone = Backbone()
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def data(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def train(model, optimizer, steps, ema=None, scheduler=None):
    x, y = data()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)


def save(obj, path, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# make: the pairs
# --------------------------------------------------------------------------------------------------------------


def make_pairs(root):
    out = os.path.join(root, "pairs")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    p = lambda name: os.path.join(out, name)  # noqa: E731

    # A short pretraining run, saved as fvcore/detectron2 does, then two fine-tunes with the backbone frozen
    # (requires_grad False, only the head in the optimizer): one leaves the backbone in train mode, so its
    # BatchNorm running statistics keep moving; one puts it in eval mode, so nothing in it changes.
    seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3)
    train(model, opt, 5, scheduler=sched)
    pretrained = copy.deepcopy(model)
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "iteration": 4}, p("pretrain.pth"))

    for mode in ("train", "eval"):
        tuned = copy.deepcopy(pretrained)
        tuned.backbone.requires_grad_(False)
        tuned.train()
        if mode == "eval":
            tuned.backbone.eval()
        opt = torch.optim.AdamW(tuned.head.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3)
        train(tuned, opt, 5, scheduler=sched)
        save({"model": tuned.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "iteration": 9},
             p("finetune_bn_%s.pth" % mode))

    # The same weights under the prefixes the wrappers give them: DataParallel (module.), torch.compile
    # (_orig_mod.), a LightningModule holding the network as self.model (model.).
    import lightning as L

    class LitNet(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.model = net

    plain = copy.deepcopy(pretrained)
    save(plain.state_dict(), p("plain.pt"))
    save(nn.DataParallel(plain).state_dict(), p("dataparallel.pt"))
    save(torch.compile(plain).state_dict(), p("compiled.pt"))
    save(LitNet(plain).state_dict(), p("lightning.pt"))

    # dtype and shape changes: the weights in bfloat16; a head for 6 classes that keeps the first 5 rows.
    save({k: v.bfloat16() if v.is_floating_point() else v for k, v in plain.state_dict().items()}, p("plain_bf16.pt"))
    wider = Net(classes=6)
    wider.load_state_dict({k: v for k, v in plain.state_dict().items() if not k.startswith("head.")}, strict=False)
    with torch.no_grad():
        wider.head.weight[:5] = plain.head.weight
        wider.head.bias[:5] = plain.head.bias
    save(wider.state_dict(), p("wider_head.pt"))

    # A step that diverged: a learning rate so large that the head's weights overflow to inf, and the bias to
    # nan once inf - inf meets it.
    diverged = copy.deepcopy(plain).eval()  # eval: the BatchNorm statistics stay as they were
    opt = torch.optim.SGD(diverged.head.parameters(), lr=1e38)
    x, y = data()
    loss = F.cross_entropy(diverged(x), y) * 1e5
    loss.backward()
    opt.step()
    with torch.no_grad():
        diverged.head.bias.add_(diverged.head.weight.sum(1))  # inf + -inf somewhere: nan
    save(diverged.state_dict(), p("diverged.pt"))

    # EMA: real timm (ModelEmaV3 and CheckpointSaver, which writes state_dict and state_dict_ema), and a
    # hand-written loop that saves the EMA wrapper's own state_dict (its keys start with module.).
    from make_runs import import_timm

    import_timm()
    from timm.utils import CheckpointSaver, ModelEmaV3

    seed(2)
    live = Net()
    ema = ModelEmaV3(live, decay=0.9)
    opt = torch.optim.SGD(live.parameters(), lr=0.05, momentum=0.9)
    train(live, opt, 6, ema=ema)
    os.makedirs(p("timm_ema"))
    saver = CheckpointSaver(model=live, optimizer=opt, args=None, model_ema=ema, checkpoint_dir=p("timm_ema"),
                            recovery_dir=p("timm_ema"), max_history=1)
    saver.save_checkpoint(epoch=0, metric=0.5)
    for extra in glob.glob(os.path.join(p("timm_ema"), "*")):
        if os.path.basename(extra) != "last.pth.tar":
            os.remove(extra)
    save({"model": live.state_dict(), "model_ema": ema.state_dict(), "iteration": 5}, p("ema_wrapped.pth"))

    # fvcore: the periodic checkpointer saves model_0000029.pth and, at the last iteration, model_final.pth
    # with the same state; model_0000019.pth ten iterations before. model_0000059.pth lacks its counter
    # (make_pairs.sh repairs it with ckpt).
    seed(3)
    run = Net()
    opt = torch.optim.SGD(run.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    for it in range(30):
        train(run, opt, 1, scheduler=sched)
        if it in (19, 29):
            state = {"model": run.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "iteration": it}
            save(state, p("fvcore/model_%07d.pth" % it))
            if it == 29:
                save(state, p("fvcore/model_final.pth"))
    save({"model": run.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, p("fvcore/model_0000059.pth"))

    # Sharded against single files: torchtitan's DCP step as dcp_to_torch_save consolidates it, and the
    # transformers shards merged into one safetensors file.
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(os.path.join(root, "sharded/dcp/torchtitan/checkpoint/step-20"), p("torchtitan_step20.pt"))
    from safetensors.torch import load_file, save_file

    merged = {}
    for shard in sorted(glob.glob(os.path.join(root, "sharded/hf/safetensors_5digit/*.safetensors"))):
        merged.update(load_file(shard))
    save_file(merged, p("hf_merged.safetensors"), metadata={"format": "pt"})


# --------------------------------------------------------------------------------------------------------------
# make: checkpoints whose size has a story
# --------------------------------------------------------------------------------------------------------------


def size_samples():
    """name -> (object, what it shows). Each is saved as is and, as the reference, with every tensor cloned."""
    seed(4)
    big = torch.randn(512, 64)
    qkv = torch.randn(96, 32)
    q, k, v = qkv.chunk(3)
    out = collections.OrderedDict()
    out["slice_of_big"] = ({"anchors": big[:16]}, "16 rows of a 512 x 64 tensor: torch saves the whole storage")
    out["column_slice"] = ({"cols": big[:, :4]}, "4 columns of a 512 x 64 tensor: a view with gaps between its rows")
    out["split_all"] = ({"q": q, "k": k, "v": v}, "all three chunks of one qkv tensor: every byte of the storage is used")
    out["split_ends"] = ({"q": q, "v": v}, "the first and last chunks of qkv: the middle one is saved unused")
    out["expanded"] = ({"mask": torch.ones(1, 8).expand(64, 8)}, "an expanded view: 8 stored elements, 512 seen")

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(32, 16)
            self.lm_head = nn.Linear(16, 32, bias=False)
            self.lm_head.weight = self.embed.weight

    out["tied"] = (Tied().state_dict(), "tied input and output embeddings: one storage under two keys")

    class WithTable(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = Net()
            # A positional table computed with numpy is float64 unless someone casts it.
            table = np.sin(np.arange(64 * 8).reshape(64, 8) / 10.0)
            self.pos = nn.Parameter(torch.from_numpy(table))

    seed(5)
    fp32 = WithTable()
    out["float64_in_fp32"] = ({"model": fp32.state_dict(), "iteration": 3}, "a float32 model with one float64 parameter")
    bf16 = WithTable()
    bf16.net.bfloat16()
    out["float64_in_bf16"] = ({"model": bf16.state_dict()}, "a bfloat16 model with one float64 parameter")

    seed(6)
    model = Net()
    ema = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train(model, opt, 3)
    features = torch.randn(1000, 8)
    out["training_mix"] = (
        {"model": model.state_dict(), "model_ema": ema.state_dict(), "optimizer": opt.state_dict(), "iteration": 3,
         "prototypes": features[:5]},
        "model, EMA and AdamW state, and 5 prototypes sliced from a 1000 x 8 feature bank",
    )
    return out


def cloned(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return type(obj)((k, cloned(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [cloned(v) for v in obj]
    return obj


def make_size(root):
    out = os.path.join(root, "size")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for name, (obj, _) in size_samples().items():
        torch.save(obj, os.path.join(out, name + ".pt"))
        torch.save(cloned(obj), os.path.join(out, name + ".clone.pt"))


# --------------------------------------------------------------------------------------------------------------
# truth: loading and flattening as ckpt names things
# --------------------------------------------------------------------------------------------------------------


def fmt(path):
    """A key path as ckpt prints it (formatKeyPath): dotted names, [i] for integer keys and indices."""
    text = ""
    for seg in path:
        if isinstance(seg, int) and not isinstance(seg, bool):
            text += "[%d]" % seg
        else:
            text += seg if text == "" else "." + seg
    return text or "(root)"


def flatten(obj, path=(), tensors=None, values=None):
    """Tensors and non-tensor leaves by key path: dicts by key, lists and tuples by index, objects by vars()."""
    tensors = collections.OrderedDict() if tensors is None else tensors
    values = collections.OrderedDict() if values is None else values
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj
    elif isinstance(obj, dict):
        if not obj:
            values[path] = {}
        for k, v in obj.items():
            flatten(v, path + (k,), tensors, values)
    elif isinstance(obj, (list, tuple)):
        if not obj:
            values[path] = type(obj)()
        for i, v in enumerate(obj):
            flatten(v, path + (i,), tensors, values)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        flatten(vars(obj), path, tensors, values)
    else:
        values[path] = obj
    return tensors, values


def load_side(root, spec):
    """What torch makes of one input: a torch.load'ed file, a safetensors file, a consolidated DCP dir, or merged shards."""
    path = os.path.join(root, spec)
    if os.path.isdir(path) and glob.glob(os.path.join(path, "*.index.json")):
        from safetensors.torch import load_file

        with open(glob.glob(os.path.join(path, "*.index.json"))[0]) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        merged = {}
        for shard in shards:
            merged.update(load_file(os.path.join(path, shard)))
        return merged
    if os.path.isdir(path):
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

        with tempfile.TemporaryDirectory() as tmp:
            dcp_to_torch_save(path, os.path.join(tmp, "c.pt"))
            return torch.load(os.path.join(tmp, "c.pt"), map_location="cpu", weights_only=False)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=False)


def select(obj, key):
    for seg in key.split(".") if key else []:
        obj = obj[seg]
    return obj


def sha256_tensor(t):
    c = t.detach().contiguous()
    n = c.numel() * c.element_size()
    return hashlib.sha256(ctypes.string_at(c.data_ptr(), n) if n else b"").hexdigest()


def json_value(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return repr(v)


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def compare_tensors(a, b):
    entry = {"dtypeA": str(a.dtype)[6:], "dtypeB": str(b.dtype)[6:], "shapeA": list(a.shape), "shapeB": list(b.shape),
             "equal": bool(a.dtype == b.dtype and torch.equal(a, b)), "sha256A": sha256_tensor(a), "sha256B": sha256_tensor(b)}
    entry["sameBytes"] = entry["sha256A"] == entry["sha256B"] and a.dtype == b.dtype and a.shape == b.shape
    if a.shape != b.shape:
        return entry
    x, y = a.detach().double(), b.detach().double()
    finite = x.isfinite() & y.isfinite()
    d = (x - y)[finite]
    entry["elements"] = a.numel()
    entry["differing"] = int(((x != y) & ~(x.isnan() & y.isnan())).sum())
    entry["maxAbsDiff"] = float(d.abs().max()) if d.numel() else 0.0
    norm_a = float(x[finite].norm())
    norm_d = float(d.norm())
    entry["relL2"] = norm_d / norm_a if norm_a > 0 else (0.0 if norm_d == 0 else None)
    entry["nanAppeared"] = int((y.isnan() & ~x.isnan()).sum())
    entry["infAppeared"] = int((y.isinf() & ~x.isinf()).sum())
    return entry


def renamed(name, renames):
    for r in renames:
        if name.startswith(r["from"]):
            return r["to"] + name[len(r["from"]):]
    return name


# (name, a, b, select a, select b, renames, how B came from A)
PAIRS = [
    ("finetune_bn_train", "pairs/pretrain.pth", "pairs/finetune_bn_train.pth", None, None, [],
     "fine-tuned with the backbone frozen (requires_grad False) but in train mode: its BatchNorm statistics moved"),
    ("finetune_bn_train_model", "pairs/pretrain.pth", "pairs/finetune_bn_train.pth", "model", "model", [],
     "the same, the model part only"),
    ("finetune_bn_eval_model", "pairs/pretrain.pth", "pairs/finetune_bn_eval.pth", "model", "model", [],
     "fine-tuned with the backbone frozen and in eval mode: nothing in it changed"),
    ("dataparallel", "pairs/plain.pt", "pairs/dataparallel.pt", None, None, [{"from": "", "to": "module."}],
     "nn.DataParallel(model).state_dict()"),
    ("compiled", "pairs/plain.pt", "pairs/compiled.pt", None, None, [{"from": "", "to": "_orig_mod."}],
     "torch.compile(model).state_dict()"),
    ("dataparallel_compiled", "pairs/dataparallel.pt", "pairs/compiled.pt", None, None,
     [{"from": "module.", "to": "_orig_mod."}], "one prefix for another"),
    ("lightning", "pairs/plain.pt", "pairs/lightning.pt", None, None, [{"from": "", "to": "model."}],
     "a LightningModule holding the network as self.model"),
    ("bf16", "pairs/plain.pt", "pairs/plain_bf16.pt", None, None, [], "every floating tensor cast to bfloat16"),
    ("wider_head", "pairs/plain.pt", "pairs/wider_head.pt", None, None, [], "a 6-class head keeping the first 5 rows"),
    ("diverged", "pairs/plain.pt", "pairs/diverged.pt", None, None, [], "one SGD step at lr 1e38: inf and nan"),
    ("timm_ema", "pairs/timm_ema/last.pth.tar", "pairs/timm_ema/last.pth.tar", "state_dict", "state_dict_ema", [],
     "timm's CheckpointSaver: the live weights against ModelEmaV3's (decay 0.9) in the same file"),
    ("ema_wrapped", "pairs/ema_wrapped.pth", "pairs/ema_wrapped.pth", "model", "model_ema",
     [{"from": "", "to": "module."}], "the EMA wrapper's own state_dict: its keys start with module."),
    ("final_is_last", "pairs/fvcore/model_0000029.pth", "pairs/fvcore/model_final.pth", None, None, [],
     "fvcore's model_final.pth, saved at the same iteration as model_0000029.pth"),
    ("earlier_iteration", "pairs/fvcore/model_0000019.pth", "pairs/fvcore/model_0000029.pth", None, None, [],
     "ten iterations apart"),
    ("repaired_counter", "pairs/fvcore/model_0000059.pth", "pairs/fvcore/model_0000059.repaired.pth", None, None, [],
     "ckpt repair --counter-from-filename"),
    ("repaired_prefix", "pairs/dataparallel.pt", "pairs/dataparallel.stripped.pt", None, None,
     [{"from": "module.", "to": ""}], "ckpt repair --strip-prefix module."),
    ("repaired_prefix_plain", "pairs/plain.pt", "pairs/dataparallel.stripped.pt", None, None, [],
     "the stripped copy against the weights DataParallel wrapped"),
    ("dcp_steps", "sharded/dcp/torchtitan/checkpoint/step-10", "sharded/dcp/torchtitan/checkpoint/step-20", None, None,
     [], "two DCP steps of one torchtitan-style run"),
    ("dcp_consolidated", "sharded/dcp/torchtitan/checkpoint/step-20", "pairs/torchtitan_step20.pt", None, None, [],
     "dcp_to_torch_save's consolidation of the same step"),
    ("hf_merged", "sharded/hf/safetensors_5digit", "pairs/hf_merged.safetensors", None, None, [],
     "transformers' shards merged into one safetensors file"),
]


def pair_truth(root, name, a_spec, b_spec, sel_a, sel_b, renames, made):
    a_obj = select(load_side(root, a_spec), sel_a)
    b_obj = select(load_side(root, b_spec), sel_b)
    ta, va = flatten(a_obj)
    tb, vb = flatten(b_obj)
    ta = collections.OrderedDict((fmt(k), v) for k, v in ta.items())
    tb = collections.OrderedDict((fmt(k), v) for k, v in tb.items())
    va = collections.OrderedDict((fmt(k), v) for k, v in va.items())
    vb = collections.OrderedDict((fmt(k), v) for k, v in vb.items())
    mapped = collections.OrderedDict((renamed(k, renames), k) for k in ta)
    tensors = []
    for nb, bt in tb.items():
        na = mapped.get(nb)
        if na is not None:
            tensors.append(dict({"name": na, "nameB": nb}, **compare_tensors(ta[na], bt)))
    only_a = [k for k, v in mapped.items() if k not in tb]
    only_a = [mapped[k] for k in only_a]
    only_b = [k for k in tb if k not in mapped]
    vmapped = collections.OrderedDict((renamed(k, renames), k) for k in va)
    changed = [{"name": vmapped[k], "a": json_value(va[vmapped[k]]), "b": json_value(v)}
               for k, v in vb.items() if k in vmapped and not same_value(va[vmapped[k]], v)]
    values = {"changed": changed, "onlyInA": [vmapped[k] for k in vmapped if k not in vb],
              "onlyInB": [k for k in vb if k not in vmapped]}
    equal = (not renames and not only_a and not only_b and all(t["equal"] or t["sameBytes"] for t in tensors)
             and not changed and not values["onlyInA"] and not values["onlyInB"])
    truth = collections.OrderedDict()
    truth["schema"] = "ckpt.diff-truth/1"
    truth["pair"] = name
    truth["generator"] = generator_info()
    truth["made"] = made
    truth["a"] = a_spec
    truth["b"] = b_spec
    truth["select"] = {"a": sel_a, "b": sel_b}
    truth["renames"] = renames
    truth["onlyInA"] = only_a
    truth["onlyInB"] = only_b
    truth["tensors"] = tensors
    truth["values"] = values
    truth["equal"] = equal
    return truth


def size_truth(root, name, made):
    path = os.path.join(root, "size", name + ".pt")
    obj = torch.load(path, map_location="cpu", weights_only=False)
    tensors, _ = flatten(obj)
    storages = collections.OrderedDict()
    records = []
    for key, t in tensors.items():
        us = t.untyped_storage()
        entry = storages.setdefault(us.data_ptr(), {"bytes": us.nbytes(), "dtype": str(t.dtype)[6:], "names": []})
        entry["names"].append(fmt(key))
        records.append({"name": fmt(key), "dtype": str(t.dtype)[6:], "shape": list(t.shape), "stride": list(t.stride()),
                        "offset": t.storage_offset(), "bytes": t.numel() * t.element_size(), "storageBytes": us.nbytes()})
    parts = collections.OrderedDict()
    for top in obj if isinstance(obj, dict) else []:
        seen = {}
        for key, t in tensors.items():
            if key[0] == top:
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        if seen:
            parts[top] = sum(seen.values())
    float64 = []
    model = obj.get("model") if isinstance(obj, dict) else None
    if isinstance(model, dict):
        others = {str(t.dtype)[6:] for t in model.values() if t.is_floating_point() and t.dtype != torch.float64}
        if others & {"float32", "bfloat16"}:
            float64 = [fmt(("model", k)) for k, t in model.items() if t.dtype == torch.float64]
    clone_path = os.path.join(root, "size", name + ".clone.pt")
    clone_obj = torch.load(clone_path, map_location="cpu", weights_only=False)
    clone_storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in flatten(clone_obj)[0].values()}
    truth = collections.OrderedDict()
    truth["schema"] = "ckpt.size-truth/1"
    truth["file"] = name + ".pt"
    truth["generator"] = generator_info()
    truth["made"] = made
    truth["fileSize"] = os.path.getsize(path)
    truth["storages"] = list(storages.values())
    truth["tensors"] = records
    truth["clone"] = {"file": name + ".clone.pt", "fileSize": os.path.getsize(clone_path),
                      "storageBytes": sum(clone_storages.values())}
    truth["parts"] = parts
    truth["float64"] = float64
    return truth


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def main():
    command, root = sys.argv[1], os.path.abspath(sys.argv[2])
    torch.set_num_threads(1)
    if command == "make":
        make_pairs(root)
        make_size(root)
    elif command == "truth":
        for spec in PAIRS:
            write_json(os.path.join(root, "pairs", spec[0] + ".truth.json"), pair_truth(root, *spec))
        for name, (_, made) in size_samples().items():
            write_json(os.path.join(root, "size", name + ".truth.json"), size_truth(root, name, made))
    else:
        sys.exit("usage: make_pairs.py make|truth SAMPLES_DIR")


if __name__ == "__main__":
    main()
