#!/usr/bin/env python3
"""Generate SHARDED checkpoint samples (samples/sharded/) and what torch itself makes of each.

Usage (normally through make_sharded.sh):
    python make_sharded.py                  # torch 2.x: every sample except the torch 1.13 one
    python make_sharded.py --only NAME...   # some builders only (see BUILDERS)
    python make_sharded.py --torch1         # under torch 1.13: samples/sharded/dcp/torch1_13

Every sample is a DIRECTORY laid out as the framework writes it; beside it, <dir>.truth.json (schema
"ckpt.sharded-truth/1") says what is in it and what torch's own consolidation returns:

* DCP (torch.distributed.checkpoint): written by real torch.distributed.checkpoint.save, from real
  FSDP2 (fully_shard over a CPU device mesh, gloo, torch.multiprocessing.spawn with 2 and 4 ranks),
  DTensor and replicated state dicts, a torchtitan-style step-N/ layout, accelerate's own save_fsdp_model /
  save_fsdp_optimizer and real Lightning (ModelParallelStrategy, the FSDP2 strategy; Lightning's
  FSDPStrategy refuses CPU). Truth: torch.distributed.checkpoint.format_utils.dcp_to_torch_save.
* DeepSpeed ZeRO-1/2/3 (DeepSpeed does not install here): the files are built as engine.save_checkpoint,
  stage_1_and_2.py and stage3.py write them (flattening, alignment to 2*world_size, partitioning, padding
  stripped on save) and the truth is zero_to_fp32.py's reconstruction logic, transcribed and run with torch.
  DeepSpeed classes that end up in the pickles (LossScaler, DynamicLossScaler, ZeroStageEnum,
  fragment_address) are recreated under their real module names.
* Hugging Face: transformers save_pretrained(max_shard_size=...) (safetensors shards + index) and accelerate's
  save_model(safe_serialization=False) (pytorch_model-*.bin shards + index). Truth: the shards loaded with
  safetensors.torch.load_file / torch.load and merged, and from_pretrained's outcome.
* Damaged copies, each with what torch's (or transformers', or zero_to_fp32's) loading does.

Deterministic: fixed seeds, one thread, DCP's uuid generator replaced, checkpoint ids given as relative
paths from a fixed working directory.
"""

import argparse
import collections
import copy
import dataclasses
import enum
import hashlib
import io
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_runs import _torch, fake_module, seed_all  # noqa: E402 - the helpers every sample generator shares

OUT = os.path.join(HERE, "sharded")
SCHEMA = "ckpt.sharded-truth/1"

warnings.simplefilter("ignore")


# ----------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------


_GENERATOR = []


def generator_info():
    """Versions of what wrote the samples, taken once before any builder runs (the recreated deepspeed.* modules
    would make accelerate's import fail later)."""
    import platform

    if not _GENERATOR:
        torch = _torch()
        info = collections.OrderedDict(torch=torch.__version__, python=platform.python_version())
        for mod in ("transformers", "accelerate", "lightning", "safetensors"):
            try:
                info[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - a missing library is simply not listed
                pass
        _GENERATOR.append(info)
    return _GENERATOR[0]


def tensor_sha256(t):
    """sha256 of the tensor's elements in row-major order: the bytes of t.contiguous()."""
    torch = _torch()
    t = t.detach().contiguous().reshape(-1)
    if t.numel() == 0:
        return hashlib.sha256(b"").hexdigest()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def summarize(value):
    """A JSON description of a Python value torch.load returned (a BytesStorageMetadata item)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return collections.OrderedDict(
            type="Tensor", dtype=dtype_name(value.dtype), shape=list(value.shape), sha256=tensor_sha256(value)
        )
    out = collections.OrderedDict(type=type(value).__name__)
    jsonable = jsonable_value(value)
    if jsonable is not None or value is None:
        out["value"] = jsonable
    out["repr"] = repr(value)[:300]
    nested = nested_tensors(value, [])
    if nested:
        out["tensors"] = nested
    return out


def nested_tensors(value, path):
    """Tensors inside a loaded value, by their key path (dict keys, list and tuple indices), in the order
    torch.load's pickle built them (dicts keep insertion order)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return [collections.OrderedDict(path=path, dtype=dtype_name(value.dtype), shape=list(value.shape),
                                        sha256=tensor_sha256(value))]
    if isinstance(value, dict):
        pairs = value.items()
    elif isinstance(value, (list, tuple)):
        pairs = enumerate(value)
    else:
        return []
    found = []
    for key, child in pairs:
        found.extend(nested_tensors(child, path + [key]))
    return found


def jsonable_value(value):
    """The value as JSON when it is plain data (tuples become lists), else None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        items = [jsonable_value(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: jsonable_value(v) for k, v in value.items()}
        return None if any(items[k] is None and value[k] is not None for k in value) else items
    return None


def err_str(e):
    """Exception type and its most telling line (DCP wraps rank failures in a multi-line CheckpointException)."""
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    telling = lines[0] if lines else ""
    for l in lines:
        if re.search(r"(Error|Exception)\b", l) and not l.startswith("Traceback"):
            telling = l
    # messages name files by absolute path: keep them independent of where the samples were generated
    telling = telling.replace(OUT + os.sep, "samples/sharded/")
    if len(telling) > 400:
        telling = telling[:400] + "..."
    return collections.OrderedDict(exception=type(e).__name__, message=telling)


def file_list(d):
    out = []
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            out.append(collections.OrderedDict(name=os.path.relpath(p, d), size=os.path.getsize(p)))
    return out


def write_truth(d, doc):
    """<d>.truth.json beside the sample directory d."""
    with open(d.rstrip("/") + ".truth.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def truth_head(d, kind, producer):
    doc = collections.OrderedDict()
    doc["schema"] = SCHEMA
    doc["sample"] = os.path.relpath(d, OUT)
    doc["kind"] = kind
    doc["producer"] = producer
    doc["generator"] = generator_info()
    return doc


def fresh_dir(*parts):
    d = os.path.join(OUT, *parts)
    if os.path.exists(d):
        shutil.rmtree(d)
    if os.path.exists(d + ".truth.json"):
        os.remove(d + ".truth.json")
    os.makedirs(d)
    return d


# ----------------------------------------------------------------------------------------------
# multi-process plumbing: every rank runs a top-level function after joining a gloo group
# ----------------------------------------------------------------------------------------------

_PORT = [29650]


def _rank_main(rank, world_size, port, fn_name, args):
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    _torch()
    deterministic_dcp()
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        globals()[fn_name](rank, world_size, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn(fn_name, world_size, *args):
    import torch.multiprocessing as mp

    _PORT[0] += 1
    mp.spawn(_rank_main, args=(world_size, _PORT[0], fn_name, args), nprocs=world_size, join=True)


def save_relative(state, out, **kwargs):
    """dcp.save with a relative checkpoint id, so StorageMeta.checkpoint_id does not name this machine's paths."""
    import torch.distributed.checkpoint as dcp

    os.chdir(os.path.dirname(out))
    dcp.save(state, checkpoint_id=os.path.basename(out), **kwargs)


def build_spawned(parts, world_size, rank_fn, producer, step=None, *args):
    """A sample saved by `rank_fn` on every rank of a fresh gloo group, then its truth."""
    torch = _torch()
    d = fresh_dir(*parts)
    spawn(rank_fn, world_size, d, *args)
    dcp_truth(d, producer + "; saved with " + TORCH_DCP_REF % torch.__version__, step=step)
    return d


def train_step(name, value):
    return collections.OrderedDict(name=name, value=value)


def deterministic_dcp():
    """DCP stamps each save (and each reader) with uuid4; make the ids reproducible."""
    import torch.distributed.checkpoint.filesystem as dcp_fs

    counter = iter(range(1, 1_000_000))
    dcp_fs._generate_uuid = lambda: "00000000-0000-4000-8000-%012d" % next(counter)


# ----------------------------------------------------------------------------------------------
# DCP truth: structure from the .metadata torch reads, values from torch's own consolidation
# ----------------------------------------------------------------------------------------------


def read_dcp_metadata(d):
    from torch.distributed.checkpoint import FileSystemReader

    return FileSystemReader(d).read_metadata()


def get_path(tree, path):
    node = tree
    for key in path:
        node = node[key]
    return node


def storage_entry(md, fqn, offsets):
    from torch.distributed.checkpoint.metadata import MetadataIndex

    return md.storage_data.get(MetadataIndex(fqn, offsets))


def storage_json(info):
    out = collections.OrderedDict(file=info.relative_path, offset=info.offset, length=info.length)
    descriptors = getattr(info, "transform_descriptors", None)
    if descriptors:
        out["transformDescriptors"] = list(descriptors)
    return out


def consolidate_dcp(d):
    """torch's own consolidation: dcp_to_torch_save, then torch.load of what it wrote."""
    torch = _torch()
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "consolidated.pt")
        dcp_to_torch_save(d, out)
        return torch.load(out, map_location="cpu", weights_only=False)


def load_bytes_item(d, info):
    """What torch.load of a BytesStorageMetadata item's bytes returns (DefaultLoadPlanner.load_bytes)."""
    torch = _torch()
    with open(os.path.join(d, info.relative_path), "rb") as f:
        f.seek(info.offset)
        data = f.read(info.length)
    return torch.load(io.BytesIO(data), weights_only=False)


