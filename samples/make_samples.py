#!/usr/bin/env python3
"""Generate PyTorch checkpoint samples plus ground truth for `ckpt`.

Usage:
    python make_samples.py OUT_DIR

Runs under torch 1.13 (Debian python3-torch) and torch 2.x (CPU wheel).
For every sample file X it writes X.truth.json (schema "ckpt.truth/1"),
computed from what torch itself returns when it loads X
(torch.load(..., map_location="cpu", weights_only=False), torch.jit.load for
TorchScript, safetensors.torch.load_file for safetensors).

Storage keys (the persistent-id key of each storage, e.g. "0" -> data/0)
are not kept by torch after loading, so they are captured by giving
torch.load a pickle module whose Unpickler intercepts the assignment
`unpickler.persistent_load = fn` and records what fn returns for each
persistent id.
"""

import collections
import ctypes
import hashlib
import io
import json
import os
import pickle
import pickletools
import platform
import sys
import types
import warnings
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.serialization as tser

warnings.simplefilter("ignore")

SCHEMA = "ckpt.truth/1"
TORCH2 = int(torch.__version__.split(".")[0]) >= 2


def seed(n):
    torch.manual_seed(n)
    np.random.seed(n)


# --------------------------------------------------------------------------
# Models (defined in __main__ on purpose: whole_module.pt refers to them)
# --------------------------------------------------------------------------