def dcp_structure(d, md):
    """Every logical item as .metadata declares it; sha256 filled in by the caller."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    tensors, items = [], []
    for fqn, m in md.state_dict_metadata.items():
        if isinstance(m, TensorStorageMetadata):
            chunks = []
            for c in m.chunks:
                info = storage_entry(md, fqn, c.offsets)
                chunk = collections.OrderedDict(offsets=list(c.offsets), sizes=list(c.sizes))
                chunk.update(storage_json(info) if info is not None else {"file": None})
                chunks.append(chunk)
            p = m.properties
            tensors.append(
                collections.OrderedDict(
                    name=fqn,
                    shape=list(m.size),
                    dtype=dtype_name(p.dtype),
                    requiresGrad=bool(p.requires_grad),
                    chunks=chunks,
                    sha256=None,
                )
            )
        else:
            info = storage_entry(md, fqn, None)
            item = collections.OrderedDict(name=fqn)
            item.update(storage_json(info) if info is not None else {"file": None})
            items.append(item)
    return tensors, items


def dcp_truth(d, producer, step=None, consolidate=True, extra=None):
    md = read_dcp_metadata(d)
    doc = truth_head(d, "dcp", producer)
    doc["files"] = file_list(d)
    tensors, items = dcp_structure(d, md)
    planner = md.planner_data or {}
    sd = consolidate_dcp(d) if consolidate else None
    for t in tensors:
        if sd is not None:
            value = get_path(sd, planner.get(t["name"], (t["name"],)))
            assert list(value.shape) == t["shape"] and dtype_name(value.dtype) == t["dtype"], t["name"]
            t["sha256"] = tensor_sha256(value)
    for item in items:
        info = storage_entry(md, item["name"], None)
        loaded = load_bytes_item(d, info)
        item["loaded"] = summarize(loaded)
        if sd is not None:
            assert summarize(get_path(sd, planner.get(item["name"], (item["name"],)))) == item["loaded"]
    doc["consolidatedBy"] = (
        "torch.distributed.checkpoint.format_utils.dcp_to_torch_save, then torch.load" if sd is not None else None
    )
    meta = collections.OrderedDict()
    meta["version"] = getattr(md, "version", None)
    sm = getattr(md, "storage_meta", None)
    meta["storageMeta"] = (
        None
        if sm is None
        else collections.OrderedDict(
            checkpointId=None if sm.checkpoint_id is None else str(sm.checkpoint_id),
            saveId=sm.save_id,
            loadId=None,  # FileSystemReader.read_metadata stamps its own load_id; the file holds None
            modules=list(sm.modules),
        )
    )
    meta["plannerData"] = {k: list(v) for k, v in planner.items()} if md.planner_data is not None else None
    meta["classes"] = sorted({type(md).__module__ + "." + type(md).__name__})
    doc["metadata"] = meta
    doc["tensors"] = tensors
    doc["bytes"] = items
    doc["step"] = step
    if extra:
        doc.update(extra)
    write_truth(d, doc)
    return doc


# ----------------------------------------------------------------------------------------------
# DCP samples (real torch.distributed.checkpoint)
# ----------------------------------------------------------------------------------------------

TORCH_DCP_REF = "real torch.distributed.checkpoint.save (torch %s)"


def mlp_layers(module, d_in, d_hidden, d_out):
    """fc1 -> norm -> fc2, registered in that order (the order parameters are initialised and saved in)."""
    nn = _torch().nn
    module.fc1 = nn.Linear(d_in, d_hidden)
    module.norm = nn.LayerNorm(d_hidden)
    module.fc2 = nn.Linear(d_hidden, d_out)


def tiny_mlp(dtype=None):
    torch = _torch()
    nn = torch.nn

    class TinyMLP(nn.Module):
        def __init__(self):
            super().__init__()
            mlp_layers(self, 6, 8, 5)
            self.head = nn.Linear(5, 3)
            self.register_buffer("scale", torch.linspace(0.5, 1.5, 8))

        def forward(self, x):
            x = torch.relu(self.norm(self.fc1(x))) * self.scale
            return self.head(torch.relu(self.fc2(x)))

    m = TinyMLP()
    return m.to(dtype) if dtype is not None else m


def fsdp2_model(world_size, dtype=None):
    """TinyMLP with every Linear and the root fully_shard'ed over a 1-D CPU mesh."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    seed_all(0)
    mesh = init_device_mesh("cpu", (world_size,))
    model = tiny_mlp(dtype)
    for sub in (model.fc1, model.fc2, model.head):
        fully_shard(sub, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def train_steps(model, opt, rank, steps, dtype=None):
    torch = _torch()
    g = torch.Generator().manual_seed(100 + rank)
    for _ in range(steps):
        x = torch.randn(4, 6, generator=g)
        if dtype is not None:
            x = x.to(dtype)
        loss = model(x).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def rank_fsdp2(rank, world_size, out, dtype_name_, steps):
    torch = _torch()
    from torch.distributed.checkpoint.state_dict import get_state_dict

    dtype = getattr(torch, dtype_name_) if dtype_name_ else None
    model = fsdp2_model(world_size, dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    train_steps(model, opt, rank, steps, dtype)
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optimizer": optim_sd, "train_state": {"step": steps, "epoch": 0}}
    save_relative(state, out)


def build_fsdp2(world_size, dtype=None):
    build_spawned(
        ("dcp", "fsdp2_%dranks" % world_size), world_size, "rank_fsdp2",
        "FSDP2 fully_shard over a %d-rank CPU mesh (gloo), 3 AdamW steps%s; get_state_dict(model, optim) + train_state"
        % (world_size, ", parameters in " + dtype if dtype else ""),
        train_step("train_state.step", 3), dtype, 3,
    )


def build_fsdp2_2():
    build_fsdp2(2)


def build_fsdp2_4():
    build_fsdp2(4, "bfloat16")


def rank_dtensor_2d(rank, world_size, out):
    torch = _torch()
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
    seed_all(1)
    full = collections.OrderedDict(
        grid=(torch.randn(6, 8), (Shard(0), Shard(1))),
        uneven=(torch.randn(5, 7), (Shard(0), Shard(1))),
        swapped=(torch.arange(24, dtype=torch.int64).view(4, 6), (Shard(1), Shard(0))),
        half_replicated=(torch.randn(8).to(torch.bfloat16), (Replicate(), Shard(0))),
        cube=(torch.randn(2, 3, 4).to(torch.float16), (Shard(0), Shard(2))),
        twice_dim0=(torch.randn(3, 4), (Shard(0), Shard(0))),
    )
    tensors = {k: distribute_tensor(v, mesh, list(p)) for k, (v, p) in full.items()}
    save_relative({"tensors": tensors, "train_state": {"step": 7}}, out)


def build_dtensor_2d():
    build_spawned(
        ("dcp", "dtensor_2d_4ranks"), 4, "rank_dtensor_2d",
        "DTensors on a 2x2 CPU mesh (gloo, 4 ranks) with placements (Shard(0), Shard(1)), (Shard(1), Shard(0)), "
        "(Replicate(), Shard(0)), (Shard(0), Shard(2)), (Shard(0), Shard(0)); uneven and empty local shards",
        train_step("train_state.step", 7),
    )


def rank_replicated(rank, world_size, out):
    torch = _torch()
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, distribute_tensor

    mesh = init_device_mesh("cpu", (world_size,))
    seed_all(2)
    state = {
        "weights": {
            "dtensor": distribute_tensor(torch.randn(4, 3), mesh, [Replicate()]),
            # a view whose storage is exactly its bytes is saved as it is: transposed strides
            "transposed": torch.arange(12, dtype=torch.float32).view(3, 4).t(),
            "channels_last": torch.randn(2, 3, 2, 2).contiguous(memory_format=torch.channels_last),
            "scalar": torch.tensor(3.5, dtype=torch.float64),
            "flags": torch.tensor([True, False, True]),
            "empty": torch.zeros(0, 3),
        },
        "meta": {"name": "replicated", "sizes": [1, 2, 3], "pair": (0.5, "x"), "none": None},
        "train_state": {"step": 11},
    }
    save_relative(state, out)


def build_replicated():
    build_spawned(
        ("dcp", "replicated_2ranks"), 2, "rank_replicated",
        "a state dict replicated on 2 ranks (a Replicate() DTensor and plain tensors, one of them a transposed view, "
        "one channels_last, a 0-d, a bool and an empty one, plus plain Python values); DCP's dedup gives each "
        "item to one rank",
        train_step("train_state.step", 11),
    )


def rank_torchtitan(rank, world_size, out_dir):
    """torchtitan's CheckpointManager.save, paraphrased: model FQNs flattened to the top level, flattened optimizer."""
    torch = _torch()
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    model = fsdp2_model(world_size)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
    os.chdir(out_dir)
    ntokens = 0
    for step in range(1, 21):
        train_steps(model, opt, rank, 1)
        sched.step()
        ntokens += 4 * 6
        if step % 10 == 0:
            state = {}
            state.update(get_model_state_dict(model))
            state["optimizer"] = get_optimizer_state_dict(
                model, opt, options=StateDictOptions(flatten_optimizer_state_dict=True)
            )
            state["lr_scheduler"] = sched.state_dict()
            state["train_state"] = {
                "step": torch.tensor(step, dtype=torch.int32),
                "ntokens_seen": torch.tensor(ntokens, dtype=torch.int64),
            }
            # step-20 with two writer threads: each rank writes __{rank}_0 and __{rank}_1
            writer = dcp.FileSystemWriter("step-%d" % step, thread_count=1 if step == 10 else 2)
            dcp.save(state, storage_writer=writer)


def build_torchtitan():
    torch = _torch()
    run = fresh_dir("dcp", "torchtitan")
    ck = os.path.join(run, "checkpoint")
    os.makedirs(ck)
    spawn("rank_torchtitan", 2, ck)
    for step in (10, 20):
        dcp_truth(
            os.path.join(ck, "step-%d" % step),
            "torchtitan-style CheckpointManager.save (pytorch/torchtitan components/checkpoint.py: model FQNs at the top "
            "level, optimizer flattened with flatten_optimizer_state_dict=True, lr_scheduler, train_state step/ntokens_seen "
            "tensors) from FSDP2 on 2 CPU ranks; step-20 written with FileSystemWriter(thread_count=2); "
            + TORCH_DCP_REF % torch.__version__,
            step=train_step("train_state.step", step),
        )


def rank_accelerate(rank, world_size, out_dir):
    torch = _torch()
    from accelerate import Accelerator
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import save_fsdp_model, save_fsdp_optimizer

    model = fsdp2_model(world_size)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    train_steps(model, opt, rank, 2)
    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, state_dict_type="SHARDED_STATE_DICT")
    accelerator = Accelerator(cpu=True)  # MULTI_CPU over the existing gloo group; FSDP is not offered on CPU
    assert (accelerator.process_index, accelerator.num_processes) == (rank, world_size)
    os.chdir(out_dir)
    save_fsdp_model(plugin, accelerator, model, ".")
    save_fsdp_optimizer(plugin, accelerator, opt, model, ".")


def build_accelerate():
    import accelerate

    torch = _torch()
    run = fresh_dir("dcp", "accelerate")
    ck = os.path.join(run, "checkpoints", "checkpoint_0")
    os.makedirs(ck)
    spawn("rank_accelerate", 2, ck)
    why = (
        "accelerate %s's own save_fsdp_model / save_fsdp_optimizer (accelerate/utils/fsdp_utils.py, what "
        "Accelerator.save_state calls under FSDP) with a real FullyShardedDataParallelPlugin(fsdp_version=2, "
        "SHARDED_STATE_DICT) and a real Accelerator(cpu=True), called directly on an FSDP2 model over 2 CPU ranks: "
        "Accelerator only enables FSDP on GPU distributed types, so save_state cannot take the FSDP path here; " % accelerate.__version__
    )
    for sub in ("pytorch_model_fsdp_0", "optimizer_0"):
        dcp_truth(os.path.join(ck, sub), why + TORCH_DCP_REF % torch.__version__)


def lightning_worker(out_dir):
    """Runs under Lightning's own launcher (it re-executes this command once per rank)."""
    torch = _torch()
    import lightning as L
    from lightning.pytorch.strategies import ModelParallelStrategy

    class LitMLP(L.LightningModule):
        def __init__(self):
            super().__init__()
            seed_all(0)
            self.net = tiny_mlp()

        def configure_model(self):
            from torch.distributed.fsdp import fully_shard

            mesh = self.device_mesh["data_parallel"]
            for sub in (self.net.fc1, self.net.fc2, self.net.head):
                fully_shard(sub, mesh=mesh)
            fully_shard(self.net, mesh=mesh)

        def training_step(self, batch, batch_idx):
            (x,) = batch
            return self.net(x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=0.01)

    deterministic_dcp()
    seed_all(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 6))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    os.chdir(out_dir)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
        max_steps=4,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=".",
    )
    trainer.fit(LitMLP(), loader)


def build_lightning():
    import lightning

    torch = _torch()
    run = fresh_dir("dcp", "lightning")
    env = dict(os.environ, LIGHTNING_DISABLE_TIPS="1", PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES="")
    p = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", "lightning", run],
        env=env,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-5000:])
        raise SystemExit("lightning worker failed")
    ckpt = os.path.join(run, "checkpoints", "epoch=0-step=4.ckpt")
    meta = torch.load(os.path.join(ckpt, "meta.pt"), weights_only=False)
    dcp_truth(
        ckpt,
        "real Lightning %s Trainer.fit with ModelParallelStrategy (FSDP2 fully_shard in configure_model, 2 CPU "
        "ranks); its save_checkpoint writes the DCP directory (state_dict, optimizer_0) and rank 0 adds meta.pt "
        "with torch.save. Lightning's FSDPStrategy (FSDP1) refuses accelerator='cpu'. " % lightning.__version__
        + TORCH_DCP_REF % torch.__version__,
        step=train_step("meta.pt global_step", meta["global_step"]),
        extra={"lightningMeta": collections.OrderedDict(
            file="meta.pt", keys=sorted(meta.keys()), epoch=meta["epoch"], globalStep=meta["global_step"]
        )},
    )


def save_single(d, state, **writer_options):
    """One process, no process group (no_dist), FileSystemWriter(**writer_options), relative checkpoint id."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict_saver import _save_state_dict

    cwd = os.getcwd()
    os.chdir(os.path.dirname(d))
    try:
        writer = dcp.FileSystemWriter(os.path.basename(d), **writer_options)
        _save_state_dict(state, storage_writer=writer, no_dist=True)
    finally:
        os.chdir(cwd)


def build_safetensors_format():
    """FileSystemWriter(serialization_format=SAFETENSORS): BYTE_IO items as torch.save bytes, then one
    safetensors blob per file holding every tensor chunk; _StorageInfo.offset of a tensor is where the blob
    begins and length its numel*element_size. torch's own FileSystemReader cannot read it back."""
    torch = _torch()
    from safetensors.torch import load as st_load
    from torch.distributed.checkpoint.filesystem import SerializationFormat

    d = fresh_dir("dcp", "safetensors_format")
    deterministic_dcp()
    seed_all(3)
    state = {"w": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int32), "train_state": {"step": 2}}
    save_single(d, state, serialization_format=SerializationFormat.SAFETENSORS)
    outcome = dcp_load_outcome(d)
    doc = dcp_truth(
        d,
        "FileSystemWriter(serialization_format=SerializationFormat.SAFETENSORS), no_dist; "
        + TORCH_DCP_REF % torch.__version__
        + ". torch's FileSystemReader cannot load it (it torch.loads the tensor slices); the values here are the "
        "safetensors blob read with safetensors.torch.load (as the HF DCP reader does), each tensor placed at its "
        "DCP_SHARDING_INFO saved_offsets",
        step=train_step("train_state.step", 2),
        consolidate=False,
    )
    by_file = {}
    for t in doc["tensors"]:
        for c in t["chunks"]:
            by_file.setdefault(c["file"], c["offset"])
    values = {}
    for f, off in by_file.items():
        with open(os.path.join(d, f), "rb") as fh:
            fh.seek(off)
            values.update(st_load(fh.read()))
    for t in doc["tensors"]:
        t["sha256"] = tensor_sha256(values[t["name"]])
    doc["consolidatedBy"] = "safetensors.torch.load of each file's blob (torch's FileSystemReader fails)"
    doc["torchLoad"] = collections.OrderedDict(call="dcp_to_torch_save(dir, out)", outcome=outcome)
    write_truth(d, doc)


def build_transform_descriptors():
    """A stream extension registered with DCP's writer: _StorageInfo then carries transform_descriptors."""
    torch = _torch()
    from torch.distributed.checkpoint._extension import StreamTransformExtension

    class Passthrough(StreamTransformExtension):
        """Writes the bytes unchanged; DCP records its descriptor per item all the same."""

        @staticmethod
        def registry_name():
            return "ckpt.sample-passthrough"

        @staticmethod
        def from_descriptor(version):
            return Passthrough()

        def get_descriptor(self):
            return self.registry_name() + "/1"

        def transform_to(self, output):
            return output

        def transform_from(self, input):
            return input

    d = fresh_dir("dcp", "transform_descriptors")
    deterministic_dcp()
    seed_all(4)
    state = {"w": torch.randn(2, 3), "train_state": {"step": 5}}
    save_single(d, state, _extensions=[Passthrough()])
    outcome = dcp_load_outcome(d)
    doc = dcp_truth(
        d,
        "FileSystemWriter(_extensions=[a pass-through StreamTransformExtension named ckpt.sample-passthrough]), "
        "no_dist; " + TORCH_DCP_REF % torch.__version__ + ". Values: the items' bytes as written (the extension "
        "changes nothing); torch without that extension registered refuses to read them",
        step=train_step("train_state.step", 5),
        consolidate=False,
    )
    for t in doc["tensors"]:
        c = t["chunks"][0]
        with open(os.path.join(d, c["file"]), "rb") as fh:
            fh.seek(c["offset"])
            t["sha256"] = tensor_sha256(torch.load(io.BytesIO(fh.read(c["length"])), weights_only=True))
    doc["consolidatedBy"] = "torch.load of each item's bytes (the extension is the identity)"
    doc["torchLoad"] = collections.OrderedDict(call="dcp_to_torch_save(dir, out)", outcome=outcome)
    write_truth(d, doc)


def patch_dataclasses_for_torch1():
    """torch 1.13's sharded_tensor/metadata.py uses a dataclass instance as a field default, which Python 3.11's
    dataclasses refuse ("mutable default ... is not allowed") while importing torch.distributed._shard.
    Let that one import through; the checkpoint code that then runs is torch 1.13's own."""
    orig = dataclasses._get_field

    def patched(cls, a_name, a_type, *args):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = default.default
        klass = type(default) if default is not dataclasses.MISSING else None
        if klass is not None and dataclasses.is_dataclass(klass) and klass.__hash__ is None:
            klass.__hash__ = object.__hash__
            try:
                return orig(cls, a_name, a_type, *args)
            finally:
                klass.__hash__ = None
        return orig(cls, a_name, a_type, *args)

    dataclasses._get_field = patched


def build_torch1():
    """Under torch 1.13: torch.distributed._shard.checkpoint.save_state_dict(no_dist=True). That version writes
    one file per item (__0_<n>.distcp) and a .metadata naming classes in torch.distributed._shard.*."""
    patch_dataclasses_for_torch1()
    torch = _torch()
    import torch.distributed._shard.checkpoint as dcp13

    d = fresh_dir("dcp", "torch1_13")
    seed_all(5)
    state = collections.OrderedDict(
        w=torch.randn(3, 4),
        b=torch.arange(4, dtype=torch.int64),
        half=torch.randn(2, 2).half(),
        step=9,
        lr=0.25,
    )
    cwd = os.getcwd()
    os.chdir(os.path.dirname(d))
    try:
        dcp13.save_state_dict(state, dcp13.FileSystemWriter(os.path.basename(d)), no_dist=True)
    finally:
        os.chdir(cwd)
    md = dcp13.FileSystemReader(d).read_metadata()
    # torch 1.13 has no _EmptyStateDictLoadPlanner: load into a state dict of the declared shapes
    target = {}
    for fqn, m in md.state_dict_metadata.items():
        if isinstance(m, dcp13.TensorStorageMetadata):
            target[fqn] = torch.empty(tuple(m.size), dtype=m.properties.dtype)
        else:
            target[fqn] = None
    dcp13.load_state_dict(target, dcp13.FileSystemReader(d), no_dist=True)
    doc = truth_head(d, "dcp", "real torch %s torch.distributed._shard.checkpoint.save_state_dict(no_dist=True)" % torch.__version__)
    doc["files"] = file_list(d)
    tensors, items = [], []
    for fqn, m in md.state_dict_metadata.items():
        if isinstance(m, dcp13.TensorStorageMetadata):
            chunks = []
            for c in m.chunks:
                info = md.storage_data[dcp13.metadata.MetadataIndex(fqn, c.offsets)]
                chunk = collections.OrderedDict(offsets=list(c.offsets), sizes=list(c.sizes))
                chunk.update(storage_json(info))
                chunks.append(chunk)
            tensors.append(collections.OrderedDict(
                name=fqn, shape=list(m.size), dtype=dtype_name(m.properties.dtype),
                requiresGrad=bool(m.properties.requires_grad), chunks=chunks, sha256=tensor_sha256(target[fqn]),
            ))
        else:
            info = md.storage_data[dcp13.metadata.MetadataIndex(fqn)]
            item = collections.OrderedDict(name=fqn)
            item.update(storage_json(info))
            item["loaded"] = summarize(target[fqn])
            items.append(item)
    doc["consolidatedBy"] = "torch 1.13 load_state_dict(no_dist=True) into tensors of the declared shapes"
    doc["metadata"] = collections.OrderedDict(
        version=None, storageMeta=None, plannerData=None if md.planner_data is None else {k: list(v) for k, v in md.planner_data.items()},
        classes=[type(md).__module__ + "." + type(md).__name__],
    )
    doc["tensors"] = tensors
    doc["bytes"] = items
    doc["step"] = collections.OrderedDict(name="step", value=9)
    write_truth(d, doc)
    print("torch1_13 written")


def build_torch1_crosscheck():
    """torch 2.x reading the torch 1.13 directory (the BC alias module maps torch.distributed._shard.checkpoint)."""
    d = os.path.join(OUT, "dcp", "torch1_13")
    truth_path = d + ".truth.json"
    if not os.path.exists(truth_path):
        print("torch1_13 not generated yet: run make_sharded.py --torch1 under torch 1.13 first")
        return
    torch = _torch()
    with open(truth_path) as f:
        doc = json.load(f, object_pairs_hook=collections.OrderedDict)
    try:
        sd = consolidate_dcp(d)
        agree = all(tensor_sha256(sd[t["name"]]) == t["sha256"] for t in doc["tensors"])
        outcome = collections.OrderedDict(ok=True, sameSha256=agree)
    except BaseException as e:  # noqa: BLE001
        outcome = err_str(e)
    doc["torch2Load"] = collections.OrderedDict(torch=torch.__version__, call="dcp_to_torch_save(dir, out)", outcome=outcome)
    write_truth(d, doc)


# ----------------------------------------------------------------------------------------------
# DeepSpeed ZeRO-1/2/3 (DeepSpeed does not install here: layouts built as its source writes them)
# ----------------------------------------------------------------------------------------------

DS_VERSION = "0.18.3"
DS_SOURCE = (
    "deepspeedai/DeepSpeed: runtime/engine.py (save_checkpoint, _save_checkpoint, _save_zero_checkpoint, "
    "_get_zero_param_shapes, _get_buffer_names, _get_shared_params, _get_zero_frozen_param_attributes, "
    "_get_ckpt_name, _get_zero_ckpt_name, _copy_recovery_script), runtime/zero/stage_1_and_2.py "
    "(flatten_dense_tensors_aligned to 2*world_size, get_data_parallel_partitions, groups_padding, "
    "state_dict with padding stripped), runtime/zero/stage3.py (_rigid_state_dict, fp32_flat_groups), "
    "runtime/zero/partition_parameters.py (ceil(numel/world_size) per rank), utils/tensor_fragment.py "
    "(get_hp_fragment_mapping), runtime/checkpoint_engine/torch_checkpoint_engine.py (clone_tensors_for_torch_save "
    "then torch.save), checkpoint/constants.py; ds_version written: " + DS_VERSION
)
Z2F_REF = (
    "deepspeedai/DeepSpeed utils/zero_to_fp32.py get_fp32_state_dict_from_zero_checkpoint, transcribed and run "
    "with torch on the files as written (parse_model_states, parse_optim_states, _zero2_merge_frozen_params, "
    "_zero2_merge_trainable_params, _zero3_merge_trainable_params, shared params, to_torch_tensor)"
)