class TinyCNN(nn.Module):
    """conv + bn + linear; input [N, 1, 8, 8] -> 3 classes; 243 parameters + 9 buffer elements."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 2)
        return self.fc(x.flatten(1))


# Global tensor captured by tracing -> becomes a TorchScript constant.
_TS_CONST = torch.tensor([0.5, -1.0, 2.0])


class _ScaleByConst(nn.Module):
    def forward(self, x):
        return x * _TS_CONST


class ScriptedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.register_buffer("offset", torch.arange(3, dtype=torch.float32))
        # traced submodule: its code refers to CONSTANTS.c0 (constants.pkl)
        self.scale = torch.jit.trace(_ScaleByConst(), torch.ones(2, 3))

    def forward(self, x):
        return self.scale(self.lin(x) + self.offset)


# --------------------------------------------------------------------------
# Storage-key capture
# --------------------------------------------------------------------------

_BaseUnpickler = pickle.Unpickler
_PL_DESCR = _BaseUnpickler.__dict__["persistent_load"]  # C getset descriptor


class _Capture:
    def __init__(self):
        self.records = []  # (saved_id, returned storage object)


_CURRENT_CAPTURE = [None]


class CaptureUnpickler(_BaseUnpickler):
    """Unpickler whose `persistent_load` attribute setter wraps the function."""

    @property
    def persistent_load(self):
        return _PL_DESCR.__get__(self, type(self))

    @persistent_load.setter
    def persistent_load(self, fn):
        cap = _CURRENT_CAPTURE[0]

        def wrapper(saved_id):
            res = fn(saved_id)
            if cap is not None:
                cap.records.append((saved_id, res))
            return res

        _PL_DESCR.__set__(self, wrapper)


def _make_capture_module():
    mod = types.ModuleType("ckpt_capture_pickle")
    mod.__dict__.update({k: v for k, v in pickle.__dict__.items() if not k.startswith("__")})
    mod.Unpickler = CaptureUnpickler
    return mod


CAPTURE_PICKLE = _make_capture_module()


def _untyped(storage_like):
    """UntypedStorage behind a tensor / TypedStorage (1.13 and 2.x)."""
    if isinstance(storage_like, torch.Tensor):
        if hasattr(storage_like, "untyped_storage"):
            return storage_like.untyped_storage()
        return storage_like.storage()._storage  # 1.13
    for attr in ("_untyped_storage", "_storage"):
        inner = getattr(storage_like, attr, None)
        if inner is not None:
            return inner
    return storage_like


def _as_str(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def load_with_capture(path):
    """torch.load + {StorageImpl id: (key, location)} + raw capture records."""
    cap = _Capture()
    _CURRENT_CAPTURE[0] = cap
    saved_pickle = tser.pickle
    try:
        if not TORCH2:
            # torch 1.13's torch.load does `pickle_module = pickle` whenever
            # weights_only is False, silently ignoring the pickle_module argument;
            # swap the module global so _load/_legacy_load see the capture module.
            tser.pickle = CAPTURE_PICKLE
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=CAPTURE_PICKLE)
    finally:
        tser.pickle = saved_pickle
        _CURRENT_CAPTURE[0] = None
    keymap = {}
    for saved_id, res in cap.records:
        if _as_str(saved_id[0]) != "storage":
            continue  # legacy ("module", cls, file, source) ids
        key, loc = _as_str(saved_id[2]), _as_str(saved_id[3])
        us = _untyped(res)
        keymap[us._cdata] = (key, loc)
    # the caller keeps cap.records (and so every storage) alive: _cdata values cannot be reused
    return obj, keymap, cap.records


def load_plain(path):
    return torch.load(path, map_location="cpu", weights_only=False)


# --------------------------------------------------------------------------
# Truth computation
# --------------------------------------------------------------------------


def dtype_name(dt):
    return str(dt).replace("torch.", "")


def sha256_tensor(t):
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.is_complex() and t.is_conj():
        t = t.resolve_conj()
    if hasattr(t, "is_neg") and t.is_neg():
        t = t.resolve_neg()
    try:
        c = t.clone(memory_format=torch.contiguous_format)
    except Exception:
        alias = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
        c = t.view(alias).clone(memory_format=torch.contiguous_format)
    n = c.numel() * c.element_size()
    data = ctypes.string_at(c.data_ptr(), n) if n else b""
    return hashlib.sha256(data).hexdigest()


class Walker:
    def __init__(self, keymap=None, with_keys=True):
        self.keymap = keymap or {}
        self.with_keys = with_keys
        self.groups = {}  # StorageImpl id -> group index
        self.group_ptr = {}  # data_ptr -> group index (non-empty storages, consistency check)
        self.tensors = []
        self.notes = []
        self.missing_keys = []

    # storage info for a strided tensor
    def storage_info(self, t):
        us = _untyped(t)
        cid = us._cdata
        nbytes = us.nbytes()
        if cid not in self.groups:
            self.groups[cid] = len(self.groups)
        g = self.groups[cid]
        ptr = us.data_ptr()
        if nbytes > 0 and ptr != 0:
            prev = self.group_ptr.setdefault(ptr, g)
            if prev != g:
                raise AssertionError("storageGroup by StorageImpl differs from grouping by data_ptr")
        info = {}
        if self.with_keys:
            if cid in self.keymap:
                key, loc = self.keymap[cid]
                info["key"] = key
                info["device"] = loc
            else:
                self.missing_keys.append(cid)
                info["key"] = None
                info["device"] = str(t.device)
        else:
            info["device"] = str(t.device)
        info["sizeBytes"] = nbytes
        return info, g

    def sub_tensor(self, t):
        info, g = self.storage_info(t)
        return {
            "dtype": dtype_name(t.dtype),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "storage": info,
            "storageGroup": g,
            "sha256": sha256_tensor(t),
        }

    def record(self, path, t):
        rec = collections.OrderedDict()
        rec["path"] = list(path)
        rec["dtype"] = dtype_name(t.dtype)
        rec["shape"] = list(t.shape)
        if t.layout == torch.strided:
            rec["stride"] = list(t.stride())
            rec["offset"] = t.storage_offset()
            rec["storage"], rec["storageGroup"] = self.storage_info(t)
        else:
            rec["stride"] = None
            rec["offset"] = None
            rec["storage"] = None
            rec["storageGroup"] = None
        rec["requiresGrad"] = bool(t.requires_grad)
        rec["parameter"] = isinstance(t, nn.Parameter)
        layout = str(t.layout).replace("torch.", "")
        rec["layout"] = layout
        rec["sha256"] = sha256_tensor(t)
        if t.is_quantized:
            qs = t.qscheme()
            scheme = str(qs).replace("torch.", "")
            if qs == torch.per_tensor_affine:
                rec["quantization"] = {"scheme": scheme, "scale": float(t.q_scale()), "zeroPoint": int(t.q_zero_point())}
            else:
                rec["quantization"] = {
                    "scheme": scheme,
                    "axis": int(t.q_per_channel_axis()),
                    "scales": [float(x) for x in t.q_per_channel_scales().tolist()],
                    "zeroPoints": [int(x) for x in t.q_per_channel_zero_points().tolist()],
                }
        if layout == "sparse_coo":
            rec["sparse"] = {"indices": self.sub_tensor(t._indices()), "values": self.sub_tensor(t._values())}
        self.tensors.append(rec)

    def walk(self, obj, path=(), stack=None):
        if stack is None:
            stack = set()
        if isinstance(obj, torch.Tensor):
            self.record(path, obj)
            return
        if isinstance(obj, (str, bytes, bytearray, int, float, complex, type(None), np.ndarray, np.generic)):
            return
        if isinstance(obj, (set, frozenset)):
            return  # unordered: skipped by rule
        if isinstance(obj, type) or callable(obj) and not hasattr(obj, "__dict__"):
            return
        if id(obj) in stack:
            self.notes.append("cycle skipped at path %s" % json.dumps(list(path), ensure_ascii=False))
            return
        stack.add(id(obj))
        try:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(k, str):
                        self.walk(v, path + (k,), stack)
                    elif isinstance(k, int) and not isinstance(k, bool):
                        self.walk(v, path + (k,), stack)
                    else:
                        self.notes.append(
                            "skipped dict entry with %s key %r at path %s"
                            % (type(k).__name__, k, json.dumps(list(path), ensure_ascii=False))
                        )
            elif isinstance(obj, (list, tuple)):
                for i, v in enumerate(obj):
                    self.walk(v, path + (i,), stack)
            elif hasattr(obj, "__dict__") and not isinstance(obj, (types.ModuleType, types.FunctionType)):
                for k, v in vars(obj).items():
                    self.walk(v, path + (k,), stack)
        finally:
            stack.discard(id(obj))


def generator_info():
    return {"torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__}


def write_truth(out_dir, fname, truth):
    with open(os.path.join(out_dir, fname + ".truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def base_truth(fname, fmt, protocol=None):
    t = collections.OrderedDict()
    t["schema"] = SCHEMA
    t["generator"] = generator_info()
    t["file"] = fname
    t["format"] = fmt
    if protocol is not None:
        t["pickleProtocol"] = protocol
    t["notes"] = []
    t["tensors"] = []
    return t


def _strip_keys(recs):
    """Records without storage keys (for comparing captured vs plain load)."""
    out = json.loads(json.dumps(recs))
    for r in out:
        if r.get("storage"):
            r["storage"].pop("key", None)
        for sub in (r.get("sparse") or {}).values():
            sub["storage"].pop("key", None)
    return out


def legacy_storage_blobs(path, sizes):
    """{key: raw bytes} of a legacy stream file, for the keys whose byte size is known."""
    import struct

    out = {}
    with open(path, "rb") as f:
        for _ in range(4):  # magic, protocol version, sys_info, main object
            for _op in pickletools.genops(f):
                pass
        keys = pickle.load(f)  # sorted key list
        for key in keys:
            if key not in sizes:
                break  # element size unknown: cannot skip this storage
            (count,) = struct.unpack("<q", f.read(8))
            data = f.read(sizes[key])
            if len(data) != sizes[key] or (count and sizes[key] % count):
                raise AssertionError("legacy storage %s: short read or bad count %d" % (key, count))
            out[key] = data
    return out


_QUANT_REPR = {"quint8": torch.uint8, "qint8": torch.int8, "qint32": torch.int32}


def sha256_from_raw(raw, rec):
    """sha256 of the tensor described by rec (dtype/shape/stride/offset) viewed over raw storage bytes."""
    if rec["dtype"] in _QUANT_REPR:
        dt = _QUANT_REPR[rec["dtype"]]
    else:
        dt = getattr(torch, rec["dtype"])
    esize = torch.empty(0, dtype=dt).element_size()
    if len(raw) == 0:
        base = torch.empty(0, dtype=dt)
    else:
        base = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        base = base.view(dt) if esize != 1 or dt != torch.uint8 else base
    t = torch.as_strided(base, rec["shape"], rec["stride"], rec["offset"])
    return sha256_tensor(t)


def torch_save_truth(out_dir, fname, obj, protocol=2, legacy=False, extra_notes=()):
    path = os.path.join(out_dir, fname)
    kwargs = {"pickle_protocol": protocol}
    if legacy:
        kwargs["_use_new_zipfile_serialization"] = False
    torch.save(obj, path, **kwargs)
    fmt = "torch-legacy" if legacy else "torch-zip"
    truth = base_truth(fname, fmt, protocol)
    notes = truth["notes"]
    notes.extend(extra_notes)

    loaded, keymap, records = load_with_capture(path)
    w = Walker(keymap)
    w.walk(loaded)
    if w.missing_keys:
        raise AssertionError("%s: %d storages without captured key" % (fname, len(w.missing_keys)))
    truth["tensors"] = w.tensors
    notes.extend(w.notes)

    # Self-check 1: a plain torch.load (no capture module) sees the same tensors.
    plain = load_plain(path)
    w2 = Walker(with_keys=True)
    w2.walk(plain)
    if _strip_keys(w2.tensors) != _strip_keys(w.tensors):
        raise AssertionError("%s: capture load differs from plain torch.load" % fname)

    # Self-check 2: every captured key names storage bytes in the file of the right size, and
    # re-viewing those raw bytes with (dtype, shape, stride, offset) from the truth reproduces sha256
    # (i.e. what a reader like ckpt has to do).
    entries = []
    for r in w.tensors:
        if r["storage"]:
            entries.append(r)
        for sub in (r.get("sparse") or {}).values():
            entries.append(sub)
    sizes = {}
    for e in entries:
        sizes.setdefault(e["storage"]["key"], e["storage"]["sizeBytes"])
    if legacy:
        blobs = legacy_storage_blobs(path, sizes)
        notes.append(
            "legacy format: storage keys are str(storage._cdata) (memory addresses) chosen by torch at save "
            "time, so they change on every run"
        )
    else:
        blobs = {}
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                parts = info.filename.split("/", 1)
                if len(parts) == 2 and parts[1].startswith("data/"):
                    blobs[parts[1][5:]] = z.read(info)
    for e in entries:
        key = e["storage"]["key"]
        if key not in blobs or len(blobs[key]) != e["storage"]["sizeBytes"]:
            raise AssertionError("%s: key %s: no record of %d bytes" % (fname, key, e["storage"]["sizeBytes"]))
        if sha256_from_raw(blobs[key], e) != e["sha256"]:
            raise AssertionError("%s: key %s: raw bytes re-viewed do not match sha256" % (fname, key))
    if not TORCH2:
        notes.append(
            "key capture: torch 1.13 torch.load ignores pickle_module when weights_only=False; the generator "
            "temporarily replaced torch.serialization.pickle with its capture module (same _load/_legacy_load path)"
        )
    write_truth(out_dir, fname, truth)
    return truth


# --------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------


def train_tiny_cnn():
    seed(0)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[20, 40], gamma=0.1)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(60):
        x = torch.randn(8, 1, 8, 8, generator=gen)
        y = torch.randint(0, 3, (8,), generator=gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, opt, sched


def sample_training(out_dir):
    model, opt, sched = train_tiny_cnn()
    sd = model.state_dict()
    torch_save_truth(out_dir, "state_dict.pt", sd)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}
    ckpt = {
        "model": sd,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler,
        "iteration": 59,
    }
    torch_save_truth(
        out_dir,
        "training_checkpoint.pth",
        ckpt,
        extra_notes=["Adam (lr 1e-2) + MultiStepLR([20, 40], 0.1), 60 steps; 'scaler' is a literal GradScaler-like dict"],
    )
    torch_save_truth(out_dir, "model_only.pth", {"model": sd})
    with open(os.path.join(out_dir, "last_checkpoint"), "w") as f:
        f.write("training_checkpoint.pth")
    truth = base_truth("last_checkpoint", "pointer")
    truth["pointer"] = {"content": "training_checkpoint.pth", "target": "training_checkpoint.pth"}
    write_truth(out_dir, "last_checkpoint", truth)

    # whole module (class TinyCNN lives in __main__)
    torch_save_truth(
        out_dir,
        "whole_module.pt",
        model,
        extra_notes=["pickled nn.Module subclass __main__.TinyCNN; paths walk vars(module)"],
    )
    # legacy: state_dict + a view into one of its tensors + an int
    legacy_obj = {"state_dict": sd, "view": sd["fc.weight"][1:3], "epoch": 7}
    torch_save_truth(out_dir, "legacy.pt", legacy_obj, legacy=True)


def protocol_payload():
    seed(4)
    return {
        "weights": torch.randn(3, 4),
        "ids": torch.arange(5),
        "name": "protocol test ünïcode",
        "nested": [[1, 2, [3.5, "x", torch.tensor([1.0, 2.0])]], {"inner": torch.randn(2).half()}],
        "tags": ["a", "b"],
    }


def sample_protocols(out_dir):
    torch_save_truth(out_dir, "protocol4.pt", protocol_payload(), protocol=4)
    torch_save_truth(out_dir, "protocol5.pt", protocol_payload(), protocol=5)
    try:
        torch_save_truth(
            out_dir,
            "legacy_protocol4.pt",
            protocol_payload(),
            protocol=4,
            legacy=True,
            extra_notes=["legacy stream written with protocol 4: the magic-number pickle starts 80 04 95 (FRAME), not 80 02 8A 0A"],
        )
    except Exception as e:  # pragma: no cover
        print("legacy_protocol4.pt refused: %r" % (e,), file=sys.stderr)


def sample_torchscript(out_dir):
    fname = "torchscript.pt"
    path = os.path.join(out_dir, fname)
    seed(5)
    m = torch.jit.script(ScriptedNet())
    torch.jit.save(m, path)
    loaded = torch.jit.load(path, map_location="cpu")
    truth = base_truth(fname, "torchscript")
    params = {n for n, _ in loaded.named_parameters()}
    w = Walker(with_keys=False)
    for name, t in loaded.state_dict(keep_vars=True).items():
        w.record(name.split("."), t)
        w.tensors[-1]["parameter"] = name in params
    truth["tensors"] = w.tensors
    with zipfile.ZipFile(path) as z:
        names = [n.split("/", 1)[1] for n in z.namelist()]
    consts = sorted(n for n in names if n.startswith("constants/"))
    truth["notes"] = [
        "paths are torch.jit.load(...).state_dict(keep_vars=True) names split on '.'",
        "parameter = name in named_parameters() (torch.jit.load returns plain Tensors, never nn.Parameter)",
        "constants.pkl holds %d tensor constant(s) (%s): float32 [3] = [0.5, -1.0, 2.0], sha256 %s; not listed in tensors"
        % (len(consts), ", ".join(consts), sha256_tensor(_TS_CONST)),
    ]
    write_truth(out_dir, fname, truth)


def sample_dtypes(out_dir):
    floats = [0.0, 1.0, -2.5, 0.1, 3.0]
    values = {
        "float16": floats,
        "bfloat16": floats,
        "float32": floats,
        "float64": floats,
        "complex32": [1 + 2j, -0.5j, 3.0],
        "complex64": [1 + 2j, -0.5j, 3.0],
        "complex128": [1 + 2j, -0.5j, 3.0],
        "bool": [True, False, True],
        "int8": [-128, -1, 0, 1, 127],
        "int16": [-32768, -1, 0, 1, 32767],
        "int32": [-(2**31), -1, 0, 1, 2**31 - 1],
        "int64": [-(2**63), -1, 0, 1, 2**63 - 1],
        "uint8": [0, 1, 128, 255],
        "uint16": [0, 1, 32768, 65535],
        "uint32": [0, 1, 2**31, 2**32 - 1],
        "uint64": [0, 1, 2**63, 2**64 - 1],
        "float8_e4m3fn": floats,
        "float8_e5m2": floats,
        "float8_e4m3fnuz": floats,
        "float8_e5m2fnuz": floats,
        "float8_e8m0fnu": [1.0, 2.0, 0.5, 4.0, 0.25],
        "float4_e2m1fn_x2": None,  # packed 2 values/byte: built from raw bytes
    }
    notes = []
    obj = {}
    for name, vals in values.items():
        dt = getattr(torch, name, None)
        if dt is None:
            notes.append("dtype %s does not exist in torch %s" % (name, torch.__version__))
            continue
        try:
            if vals is None:
                t = torch.tensor([0x12, 0x34, 0xAB], dtype=torch.uint8).view(dt)
            elif name.startswith("float8") or name == "complex32":
                src = torch.tensor(vals, dtype=torch.complex64 if name == "complex32" else torch.float32)
                t = src.to(dt)
            else:
                t = torch.tensor(vals, dtype=dt)
            buf = io.BytesIO()
            torch.save({name: t}, buf)
            buf.seek(0)
            torch.load(buf, weights_only=False)
        except Exception as e:
            notes.append("torch.save/load refused %s: %s: %s" % (name, type(e).__name__, str(e).splitlines()[0][:160]))
            continue
        obj[name] = t
    obj["float32_2d"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    torch_save_truth(out_dir, "dtypes.pt", obj, extra_notes=notes)


def sample_views(out_dir):
    seed(7)
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tied = torch.randn(3, 3)
    obj = collections.OrderedDict()
    obj["a"] = a
    obj["a_row1"] = a[1]
    obj["a_t"] = a.t()
    obj["a_cols"] = a[:, 1:]
    obj["transposed"] = torch.randn(4, 5).transpose(0, 1)
    obj["permuted3d"] = torch.arange(24, dtype=torch.int16).reshape(2, 3, 4).permute(2, 0, 1)
    obj["offset_slice"] = torch.arange(10, dtype=torch.int64)[3:7]
    obj["scalar0d"] = torch.tensor(3.5, dtype=torch.float64)
    obj["empty"] = torch.zeros(0, 3)
    obj["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)
    obj["tied_a"] = tied
    obj["tied_b"] = tied
    obj["param"] = nn.Parameter(torch.randn(2, 2))
    obj["param_frozen"] = nn.Parameter(torch.randn(2), requires_grad=False)
    obj["requires_grad_tensor"] = torch.ones(2, requires_grad=True)
    torch_save_truth(out_dir, "views.pt", obj)


def sample_quantized(out_dir):
    seed(8)
    x = torch.randn(3, 4)
    obj = collections.OrderedDict()
    obj["per_tensor_quint8"] = torch.quantize_per_tensor(x, 0.1, 10, torch.quint8)
    obj["per_tensor_qint8"] = torch.quantize_per_tensor(x, 0.05, -3, torch.qint8)
    obj["per_tensor_qint32"] = torch.quantize_per_tensor(x, 0.001, 0, torch.qint32)
    obj["per_channel_qint8"] = torch.quantize_per_channel(
        x, torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), torch.tensor([0, 1, -2]), 0, torch.qint8
    )
    obj["dense"] = x
    notes = [
        "per-channel scales/zero_points are pickled as separate float64/int64 tensors (own storages) "
        "inside the quantizer params; they are not listed in tensors"
    ]
    torch_save_truth(out_dir, "quantized.pt", obj, extra_notes=notes)


def sample_sparse(out_dir):
    seed(9)
    idx = torch.tensor([[0, 1, 1, 2, 0], [2, 0, 0, 1, 2]])
    val = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    s = torch.sparse_coo_tensor(idx, val, (3, 3))
    obj = collections.OrderedDict()
    obj["sparse"] = s
    # coalesce() over-allocates its indices/values buffers (uninitialised tail bytes would make the file
    # differ on every run): rebuild from compact clones and mark as coalesced.
    c = s.coalesce()
    sc = torch.sparse_coo_tensor(c._indices().clone(), c._values().clone(), (3, 3))
    sc._coalesced_(True)
    obj["sparse_coalesced"] = sc
    obj["dense"] = torch.randn(2, 2)
    notes = [
        "sparse entries: stride/offset/storage/storageGroup are null; sha256 is of to_dense() (duplicates summed; "
        "values are small integers so the sum is exact); sparse.indices/values also carry storage and storageGroup",
    ]
    torch_save_truth(out_dir, "sparse.pt", obj, extra_notes=notes)


def sample_python_values(out_dir):
    obj = collections.OrderedDict()
    obj["np_f32"] = np.arange(6, dtype=np.float32).reshape(2, 3)
    obj["np_i64"] = np.array([1, -2, 3], dtype=np.int64)
    obj["np_f64_scalar"] = np.float64(2.5)
    obj["np_i64_scalar"] = np.int64(-7)
    obj["big_pos"] = 2**70
    obj["big_neg"] = -(2**70)
    obj["minus_one"] = -1
    obj["a_set"] = {1, 2, 3}
    obj["a_frozenset"] = frozenset([4, 5, 6])
    obj["bytes"] = b"\x00\x01binary\xff"
    obj["bytearray"] = bytearray(b"abc\x00")
    obj["strings"] = ["héllo", "日本", "emoji 😀"]
    obj["floats"] = [1.5, -0.0, float("nan"), float("inf"), float("-inf")]
    obj["none"] = None
    obj["flag_true"] = True
    obj["flag_false"] = False
    obj["nested"] = (1, [2, (3, "four")], {"five": 5.0})
    obj["int_keys"] = {1: "one", 7: torch.arange(4, dtype=torch.int32), -3: None}
    obj["tuple_keys"] = {(1, 2): "pair", ("a", 0): "mixed"}
    torch_save_truth(out_dir, "python_values.pt", obj)


def sample_parameter_with_state(out_dir):
    seed(10)
    p = nn.Parameter(torch.randn(2, 3))
    p.note = "extra python attribute"
    p.meta = {"lr_scale": 0.5}
    buf = io.BytesIO()
    torch.save(p, buf)
    if b"_rebuild_parameter_with_state" not in buf.getvalue():
        print("parameter_with_state.pt skipped: torch does not use _rebuild_parameter_with_state", file=sys.stderr)
        return
    obj = {"weight": p, "plain": torch.ones(2)}
    truth = torch_save_truth(
        out_dir,
        "parameter_with_state.pt",
        obj,
        extra_notes=["'weight' is pickled via torch._utils._rebuild_parameter_with_state with state {'note': ..., 'meta': {...}}"],
    )
    return truth


def safetensors_header(path):
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8"), object_pairs_hook=collections.OrderedDict)


def sample_safetensors(out_dir):
    from safetensors.torch import load_file, save_file

    seed(11)
    tensors = collections.OrderedDict()
    tensors["embed.weight"] = torch.randn(4, 3)
    tensors["embed.weight_f16"] = torch.randn(2, 3).half()
    tensors["layer.bf16"] = torch.randn(5).bfloat16()
    tensors["layer.f64"] = torch.randn(2, 2, dtype=torch.float64)
    tensors["ids"] = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    tensors["mask"] = torch.tensor([True, False, True])
    tensors["bytes_u8"] = torch.tensor([0, 127, 255], dtype=torch.uint8)
    tensors["i32"] = torch.tensor([-1, 2**31 - 1], dtype=torch.int32)
    tensors["scalar"] = torch.tensor(2.5)
    tensors["empty"] = torch.zeros(0, 4)
    for name, dt in (("f8_e4m3", "float8_e4m3fn"), ("f8_e5m2", "float8_e5m2")):
        if hasattr(torch, dt):
            tensors[name] = torch.tensor([1.0, -2.0, 0.5]).to(getattr(torch, dt))
    if hasattr(torch, "uint16"):
        tensors["u16"] = torch.tensor([0, 65535], dtype=torch.uint16)

    def emit(fname, tensors, metadata):
        path = os.path.join(out_dir, fname)
        # safetensors keeps __metadata__ in a Rust HashMap, so its key order in the header is random per
        # call; re-save until it comes out sorted so the file bytes are reproducible.
        for _attempt in range(200):
            save_file(dict(tensors), path, metadata=metadata)
            if metadata is None or list(safetensors_header(path).get("__metadata__", {})) == sorted(metadata):
                break
        else:
            raise RuntimeError("could not get a sorted __metadata__ order from safetensors")
        os.chmod(path, 0o644)  # safetensors creates files 0600
        loaded = load_file(path)
        truth = base_truth(fname, "safetensors")
        w = Walker(with_keys=False)
        for i, (name, t) in enumerate(loaded.items()):
            rec = collections.OrderedDict()
            rec["path"] = [name]
            rec["dtype"] = dtype_name(t.dtype)
            rec["shape"] = list(t.shape)
            rec["stride"] = list(t.stride())
            rec["offset"] = t.storage_offset()
            rec["storage"] = {"key": name, "device": str(t.device), "sizeBytes": t.numel() * t.element_size()}
            rec["storageGroup"] = i
            rec["requiresGrad"] = bool(t.requires_grad)
            rec["parameter"] = False
            rec["layout"] = "strided"
            rec["sha256"] = sha256_tensor(t)
            assert rec["offset"] == 0 and t.is_contiguous()
            w.tensors.append(rec)
        truth["tensors"] = w.tensors
        truth["notes"] = [
            "tensors listed in safetensors.torch.load_file order (= header/data-offset order: dtype alignment "
            "descending, then name)",
            "storageGroup: one per tensor (each tensor is its own storage; zero-size tensors may share a data_ptr "
            "with a neighbour in the mmap)",
            "__metadata__: %s" % (json.dumps(metadata, sort_keys=True) if metadata is not None else "absent"),
        ]
        truth["metadata"] = metadata
        write_truth(out_dir, fname, truth)

    emit("model.safetensors", tensors, {"format": "pt", "note": "ckpt sample"})
    small = collections.OrderedDict((k, tensors[k]) for k in ("embed.weight", "ids", "layer.bf16"))
    emit("empty_metadata.safetensors", small, None)


SAMPLES = collections.OrderedDict(
    [
        ("training", lambda d: sample_training(d)),
        ("protocols", lambda d: sample_protocols(d)),
        ("torchscript", lambda d: sample_torchscript(d)),
        ("dtypes", lambda d: sample_dtypes(d)),
        ("views", lambda d: sample_views(d)),
        ("quantized", lambda d: sample_quantized(d)),
        ("sparse", lambda d: sample_sparse(d)),
        ("python_values", lambda d: sample_python_values(d)),
        ("parameter_with_state", lambda d: TORCH2 and sample_parameter_with_state(d)),
        ("safetensors", lambda d: TORCH2 and _safetensors_if_installed(d)),
    ]
)


def _safetensors_if_installed(out_dir):
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        print("safetensors not installed: skipping *.safetensors", file=sys.stderr)
        return
    sample_safetensors(out_dir)


def main():
    args = sys.argv[1:]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1 :]
        args = args[:i]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Reproducible output: str hashing is randomised per process; TorchScript code generation orders
        # Final attributes by it and sets pickle in hash order. Re-run with a fixed seed.
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    out_dir = args[0]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    import make_samples_extra as extra  # new samples (training layouts, old pickles, TorchScript, packed params)

    samples = collections.OrderedDict(SAMPLES)
    samples.update(extra.SAMPLES)
    names = list(samples) if only is None else only
    for name in names:
        if name not in samples:
            raise SystemExit("unknown sample %r (known: %s)" % (name, ", ".join(samples)))
        samples[name](out_dir)
    print("wrote samples to %s" % out_dir)


if __name__ == "__main__":
    main()