def ds_classes():
    """make_runs.ds_classes (LossScaler, ZeroStageEnum), plus DynamicLossScaler and the dataclass that
    deepspeed/utils/tensor_fragment.py defines fragment_address as."""
    import make_runs

    LossScaler, ZeroStageEnum, _namedtuple_fragment = make_runs.ds_classes()

    class DynamicLossScaler:
        """deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler, as CreateLossScaler builds it for fp16."""

        def __init__(self, init_scale=2**16, scale_factor=2.0, scale_window=1000, min_scale=1, delayed_shift=1,
                     consecutive_hysteresis=False, raise_error_at_min_scale=True, dtype=None):
            self.cur_scale = init_scale
            self.cur_iter = 0
            self.last_overflow_iter = -1
            self.scale_factor = scale_factor
            self.scale_window = scale_window
            self.min_scale = min_scale
            self.delayed_shift = delayed_shift
            self.cur_hysteresis = delayed_shift
            self.consecutive_hysteresis = consecutive_hysteresis
            self.raise_error_at_min_scale = raise_error_at_min_scale
            self.dynamic = True
            self.dtype = dtype

    @dataclasses.dataclass
    class fragment_address:
        numel: int
        start: int

    fake_module("deepspeed.runtime.fp16.loss_scaler", [DynamicLossScaler])
    fake_module("deepspeed.utils.tensor_fragment", [fragment_address])
    return types.SimpleNamespace(
        LossScaler=LossScaler, DynamicLossScaler=DynamicLossScaler, ZeroStageEnum=ZeroStageEnum,
        fragment_address=fragment_address,
    )


def forget_ds_modules():
    """Drop the recreated deepspeed.* modules again: other libraries probe for DeepSpeed with find_spec."""
    for name in [n for n in sys.modules if n == "deepspeed" or n.startswith("deepspeed.")]:
        del sys.modules[name]


def ds_net(tied):
    torch = _torch()
    nn = torch.nn

    class DsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(7, 4)
            mlp_layers(self, 4, 5, 3)
            self.register_buffer("running", torch.linspace(-1.0, 1.0, 5))
            self.register_buffer("count", torch.tensor(0, dtype=torch.int64))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            if tied:
                self.decoder = nn.Linear(4, 7, bias=False)
                self.decoder.weight = self.emb.weight

        def forward(self, idx):
            h = torch.relu(self.norm(self.fc1(self.emb(idx)))) + self.running
            out = self.fc2(h)
            if hasattr(self, "decoder"):
                out = out.sum() + self.decoder(self.emb(idx)).sum()
            return out.float().pow(2).mean()

    return DsNet()


def clone_tensors_for_torch_save(item):
    """deepspeed/checkpoint/utils.py: every tensor detached, cloned (its own minimal storage), on the CPU."""
    torch = _torch()
    if torch.is_tensor(item):
        return item.detach().clone().cpu()
    if isinstance(item, (list, tuple)):
        return type(item)([clone_tensors_for_torch_save(v) for v in item])
    if isinstance(item, dict):
        return type(item)([(k, clone_tensors_for_torch_save(v)) for k, v in item.items()])
    return item


def ds_buffer_names(model):
    """engine._get_buffer_names: persistent buffers, module by module."""
    names = []

    def walk(module, prefix):
        for name, buf in module.named_buffers(recurse=False):
            if buf is not None and name not in module._non_persistent_buffers_set:
                names.append(prefix + name)
        for name, child in module.named_children():
            walk(child, prefix + name + ".")

    walk(model, "")
    return names


def ds_shared_params(model):
    """engine._get_shared_params (non-ZeRO-3): params met twice by data_ptr, later name -> first name."""
    seen, shared = {}, {}

    def walk(module, prefix):
        for name, param in module.named_parameters(recurse=False):
            key = prefix + name
            pid = param.data_ptr()
            if pid in seen:
                shared[key] = seen[pid]
            else:
                seen[pid] = key
        for name, child in module.named_children():
            walk(child, prefix + name + ".")

    walk(model, "")
    return shared


def ds_config(stage, precision):
    cfg = collections.OrderedDict(
        train_batch_size=8,
        train_micro_batch_size_per_gpu=4,
        gradient_accumulation_steps=1,
        optimizer={"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.01}},
        zero_optimization={"stage": stage},
        gradient_clipping=1.0,
        steps_per_print=10,
    )
    if precision == "bf16":
        cfg["bf16"] = {"enabled": True}
    elif precision == "fp16":
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    return cfg


def ds_param_groups(model):
    """Two optimizer groups as trainers usually pass them: weights (decayed), then biases and norms."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [(n, p) for n, p in trainable if p.dim() >= 2]
    rest = [(n, p) for n, p in trainable if p.dim() < 2]
    return [decay, rest]


def ds_batch(step, rank):
    torch = _torch()
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randint(0, 7, (4,), generator=g)


def ds_full_grads(model, world_size, step):
    """The data-parallel mean of every rank's gradient (what the reduce gives each partition owner)."""
    torch = _torch()
    grads = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in model.named_parameters()}
    for rank in range(world_size):
        model.zero_grad()
        model(ds_batch(step, rank)).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                grads[n] += p.grad.float() / world_size
    model.zero_grad()
    return grads


def ds_train(model, groups, world_size, tags, rank_slice, gather, on_tag):
    """Both ZeRO layouts train alike: every rank's AdamW (one flat fp32 param per group) steps its partition
    with the same slice of the data-parallel mean gradient, then the model's (low-precision) weights are
    gathered back from the partitions. `on_tag` saves at the steps in `tags`."""
    torch = _torch()
    masters, optims = [], []
    for r in range(world_size):
        parts = [rank_slice(gi, [p.detach().float() for _, p in g], r).clone().requires_grad_(True) for gi, g in enumerate(groups)]
        masters.append(parts)
        optims.append(torch.optim.AdamW(
            [{"params": [parts[0]], "weight_decay": 0.01}, {"params": [parts[1]], "weight_decay": 0.0}], lr=0.01
        ))
    for step in range(1, max(tags) + 1):
        grads = ds_full_grads(model, world_size, step)
        for gi, g in enumerate(groups):
            for r in range(world_size):
                masters[r][gi].grad = rank_slice(gi, [grads[n] for n, _ in g], r).clone()
        for r in range(world_size):
            optims[r].step()
        with torch.no_grad():
            for gi, g in enumerate(groups):
                for (_, p), value in zip(g, gather(gi, [masters[r][gi].detach() for r in range(world_size)])):
                    p.copy_(value.view_as(p).to(p.dtype))
        if step in tags:
            on_tag(step, masters, optims)


def build_zero12(name, stage, precision, world_size=2, tags=(4,), tied=False, frozen=()):
    torch = _torch()
    C = ds_classes()
    run = fresh_dir("deepspeed", name)
    seed_all(10 + stage)
    model = ds_net(tied)
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    lowp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if lowp is not None:
        model.to(lowp)
    names = {p: n for n, p in model.named_parameters()}
    groups = ds_param_groups(model)
    align = 2 * world_size  # nccl_start_alignment_factor * dp world size
    # flatten_dense_tensors_aligned + get_data_parallel_partitions, per group
    layout = []
    for g in groups:
        numel = sum(p.numel() for _, p in g)
        aligned = align * math.ceil(numel / align)
        part = aligned // world_size
        pads = []
        for r in range(world_size):
            left = r * part
            pads.append(part if numel <= left else (left + part - numel if numel < left + part else 0))
        layout.append(dict(numel=numel, aligned=aligned, part=part, pads=pads))
    def rank_slice(gi, values, r):  # flatten_dense_tensors_aligned, then this rank's partition
        flat = torch.cat([v.reshape(-1) for v in values])
        flat = torch.cat([flat, torch.zeros(layout[gi]["aligned"] - flat.numel())])
        return flat[r * layout[gi]["part"] : (r + 1) * layout[gi]["part"]]

    def gather(gi, parts):
        flat = torch.cat(parts)
        return list(torch.split(flat[: layout[gi]["numel"]], [p.numel() for _, p in groups[gi]]))

    def on_tag(step, masters, optims):
        write_zero12_tag(run, "global_step%d" % step, model, groups, layout, masters, optims, names, C, stage,
                         precision, world_size, step, tied)

    ds_train(model, groups, world_size, tags, rank_slice, gather, on_tag)
    write_recovery_script(run)
    return run


def ds_model_state(module, model, groups, stage, precision, world_size, global_steps, frozen_shapes, frozen_fragments, shared):
    """engine._save_checkpoint's dict, in its order."""
    state = collections.OrderedDict()
    state["module"] = module
    state["buffer_names"] = ds_buffer_names(model)
    state["optimizer"] = None  # ZeRO: the optimizer state is in the *_optim_states.pt files
    state["param_shapes"] = [collections.OrderedDict((n, p.shape) for n, p in g) for g in groups]
    state["frozen_param_shapes"] = frozen_shapes
    state["shared_params"] = shared
    state["frozen_param_fragments"] = frozen_fragments
    state["lr_scheduler"] = None
    state["data_sampler"] = None
    state["random_ltd"] = None
    state["sparse_tensor_module_names"] = set()
    state["skipped_steps"] = 0
    state["global_steps"] = global_steps
    state["global_samples"] = global_steps * 8
    state["dp_world_size"] = world_size
    state["mp_world_size"] = 1
    state["ds_config"] = ds_config(stage, precision)
    state["ds_version"] = DS_VERSION
    return state


def write_zero12_tag(run, tag, model, groups, layout, masters, optims, names, C, stage, precision, world_size,
                     global_steps, tied):
    torch = _torch()
    td = os.path.join(run, tag)
    os.makedirs(td)
    cfg = ds_config(stage, precision)
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    partition_gradients = stage >= 2
    state = ds_model_state(
        model.state_dict(), model, groups, stage, precision, world_size, global_steps,
        collections.OrderedDict((n, p.shape) for n, p in frozen) if partition_gradients else None,
        collections.OrderedDict((n, p.detach().cpu()) for n, p in frozen) if partition_gradients else None,
        ds_shared_params(model),
    )
    state["step"] = global_steps  # client_state={"step": ...} merged at the top level
    torch.save(clone_tensors_for_torch_save(dict(state)), os.path.join(td, "mp_rank_00_model_states.pt"))
    prefix = "bf16_" if precision == "bf16" else ""
    for r in range(world_size):
        slice_mappings = []
        for gi, g in enumerate(groups):
            part = layout[gi]["part"]
            hp_start, hp_end = r * part, (r + 1) * part
            mapping = collections.OrderedDict()
            lp_start = 0
            for n, p in g:
                lp_end = lp_start + p.numel()
                start, end = max(lp_start, hp_start), min(lp_end, hp_end)
                if start < end:
                    mapping[n] = C.fragment_address(numel=end - start, start=start - hp_start)
                lp_start = lp_end
            slice_mappings.append(mapping)
        osd = collections.OrderedDict()
        osd["loss_scaler"] = C.DynamicLossScaler() if precision == "fp16" else C.LossScaler(1.0)
        osd["dynamic_loss_scale"] = precision == "fp16"
        osd["overflow"] = False
        osd["clip_grad"] = 1.0
        osd["base_optimizer_state"] = optims[r].state_dict()
        osd["single_partition_of_fp32_groups"] = [
            masters[r][gi].detach()[: layout[gi]["part"] - layout[gi]["pads"][r]] for gi in range(len(groups))
        ]
        osd["zero_stage"] = C.ZeroStageEnum.gradients if partition_gradients else C.ZeroStageEnum.optimizer_states
        osd["group_paddings"] = [layout[gi]["pads"][r] for gi in range(len(groups))]
        osd["partition_count"] = [world_size for _ in groups]
        osd["ds_version"] = DS_VERSION
        osd["param_slice_mappings"] = slice_mappings
        zero_sd = dict(optimizer_state_dict=dict(osd), ds_config=cfg, ds_version=DS_VERSION)
        torch.save(clone_tensors_for_torch_save(zero_sd),
                   os.path.join(td, "%szero_pp_rank_%d_mp_rank_00_optim_states.pt" % (prefix, r)))
    with open(os.path.join(run, "latest"), "w") as f:
        f.write(tag)  # rank 0, after checkpoint_engine.commit: the tag only, no newline


def write_recovery_script(run):
    """engine._copy_recovery_script copies DeepSpeed's utils/zero_to_fp32.py next to 'latest' (rank 0). The
    sample carries a stand-in with the same name (DeepSpeed's own script is not redistributed here)."""
    path = os.path.join(run, "zero_to_fp32.py")
    with open(path, "w") as f:
        f.write(
            "#!/usr/bin/env python\n"
            "# Stand-in for DeepSpeed's deepspeed/utils/zero_to_fp32.py, which DeepSpeed's engine copies here when it\n"
            "# saves a ZeRO checkpoint. Built by ckpt's samples/make_sharded.py; the real script is not redistributed.\n"
            "raise SystemExit('install deepspeed and run: python -m deepspeed.utils.zero_to_fp32 . OUTPUT_DIR')\n"
        )
    os.chmod(path, 0o755)


def build_zero3(name, precision="fp16", world_size=2, tags=(3,)):
    torch = _torch()
    C = ds_classes()
    run = fresh_dir("deepspeed", name)
    seed_all(13)
    model = ds_net(False)
    lowp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if lowp is not None:
        model.to(lowp)
    groups = ds_param_groups(model)

    def pinfo(numel):  # zero3_partitioned_param_info / partition_parameters._aligned_size
        return math.ceil(numel / world_size), (world_size - numel % world_size) % world_size

    def rank_slice(gi, values, r):  # every parameter's ceil(numel / world_size) elements, zero-padded
        pieces = []
        for v in values:
            pn, _pad = pinfo(v.numel())
            padded = torch.cat([v.reshape(-1), torch.zeros(pn * world_size - v.numel())])
            pieces.append(padded[r * pn : (r + 1) * pn])
        return torch.cat(pieces)

    def gather(gi, parts):
        out, off = [], 0
        for _, p in groups[gi]:
            pn, _pad = pinfo(p.numel())
            out.append(torch.cat([part[off : off + pn] for part in parts])[: p.numel()])
            off += pn
        return out

    def on_tag(step, masters, optims):
        write_zero3_tag(run, "global_step%d" % step, model, groups, masters, optims, C, precision, world_size, step, pinfo)

    ds_train(model, groups, world_size, tags, rank_slice, gather, on_tag)
    write_recovery_script(run)
    return run


def write_zero3_tag(run, tag, model, groups, masters, optims, C, precision, world_size, global_steps, pinfo):
    torch = _torch()
    td = os.path.join(run, tag)
    os.makedirs(td)
    cfg = ds_config(3, precision)
    params = dict(model.named_parameters())
    for r in range(world_size):
        # under ZeRO-3 each parameter's data is an empty placeholder; buffers stay whole on every rank
        module = collections.OrderedDict()
        for k, v in model.state_dict().items():
            module[k] = torch.empty(0, dtype=v.dtype) if k in params else v
        state = ds_model_state(module, model, groups, 3, precision, world_size, global_steps,
                               collections.OrderedDict(), collections.OrderedDict(), {})
        torch.save(clone_tensors_for_torch_save(dict(state)),
                   os.path.join(td, "zero_pp_rank_%d_mp_rank_00_model_states.pt" % r))
        base = optims[r].state_dict()
        osd = collections.OrderedDict()
        osd["zero_stage"] = C.ZeroStageEnum.weights
        osd["loss_scaler"] = C.DynamicLossScaler() if precision == "fp16" else C.LossScaler(1.0)
        osd["dynamic_loss_scale"] = precision == "fp16"
        osd["overflow"] = False
        osd["partition_count"] = world_size
        osd["optimizer_state_dict"] = base
        osd["fp32_flat_groups"] = [m.detach() for m in masters[r]]
        zero_sd = dict(optimizer_state_dict=dict(osd), ds_config=cfg, ds_version=DS_VERSION)
        prefix = "bf16_" if precision == "bf16" else ""
        torch.save(clone_tensors_for_torch_save(zero_sd),
                   os.path.join(td, "%szero_pp_rank_%d_mp_rank_00_optim_states.pt" % (prefix, r)))
    with open(os.path.join(run, "latest"), "w") as f:
        f.write(tag)


def natural_keys(text):
    return [int(c) if c.isdigit() else c for c in re.split(r"(\d+)", text)]


def zero_to_fp32(checkpoint_dir, tag=None):
    """Transcription of zero_to_fp32.get_fp32_state_dict_from_zero_checkpoint, returning the state dict and,
    per parameter, where its elements came from (group, rank, offset, numel)."""
    import glob

    torch = _torch()
    if tag is None:
        latest = os.path.join(checkpoint_dir, "latest")
        if not os.path.isfile(latest):
            raise ValueError(f"Unable to find 'latest' file at {latest}")
        with open(latest) as f:
            tag = f.read().strip()
    ds_dir = os.path.join(checkpoint_dir, tag)
    if not os.path.isdir(ds_dir):
        raise FileNotFoundError(f"Directory '{ds_dir}' doesn't exist")

    def files(pattern):
        found = sorted(glob.glob(os.path.join(ds_dir, pattern)), key=natural_keys)
        if not found:
            raise FileNotFoundError(f"can't find {pattern} files in directory '{ds_dir}'")
        return found

    model_states = []
    for f in files("*_model_states.pt"):
        sd = torch.load(f, map_location="cpu", weights_only=False)
        if "buffer_names" not in sd:
            raise ValueError(f"{f} is not a model state checkpoint")
        model_states.append(dict(
            buffers={k: v.float() for k, v in sd["module"].items() if k in sd["buffer_names"]},
            param_shapes=sd["param_shapes"],
            shared_params=[[k, v] for k, v in sd["shared_params"].items()],
            frozen_param_shapes=sd.get("frozen_param_shapes"),
            frozen_param_fragments=sd.get("frozen_param_fragments"),
            ds_version=sd.get("ds_version"),
        ))
    optim_files = files("*_optim_states.pt")
    optim = []
    for f in optim_files:
        sd = torch.load(f, map_location="cpu", weights_only=False)
        sd["optimizer_state_dict"].pop("optimizer_state_dict", None)
        optim.append(sd)
    if "zero_stage" not in optim[0]["optimizer_state_dict"]:
        raise ValueError(f"{optim_files[0]} is not a zero checkpoint")
    zero_stage = optim[0]["optimizer_state_dict"]["zero_stage"]
    world_size = optim[0]["optimizer_state_dict"]["partition_count"]
    if type(world_size) is list:
        world_size = max(world_size)
    if world_size != len(optim_files):
        raise ValueError(
            f"Expected {world_size} of '*_optim_states.pt' under '{ds_dir}' but found {len(optim_files)} files. "
            "Possibly due to an overwrite of an old checkpoint, or a checkpoint didn't get saved by one or more processes."
        )
    key = "single_partition_of_fp32_groups" if zero_stage <= 2 else "fp32_flat_groups"
    flat_groups = [optim[i]["optimizer_state_dict"][key] for i in range(len(optim))]
    first = model_states[0]
    state_dict, where = collections.OrderedDict(), collections.OrderedDict()
    for k, v in first["buffers"].items():
        state_dict[k] = v
        where[k] = collections.OrderedDict(source="buffer")
    if zero_stage <= 2:
        if first["frozen_param_shapes"]:
            for name in first["frozen_param_shapes"]:
                state_dict[name] = first["frozen_param_fragments"][name]
                where[name] = collections.OrderedDict(source="frozen")
        for gi, shapes in enumerate(first["param_shapes"]):
            parts = [flat_groups[r][gi] for r in range(world_size)]
            full = torch.cat(parts, 0)
            bounds = [0]
            for p in parts:
                bounds.append(bounds[-1] + p.numel())
            offset = 0
            for name, shape in shapes.items():
                numel = math.prod(shape)
                state_dict[name] = full.narrow(0, offset, numel).view(shape)
                segments = []
                for r in range(world_size):
                    lo, hi = max(offset, bounds[r]), min(offset + numel, bounds[r + 1])
                    if lo < hi:
                        segments.append(collections.OrderedDict(rank=r, group=gi, offset=lo - bounds[r], numel=hi - lo))
                where[name] = collections.OrderedDict(source="param", group=gi, offset=offset, numel=numel, segments=segments)
                offset += numel
            align = 2 * world_size
            if align * math.ceil(offset / align) != align * math.ceil(full.numel() / align):
                raise ValueError(f"consumed {offset} numels out of {full.numel()} - something is wrong")
    else:
        if first["frozen_param_shapes"]:
            raise NotImplementedError("frozen ZeRO-3 parameters are not in these samples")
        group_numels = [t.numel() for t in flat_groups[0]]
        group_starts = [0]
        for n in group_numels:
            group_starts.append(group_starts[-1] + n)
        shapes = collections.OrderedDict((k, v) for d in first["param_shapes"] for k, v in d.items())
        offset = 0
        for name, shape in shapes.items():
            numel = math.prod(shape)
            pn = math.ceil(numel / world_size)
            gi = max(i for i in range(len(group_numels)) if group_starts[i] <= offset)
            pieces, segments = [], []
            for r in range(world_size):
                t = flat_groups[r][gi]
                pieces.append(t[offset - group_starts[gi] : offset - group_starts[gi] + pn])
            full = torch.cat(pieces)[:numel]
            remaining = numel
            for r in range(world_size):
                take = min(pn, remaining)
                if take > 0:
                    segments.append(collections.OrderedDict(rank=r, group=gi, offset=offset - group_starts[gi], numel=take))
                remaining -= take
            state_dict[name] = full.view(shape).contiguous()
            where[name] = collections.OrderedDict(
                source="param", group=gi, offset=offset - group_starts[gi], partitionedNumel=pn,
                padding=pn * world_size - numel, numel=numel, segments=segments,
            )
            offset += pn
        if offset * world_size != sum(group_numels) * world_size:
            raise ValueError(f"consumed {offset * world_size} numels out of {sum(group_numels) * world_size} - something is wrong")
    for alias, target in first["shared_params"]:
        if target in state_dict:
            state_dict[alias] = state_dict[target]
            where[alias] = collections.OrderedDict(source="shared", target=target)
    # to_torch_tensor: shared entries stay one tensor, everything else .contiguous()
    return collections.OrderedDict((k, v.contiguous()) for k, v in state_dict.items()), where, dict(
        tag=tag, stage=int(zero_stage), world_size=world_size, model_files=None, flat_groups=flat_groups
    )


def ds_truth(run, producer, extra=None):
    torch = _torch()
    ds_classes()  # zero_to_fp32 needs DeepSpeed's classes importable to unpickle the files
    doc = truth_head(run, "deepspeed", producer)
    doc["files"] = file_list(run)
    latest_path = os.path.join(run, "latest")
    latest = open(latest_path).read() if os.path.exists(latest_path) else None
    tags = sorted((e for e in os.listdir(run) if os.path.isdir(os.path.join(run, e))), key=natural_keys)
    try:
        sd, where, info = zero_to_fp32(run)
        outcome = None
    except Exception as e:  # noqa: BLE001 - what zero_to_fp32 raises is the truth
        sd, where, info, outcome = None, None, None, err_str(e)
    tag = latest if latest is not None else (tags[-1] if tags else None)
    ds = collections.OrderedDict(latest=latest, tags=tags, tag=tag)
    td = os.path.join(run, tag) if tag else None
    model_file = None
    if td and os.path.isdir(td):
        names = sorted(os.listdir(td), key=natural_keys)
        ds["modelFiles"] = [n for n in names if n.endswith("_model_states.pt")]
        ds["optimFiles"] = [n for n in names if n.endswith("_optim_states.pt")]
        model_file = os.path.join(td, ds["modelFiles"][0]) if ds["modelFiles"] else None
    ds["recoveryScript"] = os.path.exists(os.path.join(run, "zero_to_fp32.py"))
    if info is not None:
        ds["stage"] = info["stage"]
        ds["worldSize"] = info["world_size"]
        groups = []
        for gi in range(len(info["flat_groups"][0])):
            groups.append(collections.OrderedDict(
                index=gi, partitions=[collections.OrderedDict(rank=r, numel=info["flat_groups"][r][gi].numel(),
                                                              dtype=dtype_name(info["flat_groups"][r][gi].dtype))
                                      for r in range(info["world_size"])]
            ))
        ds["groups"] = groups
    if model_file:
        ms = torch.load(model_file, map_location="cpu", weights_only=False)
        ds["dsVersion"] = ms.get("ds_version")
        ds["globalSteps"] = ms.get("global_steps")
        ds["dpWorldSize"] = ms.get("dp_world_size")
        doc["step"] = collections.OrderedDict(name="global_steps", value=ms.get("global_steps"))
    else:
        doc["step"] = None
    doc["deepspeed"] = ds
    doc["consolidatedBy"] = Z2F_REF if outcome is None else None
    tensors = []
    if sd is not None:
        for name, t in sd.items():
            entry = collections.OrderedDict(name=name, shape=list(t.shape), dtype=dtype_name(t.dtype), sha256=tensor_sha256(t))
            entry.update(where[name])
            tensors.append(entry)
    doc["tensors"] = tensors
    if outcome is not None:
        doc["zeroToFp32"] = collections.OrderedDict(call="get_fp32_state_dict_from_zero_checkpoint(dir)", outcome=outcome)
    if extra:
        doc.update(extra)
    write_truth(run, doc)
    return doc


def build_zero1():
    run = build_zero12("zero1", 1, "fp32", tags=(2, 4), tied=True)
    ds_truth(run, "DeepSpeed ZeRO-1 (fp32, 2 ranks, two optimizer groups, a tied weight), tags global_step2 and "
             "global_step4, built from " + DS_SOURCE)
    forget_ds_modules()


def build_zero2():
    run = build_zero12("zero2_bf16", 2, "bf16", tags=(3,), frozen=("emb.weight",))
    ds_truth(run, "DeepSpeed ZeRO-2 (bf16 with fp32 master weights, 2 ranks, a frozen embedding), built from " + DS_SOURCE)
    forget_ds_modules()


def build_zero3_sample():
    run = build_zero3("zero3_fp16")
    ds_truth(run, "DeepSpeed ZeRO-3 (fp16 with a dynamic loss scaler and fp32 master partitions, 2 ranks), built from "
             + DS_SOURCE)
    forget_ds_modules()


def build_zero0():
    """DeepSpeed without ZeRO (zero_optimization.stage 0, fp32, 2 data-parallel ranks): engine._save_checkpoint
    writes mp_rank_00_model_states.pt only, with the whole optimizer's state_dict under `optimizer` and no
    param_shapes (`zero_optimizer_state` is false), and no *_optim_states.pt (save_zero_checkpoint is false), so
    no zero_to_fp32.py either. DeepSpeed's load_checkpoint restores `module` and `optimizer` from that one file;
    zero_to_fp32 refuses the directory. The truth is the file's `module`, as torch.load returns it."""
    torch = _torch()
    run = fresh_dir("deepspeed", "zero0_fp32")
    seed_all(20)
    model = ds_net(False)
    optim = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    world_size = 2
    for step in range(1, 4):
        grads = ds_full_grads(model, world_size, step)
        for n, p in model.named_parameters():
            p.grad = grads[n]
        optim.step()
        if step in (2, 3):
            td = os.path.join(run, "global_step%d" % step)
            os.makedirs(td)
            state = ds_model_state(model.state_dict(), model, [], 0, "fp32", world_size, step, None, None, None)
            state["optimizer"] = optim.state_dict()
            state["param_shapes"] = None
            state["iteration"] = step  # client_state
            torch.save(clone_tensors_for_torch_save(dict(state)), os.path.join(td, "mp_rank_00_model_states.pt"))
            with open(os.path.join(run, "latest"), "w") as f:
                f.write("global_step%d" % step)
    doc = ds_truth(run, "DeepSpeed without ZeRO (stage 0, fp32, 2 ranks): the optimizer inside the model states, "
                   "tags global_step2 and global_step3, built from " + DS_SOURCE)
    assert doc.get("zeroToFp32"), "zero_to_fp32 should refuse a checkpoint without ZeRO"
    ms = torch.load(os.path.join(run, "global_step3", "mp_rank_00_model_states.pt"), map_location="cpu",
                    weights_only=False)
    doc["deepspeed"].update(stage=0, worldSize=world_size, groups=[], zeroToFp32=doc.pop("zeroToFp32"))
    doc["consolidatedBy"] = "torch.load(mp_rank_00_model_states.pt)['module'] (DeepSpeed's load_module_state_dict)"
    doc["tensors"] = [
        collections.OrderedDict(name=name, shape=list(t.shape), dtype=dtype_name(t.dtype), sha256=tensor_sha256(t),
                                source="module")
        for name, t in ms["module"].items()
    ]
    write_truth(run, doc)
    forget_ds_modules()


# ----------------------------------------------------------------------------------------------
# Hugging Face sharded saves (real transformers / accelerate)
# ----------------------------------------------------------------------------------------------


def hf_model(dtype):
    torch = _torch()
    from transformers import LlamaConfig, LlamaForCausalLM

    seed_all(20)
    cfg = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=32, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    return model.to(getattr(torch, dtype))


def hf_index_file(d):
    names = [n for n in os.listdir(d) if n.endswith(".index.json")]
    assert len(names) == 1, names
    return names[0]


def load_shard(path):
    torch = _torch()
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def from_pretrained_outcome(d, dtype):
    """What transformers' own loader does with the directory (and whether it saw the same tensors)."""
    torch = _torch()
    from transformers import LlamaForCausalLM

    try:
        model = LlamaForCausalLM.from_pretrained(d, dtype=getattr(torch, dtype))
        sd = model.state_dict()
        return collections.OrderedDict(ok=True, tensors=len(sd)), sd
    except Exception as e:  # noqa: BLE001 - the truth is what transformers raises
        return err_str(e), None


def hf_truth(d, producer, dtype, extra=None):
    doc = truth_head(d, "hf-index", producer)
    doc["files"] = file_list(d)
    index_name = hf_index_file(d)
    with open(os.path.join(d, index_name)) as f:
        index = json.load(f, object_pairs_hook=collections.OrderedDict)
    weight_map = index["weight_map"]
    shards = sorted(set(weight_map.values()))
    merged, present = collections.OrderedDict(), []
    for shard in shards:
        path = os.path.join(d, shard)
        if not os.path.exists(path):
            continue
        present.append(shard)
        for k, v in load_shard(path).items():
            merged[k] = (v, shard)
    doc["hf"] = collections.OrderedDict(
        index=index_name,
        metadata=index.get("metadata"),
        weightMap=weight_map,
        shards=[collections.OrderedDict(file=s, present=s in present, tensors=sorted(k for k, v in weight_map.items() if v == s))
                for s in shards],
        config=os.path.exists(os.path.join(d, "config.json")),
    )
    outcome, loaded = from_pretrained_outcome(d, dtype)
    doc["fromPretrained"] = outcome
    tensors = []
    for name, (t, shard) in merged.items():
        entry = collections.OrderedDict(name=name, shape=list(t.shape), dtype=dtype_name(t.dtype), sha256=tensor_sha256(t), shard=shard)
        if loaded is not None and name in loaded:
            entry["fromPretrainedSameSha256"] = tensor_sha256(loaded[name]) == entry["sha256"]
        tensors.append(entry)
    doc["tensors"] = tensors
    doc["consolidatedBy"] = (
        "every shard the index names loaded with safetensors.torch.load_file and merged"
        if index_name.endswith(".safetensors.index.json")
        else "every shard the index names loaded with torch.load(weights_only=True) and merged"
    )
    doc["step"] = None
    if extra:
        doc.update(extra)
    write_truth(d, doc)
    return doc


def build_hf_safetensors():
    import transformers

    d = fresh_dir("hf", "safetensors_5digit")
    model = hf_model("bfloat16")
    model.save_pretrained(d, max_shard_size="6KB")
    hf_truth(d, "real transformers %s save_pretrained(max_shard_size='6KB') of a tiny LlamaForCausalLM in bfloat16 "
             "(safetensors shards named -NNNNN-of-NNNNN by huggingface_hub.split_torch_state_dict_into_shards)"
             % transformers.__version__, "bfloat16")


def build_hf_6digit():
    src = os.path.join(OUT, "hf", "safetensors_5digit")
    d = fresh_dir("hf", "safetensors_6digit")
    index_name = hf_index_file(src)
    with open(os.path.join(src, index_name)) as f:
        index = json.load(f, object_pairs_hook=collections.OrderedDict)
    rename = {}
    for shard in sorted(set(index["weight_map"].values())):
        m = re.fullmatch(r"(.*)-(\d{5})-of-(\d{5})(\..*)", shard)
        rename[shard] = "%s-%06d-of-%06d%s" % (m.group(1), int(m.group(2)), int(m.group(3)), m.group(4))
    for name in os.listdir(src):
        shutil.copy2(os.path.join(src, name), os.path.join(d, rename.get(name, name)))
    index["weight_map"] = collections.OrderedDict((k, rename[v]) for k, v in index["weight_map"].items())
    with open(os.path.join(d, index_name), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    hf_truth(d, "safetensors_5digit renamed consistently to 6-digit shard numbers (model-000001-of-000004.safetensors) "
             "with the index rewritten: transformers and huggingface_hub only ever write 5 digits, 6-digit names come "
             "from other tools and hand-made repositories", "bfloat16")


def build_hf_bin():
    import accelerate
    from accelerate import Accelerator

    d = fresh_dir("hf", "bin_shards")
    model = hf_model("float32")
    Accelerator(cpu=True).save_model(model, d, max_shard_size="12KB", safe_serialization=False)
    model.config.save_pretrained(d)
    hf_truth(d, "real accelerate %s Accelerator.save_model(max_shard_size='12KB', safe_serialization=False) of a tiny "
             "float32 LlamaForCausalLM (pytorch_model-NNNNN-of-NNNNN.bin + pytorch_model.bin.index.json), config.json "
             "written by model.config.save_pretrained" % accelerate.__version__, "float32")


# ----------------------------------------------------------------------------------------------
# damaged copies
# ----------------------------------------------------------------------------------------------


def copy_sample(src_parts, name):
    src = os.path.join(OUT, *src_parts)
    d = os.path.join(OUT, "damaged", name)
    if os.path.exists(d):
        shutil.rmtree(d)
    shutil.copytree(src, d)
    return d


def dcp_load_outcome(d):
    try:
        consolidate_dcp(d)
        return collections.OrderedDict(ok=True)
    except BaseException as e:  # noqa: BLE001 - CheckpointException derives from BaseException
        return err_str(e)


def damaged_dcp_truth(d, damage, producer):
    """The structure .metadata declares (if there is one), no values, and what torch's loading does."""
    doc = truth_head(d, "dcp", producer)
    doc["files"] = file_list(d)
    if os.path.exists(os.path.join(d, ".metadata")):
        md = read_dcp_metadata(d)
        doc["tensors"], doc["bytes"] = dcp_structure(d, md)
    else:
        doc["tensors"], doc["bytes"] = [], []
    doc["consolidatedBy"] = None
    doc["step"] = None
    doc["damage"] = damage
    damage["torch"] = collections.OrderedDict(call="dcp_to_torch_save(dir, out)", outcome=dcp_load_outcome(d))
    write_truth(d, doc)


def build_damaged_dcp():
    d = copy_sample(("dcp", "fsdp2_2ranks"), "dcp_missing_rank_file")
    os.remove(os.path.join(d, "__1_0.distcp"))
    damaged_dcp_truth(d, collections.OrderedDict(kind="rank-file-missing", file="__1_0.distcp", rank=1),
                      "dcp/fsdp2_2ranks with __1_0.distcp (rank 1's data) deleted")

    d = copy_sample(("dcp", "fsdp2_2ranks"), "dcp_truncated_distcp")
    path = os.path.join(d, "__0_0.distcp")
    size = os.path.getsize(path)
    keep = size * 3 // 5
    with open(path, "r+b") as f:
        f.truncate(keep)
    damaged_dcp_truth(d, collections.OrderedDict(kind="file-truncated", file="__0_0.distcp", rank=0, size=keep, originalSize=size),
                      "dcp/fsdp2_2ranks with __0_0.distcp cut to 3/5 of its length")


def rank_cut_save(rank, world_size, out):
    """A 2-rank FSDP2 save whose coordinator dies in FileSystemWriter.finish, before .metadata exists."""
    torch = _torch()
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model = fsdp2_model(world_size)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    train_steps(model, opt, rank, 3)
    model_sd, optim_sd = get_state_dict(model, opt)

    def killed(self, metadata, results):
        raise RuntimeError("coordinator killed before writing .metadata")

    dcp.FileSystemWriter.finish = killed
    try:
        save_relative({"model": model_sd, "optimizer": optim_sd, "train_state": {"step": 3}}, out)
    except BaseException:  # noqa: BLE001 - the cut is the point
        pass


def build_damaged_no_metadata():
    d = os.path.join(OUT, "damaged", "dcp_no_metadata")
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    spawn("rank_cut_save", 2, d)
    assert not os.path.exists(os.path.join(d, ".metadata"))
    damaged_dcp_truth(d, collections.OrderedDict(kind="metadata-missing", dataFiles=sorted(n for n in os.listdir(d) if n.endswith(".distcp"))),
                      "a real 2-rank FSDP2 dcp.save whose coordinator (rank 0) raised in FileSystemWriter.finish: every "
                      "rank wrote its __{rank}_0.distcp, .metadata (written last, as .metadata.tmp then renamed) never came")


def build_damaged_deepspeed():
    d = copy_sample(("deepspeed", "zero2_bf16"), "deepspeed_missing_rank")
    os.remove(os.path.join(d, "global_step3", "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"))
    ds_truth(d, "deepspeed/zero2_bf16 with rank 1's bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt deleted",
             extra={"damage": collections.OrderedDict(kind="rank-file-missing", file="global_step3/bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt", rank=1)})
    forget_ds_modules()


def build_damaged_hf():
    d = copy_sample(("hf", "safetensors_5digit"), "hf_shard_missing")
    index_name = hf_index_file(d)
    with open(os.path.join(d, index_name)) as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    gone = shards[1]
    os.remove(os.path.join(d, gone))
    hf_truth(d, "hf/safetensors_5digit with %s deleted" % gone, "bfloat16",
             extra={"damage": collections.OrderedDict(kind="shard-missing", file=gone,
                                                      tensors=sorted(k for k, v in index["weight_map"].items() if v == gone))})

    d = copy_sample(("hf", "safetensors_5digit"), "hf_index_extra_key")
    with open(os.path.join(d, index_name)) as f:
        index = json.load(f, object_pairs_hook=collections.OrderedDict)
    extra = "model.layers.2.self_attn.q_proj.weight"
    index["weight_map"][extra] = shards[0]
    with open(os.path.join(d, index_name), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    hf_truth(d, "hf/safetensors_5digit with the index naming %s in %s, which holds no such tensor" % (extra, shards[0]), "bfloat16",
             extra={"damage": collections.OrderedDict(kind="index-key-not-in-shard", name=extra, shard=shards[0])})


class _EchoPayload:
    """Pickles as os.system("echo ..."): what a poisoned bytes item looks like. It only echoes."""

    def __reduce__(self):
        return (os.system, ("echo ckpt-sample-payload",))


def build_damaged_malicious():
    """A bytes item whose pickle calls os.system: dcp.load hands bytes items to torch.load(weights_only=False)
    (DefaultLoadPlanner.load_bytes), so it runs on load. The truth's `loaded` for it is os.system's return
    value: making the truth loads it, as dcp.load would (it only echoes)."""
    import torch

    d = fresh_dir("damaged", "dcp_malicious_bytes_item")
    torch.manual_seed(0)
    state = {"model": {"w": torch.randn(4, 3)}, "train_state": {"step": 7, "extra": _EchoPayload()}}
    save_single(d, state)
    dcp_truth(
        d,
        "real torch.distributed.checkpoint.save in one process; train_state.extra pickles as os.system",
        step=train_step("train_state.step", 7),
        consolidate=False,
        extra={"damage": collections.OrderedDict(kind="malicious-bytes-item", item="train_state.extra",
                                                 **{"global": "posix.system"})},
    )


# ----------------------------------------------------------------------------------------------
# DCP writer and planner options users set: one file per item, writer threads, uneven shards on 3 ranks,
# dedup to the lowest rank, an unflattened state dict, torch_save_to_dcp, every dtype DCP stores
# ----------------------------------------------------------------------------------------------


def many_dtypes(torch):
    """One tensor of every dtype a state dict may hold and safetensors can store (complex128 has no safetensors
    code: samples/torch2/dtypes.pt holds it), some of them views with strides of their own."""
    seed_all(5)
    base = torch.randn(3, 5)
    out = collections.OrderedDict(
        f64=base.double(), f16=base.half(), bf16=base.bfloat16(), i8=(base * 10).to(torch.int8),
        u8=(base.abs() * 10).to(torch.uint8), i16=(base * 100).to(torch.int16), i32=(base * 1000).to(torch.int32),
        i64=torch.arange(15, dtype=torch.int64).view(3, 5), flags=base > 0,
        c64=torch.complex(base, -base),
        f8e4m3=base.to(torch.float8_e4m3fn), f8e5m2=base.to(torch.float8_e5m2),
        u16=(base.abs() * 100).to(torch.uint16), u32=(base.abs() * 1000).to(torch.uint32),
        column=base[:, 1:3], transposed=base.t(), strided_rows=base[::2],
    )
    return out


def rank_recipe(rank, world_size, out):
    """The PyTorch distributed checkpoint recipe (pytorch.org/tutorials/recipes/distributed_checkpoint_recipe),
    as written there: an AppState Stateful saved under "app", holding {"model": ..., "optim": ...}."""
    torch = _torch()
    import torch.nn as nn
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from torch.distributed.checkpoint.stateful import Stateful
    from torch.distributed.fsdp import fully_shard

    class AppState(Stateful):
        def __init__(self, model, optimizer=None):
            self.model = model
            self.optimizer = optimizer

        def state_dict(self):
            model_state_dict, optimizer_state_dict = get_state_dict(self.model, self.optimizer)
            return {"model": model_state_dict, "optim": optimizer_state_dict}

        def load_state_dict(self, state_dict):
            set_state_dict(self.model, self.optimizer, model_state_dict=state_dict["model"],
                           optim_state_dict=state_dict["optim"])

    class ToyModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.net1 = nn.Linear(16, 16)
            self.relu = nn.ReLU()
            self.net2 = nn.Linear(16, 8)

        def forward(self, x):
            return self.net2(self.relu(self.net1(x)))

    seed_all(10)
    model = fully_shard(ToyModel())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    model(torch.rand(8, 16)).sum().backward()
    optimizer.step()
    save_relative({"app": AppState(model, optimizer)}, out)


def build_recipe():
    build_spawned(
        ("dcp", "writer_options", "recipe_app_state_2ranks"), 2, "rank_recipe",
        "the PyTorch distributed checkpoint recipe as published (FSDP2 fully_shard, Adam, AppState saved under "
        "\"app\" with \"model\" and \"optim\"), 2 ranks; it saves no step counter",
    )


def build_one_file_per_item():
    """FileSystemWriter(single_file_per_rank=False): every item in a .distcp file of its own."""
    torch = _torch()
    d = fresh_dir("dcp", "writer_options", "one_file_per_item")
    deterministic_dcp()
    state = {"model": many_dtypes(torch), "train_state": {"step": 9, "note": "one file per item"}}
    save_single(d, state, single_file_per_rank=False)
    dcp_truth(
        d,
        "FileSystemWriter(single_file_per_rank=False), no_dist; " + TORCH_DCP_REF % torch.__version__
        + "; every dtype a state dict holds, views with their own strides",
        step=train_step("train_state.step", 9),
    )


def rank_threads(rank, world_size, out):
    torch = _torch()
    import torch.distributed.checkpoint as dcp

    model = fsdp2_model(world_size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_steps(model, opt, rank, 2)
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, opt)
    os.chdir(os.path.dirname(out))
    writer = dcp.FileSystemWriter(os.path.basename(out), thread_count=4, per_thread_copy_ahead=1024)
    dcp.save({"model": msd, "optim": osd, "train_state": {"step": 2}}, storage_writer=writer)


def build_four_threads():
    build_spawned(
        ("dcp", "writer_options", "four_threads_2ranks"), 2, "rank_threads",
        "real FSDP2 on 2 ranks saved through FileSystemWriter(thread_count=4): __R_0 .. __R_3 per rank",
        train_step("train_state.step", 2),
    )


def rank_uneven3(rank, world_size, out):
    torch = _torch()
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world_size,))
    seed_all(6)
    full = collections.OrderedDict(
        rows=(torch.randn(10, 3), Shard(0)),          # 4, 4, 2 rows
        two_rows=(torch.randn(2, 5), Shard(0)),       # 1, 1 and an empty shard
        columns=(torch.randn(3, 7).bfloat16(), Shard(1)),
        one=(torch.randn(1), Shard(0)),
        cube=(torch.randn(4, 5, 6).double(), Shard(2)),
    )
    tensors = {k: distribute_tensor(v, mesh, [p]) for k, (v, p) in full.items()}
    save_relative({"tensors": tensors, "train_state": {"step": 3}}, out)


def build_uneven3():
    build_spawned(
        ("dcp", "writer_options", "uneven_3ranks"), 3, "rank_uneven3",
        "DTensors Shard(0), Shard(1) and Shard(2) on 3 ranks (gloo): sizes that 3 does not divide, an empty shard",
        train_step("train_state.step", 3),
    )


def rank_dedup_lowest(rank, world_size, out):
    torch = _torch()
    from torch.distributed.checkpoint import DefaultSavePlanner

    seed_all(7)
    state = {"weights": {"w": torch.randn(6, 4), "b": torch.arange(6, dtype=torch.int32)}, "train_state": {"step": 4}}
    save_relative(state, out, planner=DefaultSavePlanner(dedup_save_to_lowest_rank=True))


def build_dedup_lowest():
    build_spawned(
        ("dcp", "writer_options", "dedup_lowest_rank_2ranks"), 2, "rank_dedup_lowest",
        "a replicated state dict on 2 ranks saved with DefaultSavePlanner(dedup_save_to_lowest_rank=True)",
        train_step("train_state.step", 4),
    )


def save_unflattened(d, state, what, step):
    """dcp.save of `state` in one process with DefaultSavePlanner(flatten_state_dict=False): nested containers
    that hold more than tensors are pickled whole as bytes items. Returns the truth document."""
    torch = _torch()
    from torch.distributed.checkpoint import DefaultSavePlanner
    from torch.distributed.checkpoint.state_dict_saver import _save_state_dict
    import torch.distributed.checkpoint as dcp

    cwd = os.getcwd()
    os.chdir(os.path.dirname(d))
    try:
        writer = dcp.FileSystemWriter(os.path.basename(d))
        _save_state_dict(state, storage_writer=writer, planner=DefaultSavePlanner(flatten_state_dict=False),
                         no_dist=True)
    finally:
        os.chdir(cwd)
    return dcp_truth(
        d,
        "DefaultSavePlanner(flatten_state_dict=False), no_dist; " + TORCH_DCP_REF % torch.__version__ + "; " + what,
        step=step,
    )


def build_unflattened():
    """DefaultSavePlanner(flatten_state_dict=False): a nested dict under a list is not flattened, so DCP pickles
    that part whole as a bytes item (tensors inside a bytes item)."""
    torch = _torch()
    d = fresh_dir("dcp", "writer_options", "unflattened")
    deterministic_dcp()
    seed_all(8)
    state = {
        "w": torch.randn(4, 4),
        "groups": [{"lr": 0.1, "params": [0, 1]}, {"lr": 0.01, "params": [2]}],
        "ema": [torch.randn(3), torch.randn(2, 2)],
        "step": 12,
    }
    save_unflattened(d, state, "lists of dicts and of tensors stay bytes items", train_step("step", 12))


def build_large_bytes_item():
    """A bytes item of ~230 KB holding tensors and a long list (a data loader's sampler state and an EMA buffer
    kept under one key): DefaultSavePlanner(flatten_state_dict=False) pickles the whole list as one item."""
    torch = _torch()
    d = fresh_dir("dcp", "writer_options", "large_bytes_item")
    deterministic_dcp()
    seed_all(10)
    state = {
        "w": torch.randn(8, 8),
        "extra": [
            {"sampler": {"epoch": 3, "indices": list(range(20000))}},
            torch.randn(40000),
            {"ema": {"decay": 0.999, "shadow": torch.randn(64, 64).bfloat16()}},
        ],
        "step": 300,
    }
    doc = save_unflattened(
        d, state, "one bytes item of ~230 KB holding a 20,000-int list and two tensors", train_step("step", 300)
    )
    extra = next(b for b in doc["bytes"] if b["name"] == "extra")
    assert extra["length"] > 128 * 1024 and len(extra["loaded"]["tensors"]) == 2, extra["length"]


def build_torch_save_to_dcp():
    """torch.distributed.checkpoint.format_utils.torch_save_to_dcp of a torch.save file."""
    torch = _torch()
    from torch.distributed.checkpoint.format_utils import torch_save_to_dcp

    d = fresh_dir("dcp", "writer_options", "torch_save_to_dcp")
    deterministic_dcp()
    seed_all(9)
    state = {
        "model": many_dtypes(torch),
        "optimizer": {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(3, 5)}},
                      "param_groups": [{"lr": 0.001, "params": [0]}]},
        "iteration": 5,
    }
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "model.pt")
        torch.save(state, src)
        cwd = os.getcwd()
        os.chdir(os.path.dirname(d))
        try:
            torch_save_to_dcp(src, os.path.basename(d))
        finally:
            os.chdir(cwd)
    dcp_truth(
        d,
        "torch.distributed.checkpoint.format_utils.torch_save_to_dcp of a torch.save file; " + TORCH_DCP_REF
        % torch.__version__,
        step=train_step("iteration", 5),
    )


# ----------------------------------------------------------------------------------------------
# HuggingFaceStorageWriter with every rank saving: safetensors shards, DCP_SHARDING_INFO, no .metadata
# ----------------------------------------------------------------------------------------------

HF_WRITER_FILES = {"head": 2}


def hf_writer_index(state):
    """fqn_to_index_mapping: the head in model file 2, the rest in file 1 (as torchtitan maps HF names)."""
    return {k: HF_WRITER_FILES.get(k.split(".")[0], 1) for k in state}


def rank_hf_writer(rank, world_size, out, consolidate):
    torch = _torch()
    import torch.distributed.checkpoint as dcp

    model = fsdp2_model(world_size)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    train_steps(model, opt, rank, 1)
    state = model.state_dict()
    writer = dcp.HuggingFaceStorageWriter(
        path=out, save_distributed=True, enable_consolidation=consolidate, fqn_to_index_mapping=hf_writer_index(state)
    )
    dcp.save(state, storage_writer=writer)


def hf_writer_truth(d, sharded, producer, damage=None):
    """The structure from the shards' headers (as HuggingFaceStorageReader.read_metadata builds it), the
    values from torch's own consolidate_safetensors_files of the shards, loaded with safetensors."""
    torch = _torch()
    from safetensors.torch import load_file
    from torch.distributed.checkpoint._consolidate_hf_safetensors import consolidate_safetensors_files
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader

    reader = HuggingFaceStorageReader(sharded)
    # read_metadata walks fs.ls (os.listdir order): in name order, as ckpt lists the shards (rank, then file).
    listing = reader.fs.ls
    reader.fs.ls = lambda path: sorted(listing(path))
    md = reader.read_metadata()
    storage = {(i.fqn, tuple(i.offset)): info for i, info in md.storage_data.items()}
    values = {}
    if damage is None:
        with tempfile.TemporaryDirectory() as tmp:
            consolidate_safetensors_files(sharded, tmp, {k: 1 for k in md.state_dict_metadata})
            for f in sorted(os.listdir(tmp)):
                if f.endswith(".safetensors"):
                    values.update(load_file(os.path.join(tmp, f)))
    doc = truth_head(d, "dcp", producer + "; saved with " + TORCH_DCP_REF % torch.__version__)
    doc["files"] = file_list(d)
    tensors = []
    for fqn, m in md.state_dict_metadata.items():
        value = values.get(fqn)
        if value is not None:
            assert list(value.shape) == list(m.size) and value.dtype == m.properties.dtype, fqn
        tensors.append(
            collections.OrderedDict(
                name=fqn,
                shape=list(m.size),
                dtype=dtype_name(m.properties.dtype),
                requiresGrad=bool(m.properties.requires_grad),
                chunks=[hf_writer_chunk(c, storage[(fqn, tuple(c.offsets))]) for c in m.chunks],
                sha256=None if value is None else tensor_sha256(value),
            )
        )
    doc["consolidatedBy"] = (
        None if damage else "torch.distributed.checkpoint._consolidate_hf_safetensors.consolidate_safetensors_files, "
        "then safetensors.torch.load_file"
    )
    doc["metadata"] = None
    doc["tensors"] = tensors
    doc["bytes"] = []
    doc["step"] = None
    if damage:
        doc["damage"] = damage
    write_truth(d, doc)


def hf_writer_chunk(c, info):
    """A chunk, and where its bytes are: the whole shard file is one safetensors blob (offset 0), the chunk
    its numel * element_size bytes (_HFStorageInfo gives the file, the shape and the dtype)."""
    torch = _torch()
    nbytes = math.prod(info.shape) * torch.empty((), dtype=info.dtype).element_size()
    return collections.OrderedDict(
        offsets=list(c.offsets), sizes=list(c.sizes), file=os.path.basename(info.relative_path), offset=0, length=nbytes
    )


def build_hf_writer():
    d = fresh_dir("dcp", "hf_writer_2ranks")
    spawn("rank_hf_writer", 2, d, False)
    hf_writer_truth(
        d,
        d,
        "FSDP2 model.state_dict() over 2 CPU ranks, dcp.save with HuggingFaceStorageWriter(save_distributed=True, "
        "fqn_to_index_mapping) without consolidation: per-rank safetensors shards, no .metadata",
    )
    d = fresh_dir("dcp", "hf_writer_consolidated")
    spawn("rank_hf_writer", 2, d, True)
    hf_writer_truth(
        os.path.join(d, "sharded"),
        os.path.join(d, "sharded"),
        "the sharded/ folder of HuggingFaceStorageWriter(save_distributed=True, enable_consolidation=True) over "
        "2 CPU ranks (torchtitan's HF save); the consolidated shards and their index are beside it",
    )


def build_damaged_hf_writer():
    d = copy_sample(("dcp", "hf_writer_2ranks"), "dcp_hf_writer_missing_shard")
    gone = "shard-00001-model-00001-of-00002.safetensors"
    os.remove(os.path.join(d, gone))
    hf_writer_truth(
        d,
        d,
        "dcp/hf_writer_2ranks with %s (rank 0's part of model file 1) deleted" % gone,
        damage=collections.OrderedDict(kind="rank-file-missing", file=gone, rank=0),
    )


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

BUILDERS = collections.OrderedDict(
    fsdp2_2=build_fsdp2_2,
    fsdp2_4=build_fsdp2_4,
    dtensor_2d=build_dtensor_2d,
    replicated=build_replicated,
    torchtitan=build_torchtitan,
    accelerate=build_accelerate,
    lightning=build_lightning,
    safetensors_format=build_safetensors_format,
    transform_descriptors=build_transform_descriptors,
    torch1_crosscheck=build_torch1_crosscheck,
    zero1=build_zero1,
    zero2=build_zero2,
    zero3=build_zero3_sample,
    zero0=build_zero0,
    hf_safetensors=build_hf_safetensors,
    hf_6digit=build_hf_6digit,
    hf_bin=build_hf_bin,
    damaged_dcp=build_damaged_dcp,
    damaged_no_metadata=build_damaged_no_metadata,
    damaged_deepspeed=build_damaged_deepspeed,
    damaged_hf=build_damaged_hf,
    damaged_malicious=build_damaged_malicious,
    one_file_per_item=build_one_file_per_item,
    four_threads=build_four_threads,
    uneven3=build_uneven3,
    dedup_lowest=build_dedup_lowest,
    unflattened=build_unflattened,
    torch_save_to_dcp=build_torch_save_to_dcp,
    recipe=build_recipe,
    large_bytes_item=build_large_bytes_item,
    hf_writer=build_hf_writer,
    damaged_hf_writer=build_damaged_hf_writer,
)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        if sys.argv[2] == "lightning":
            lightning_worker(sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--torch1", action="store_true")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    generator_info()
    if args.torch1:
        build_torch1()
        return
    names = args.only or list(BUILDERS)
    for name in names:
        print("building", name, flush=True)
        BUILDERS[name]()


if __name__ == "__main__":
    main()
