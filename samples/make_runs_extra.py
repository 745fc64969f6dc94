#!/usr/bin/env python3
"""More run directories for `ckpt` (imported by make_runs.py, which runs as __main__; `--only NAME`).

Frameworks that do not install here, reproduced from their source (save AND resume logic transcribed, framework
classes that end up in pickles recreated under their real module names, files written with real torch.save,
resume established by running the transcription on a copy of the run dir):

  ultralytics/ultralytics ultralytics/engine/trainer.py @ 00016300 (save_model, check_resume, resume_training,
      _load_checkpoint_state, final_eval, build_optimizer), ultralytics/utils/torch_utils.py @ 0009995d (ModelEMA,
      strip_optimizer, convert_optimizer_state_dict_to_fp16), ultralytics/utils/files.py get_latest_run
      (glob '**/last*.pt', max by os.path.getctime), load_checkpoint in ultralytics/nn/tasks.py
      ((ckpt.get('ema') or ckpt['model']).float(), args = {**DEFAULT_CFG_DICT, **ckpt['train_args']})
  pytorch/vision references/classification/train.py @ 017e9b99 (checkpoint dict, model_{epoch}.pth +
      checkpoint.pth via utils.save_on_master, --resume: start_epoch = checkpoint['epoch'] + 1); the scaler key
      ('if scaler: checkpoint["scaler"] = scaler.state_dict()') is from newer copies (conventions.md section 11)
  open-mmlab/mmcv (1.x runner) mmcv/runner/epoch_based_runner.py @ 00f732b, iter_based_runner.py @ 0097287,
      base_runner.py @ 0097287 (resume), checkpoint.py save_checkpoint (meta.update(mmcv_version, time=asctime),
      open(..., 'wb') + torch.save + flush); open-mmlab/mmdetection mmdet/utils/misc.py @ 0144425
      (find_latest_checkpoint: latest.pth if it exists, else max of int(name.split('_')[-1].split('.')[0]))
  allenai/allennlp allennlp/training/checkpointer.py @ 10b1b8c (model_state_e{E}_b{B}.th +
      training_state_e{E}_b{B}.th, keep_most_recent_by_count, _find_latest_checkpoint over model_state files
      only), allennlp/training/gradient_descent_trainer.py @ 048c300 (get_checkpoint_state, _restore_checkpoint,
      best.th), MetricTracker.state_dict (allennlp/training/metric_tracker.py)
"""

import collections
import copy
import datetime
import glob
import io
import json
import math
import os
import shutil
import sys
import types

import numpy as np


def R():
    return sys.modules["__main__"]


def _torch():
    return R()._torch()


# ----------------------------------------------------------------------------------------------
# ultralytics YOLO (built by hand from the source)
# ----------------------------------------------------------------------------------------------

UL_VERSION = "8.4.0"
UL_REF = "reference: ultralytics/ultralytics engine/trainer.py @ 00016300 + utils/torch_utils.py @ 0009995d + utils/files.py get_latest_run (ultralytics version written: %s)" % UL_VERSION

# a subset of ultralytics/cfg/default.yaml (the real file has ~110 keys; these are the ones train_args usually shows)
UL_DEFAULT_CFG = collections.OrderedDict(
    [
        ("task", "detect"), ("mode", "train"), ("model", None), ("data", None), ("epochs", 100), ("time", None),
        ("patience", 100), ("batch", 16), ("imgsz", 640), ("save", True), ("save_period", -1), ("cache", False),
        ("device", None), ("workers", 8), ("project", None), ("name", None), ("exist_ok", False), ("pretrained", True),
        ("optimizer", "auto"), ("verbose", True), ("seed", 0), ("deterministic", True), ("single_cls", False),
        ("rect", False), ("cos_lr", False), ("close_mosaic", 10), ("resume", False), ("amp", True), ("fraction", 1.0),
        ("freeze", None), ("val", True), ("plots", True), ("lr0", 0.01), ("lrf", 0.01), ("momentum", 0.937),
        ("weight_decay", 0.0005), ("warmup_epochs", 3.0), ("warmup_momentum", 0.8), ("warmup_bias_lr", 0.1),
        ("box", 7.5), ("cls", 0.5), ("dfl", 1.5), ("nbs", 64), ("mosaic", 1.0),
    ]
)


def ul_classes():
    torch = _torch()
    nn = torch.nn

    class IterableSimpleNamespace(types.SimpleNamespace):
        def __iter__(self):
            return iter(vars(self).items())

        def get(self, key, default=None):
            return getattr(self, key, default)

    class Conv(nn.Module):
        default_act = nn.SiLU()

        def __init__(self, c1, c2, k=1, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2)
            self.act = self.default_act

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Detect(nn.Module):
        dynamic = False
        export = False

        def __init__(self, nc=2, ch=(8,)):
            super().__init__()
            self.nc = nc
            self.nl = len(ch)
            self.reg_max = 1
            self.no = nc + self.reg_max * 4
            self.stride = torch.zeros(self.nl)
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, 4, 3), nn.Conv2d(4, 4 * self.reg_max, 1)) for x in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, 4, 3), nn.Conv2d(4, nc, 1)) for x in ch)
            self.dfl = nn.Identity()
            self.shape = None
            self.anchors = torch.empty(0)
            self.strides = torch.empty(0)

        def forward(self, x):
            return [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]

    class DetectionModel(nn.Module):
        def __init__(self, nc=2):
            super().__init__()
            self.yaml = {"nc": nc, "backbone": [[-1, 1, "Conv", [4, 3, 2]], [-1, 1, "Conv", [8, 3, 2]]], "head": [[[1], 1, "Detect", ["nc"]]], "yaml_file": "yolo-tiny.yaml", "channels": 3}
            layers = [Conv(3, 4, 3, 2), Conv(4, 8, 3, 2), Detect(nc, (8,))]
            for i, m in enumerate(layers):  # parse_model attaches these to every layer
                m.i, m.f, m.type = i, -1 if i < 2 else [1], "ultralytics.nn.modules.%s" % ("conv.Conv" if i < 2 else "head.Detect")
                m.np = sum(p.numel() for p in m.parameters())
            self.model = nn.Sequential(*layers)
            self.save = [1]
            self.names = {i: "class%d" % i for i in range(nc)}
            self.inplace = True
            self.end2end = False
            self.stride = torch.tensor([4.0])
            self.model[-1].stride = self.stride

        def forward(self, x):
            return self.model[2]([self.model[1](self.model[0](x))])

    fake = R().fake_module
    fake("ultralytics.utils", [IterableSimpleNamespace])
    fake("ultralytics.nn.modules.conv", [Conv])
    fake("ultralytics.nn.modules.head", [Detect])
    fake("ultralytics.nn.tasks", [DetectionModel])
    return IterableSimpleNamespace, DetectionModel


class UlModelEMA:
    """ultralytics.utils.torch_utils.ModelEMA (transcribed): deepcopy(model).eval(), decay ramp, updates."""

    def __init__(self, model, decay=0.9999, tau=2000, updates=0):
        self.ema = copy.deepcopy(model).eval()
        self.updates = updates
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        torch = _torch()
        with torch.no_grad():
            self.updates += 1
            d = self.decay(self.updates)
            msd = model.state_dict()
            for k, v in self.ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v *= d
                    v += (1 - d) * msd[k].detach()

    def update_attr(self, model, include=()):
        for k, v in model.__dict__.items():
            if (len(include) and k not in include) or k.startswith("_"):
                continue
            setattr(self.ema, k, v)


def ul_build_optimizer(model, lr, momentum, decay, nc):
    """BaseTrainer.build_optimizer(name='auto') for few iterations: AdamW(lr_fit), 3 param groups."""
    torch = _torch()
    nn = torch.nn
    g = [{}, {}, {}]
    bn = tuple(v for k, v in nn.__dict__.items() if "Norm" in k)
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            fullname = "%s.%s" % (module_name, param_name) if module_name else param_name
            if "bias" in fullname:
                g[2][fullname] = param
            elif isinstance(module, bn) or "logit_scale" in fullname:
                g[1][fullname] = param
            else:
                g[0][fullname] = param
    g = [list(x.values()) for x in g]
    lr_fit = round(0.002 * 5 / (4 + nc), 6)
    optim_args = {"lr": lr_fit, "betas": (momentum, 0.999), "weight_decay": 0.0}
    g[2] = {"params": g[2], **optim_args, "param_group": "bias"}
    g[0] = {"params": g[0], **optim_args, "weight_decay": decay, "param_group": "weight"}
    g[1] = {"params": g[1], **optim_args, "weight_decay": 0.0, "param_group": "bn"}
    return torch.optim.AdamW(params=g), lr_fit


def ul_fp16_optimizer(sd):
    torch = _torch()
    for state in sd["state"].values():
        for k, v in state.items():
            if k != "step" and isinstance(v, torch.Tensor) and v.dtype is torch.float32:
                state[k] = v.half()
    return sd


def ul_train(root, epochs, kill_after_epoch=None, save_period=-1, fitness=(0.12, 0.31, 0.27, 0.35, 0.4)):
    """BaseTrainer._do_train + save_model + final_eval (strip_optimizer), on a tiny DetectionModel, CPU (amp off)."""
    torch = _torch()
    IterableSimpleNamespace, DetectionModel = ul_classes()
    R().seed_all(0)
    save_dir = os.path.join(root, "runs", "detect", "train")
    wdir = os.path.join(save_dir, "weights")
    os.makedirs(wdir)
    args = collections.OrderedDict(UL_DEFAULT_CFG)
    args.update(model="yolo-tiny.yaml", data="coco8.yaml", epochs=epochs, batch=4, imgsz=16, save_period=save_period,
                device="cpu", workers=0, project=None, name="train", amp=True)
    args["save_dir"] = "runs/detect/train"
    args = IterableSimpleNamespace(**args)
    nc = 2
    model = DetectionModel(nc)
    model.nc, model.names, model.args = nc, model.names, args  # DetectionTrainer.set_model_attributes
    with open(os.path.join(save_dir, "args.yaml"), "w") as f:
        import yaml

        f.write(yaml.safe_dump({k: v for k, v in vars(args).items()}, sort_keys=False))
    amp = False  # check_amp() is False on CPU: GradScaler('cuda', enabled=False)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    nb = 2
    accumulate = 1
    weight_decay = args.weight_decay * args.batch * accumulate / args.nbs
    optimizer, lr_fit = ul_build_optimizer(model, args.lr0, args.momentum, weight_decay, nc)
    lf = lambda x: max(1 - x / epochs, 0) * (1.0 - args.lrf) + args.lrf  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    ema = UlModelEMA(model)
    best_fitness = None
    start_epoch = 0
    scheduler.last_epoch = start_epoch - 1
    nw = round(min(args.warmup_epochs, max(epochs - 1, 0)) * nb)
    results = []
    g = torch.Generator().manual_seed(0)
    metrics_keys = ["metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss", "val/dfl_loss"]
    for epoch in range(start_epoch, epochs):
        scheduler.step()
        model.train()
        for i in range(nb):
            ni = i + nb * epoch
            if ni < nw:
                for x in optimizer.param_groups:
                    x["lr"] = float(np.interp(ni, [0, nw], [args.warmup_bias_lr if x.get("param_group") == "bias" else 0.0, x["initial_lr"] * lf(epoch)]))
            img = torch.randn(4, 3, 16, 16, generator=g)
            out = model(img)[0]
            loss = (out ** 2).mean()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
            ema.update(model)
        lr = {"lr/pg%d" % ir: x["lr"] for ir, x in enumerate(optimizer.param_groups)}
        ema.update_attr(model, include=["yaml", "nc", "args", "names", "stride", "class_weights"])
        fit = fitness[epoch]
        metrics = collections.OrderedDict((k, round(fit * (j + 1) / 8, 5)) for j, k in enumerate(metrics_keys))
        if best_fitness is None or best_fitness < fit:
            best_fitness = fit
        row = collections.OrderedDict([("epoch", epoch + 1), ("time", 1.5 * (epoch + 1)), ("train/box_loss", round(float(loss), 5)), ("train/cls_loss", 1.0), ("train/dfl_loss", 1.0)])
        row.update(metrics)
        row.update({k: round(v, 6) for k, v in lr.items()})
        results.append(row)
        with open(os.path.join(save_dir, "results.csv"), "w") as f:
            f.write(",".join(results[0].keys()) + "\n")
            for r in results:
                f.write(",".join("%.6g" % v for v in r.values()) + "\n")
        # save_model()
        e = copy.deepcopy(ema.ema).half().to(memory_format=torch.contiguous_format)
        for v in e.state_dict().values():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                torch.nan_to_num_(v)
        train_results = collections.OrderedDict((k, [r[k] for r in results]) for k in results[0])
        ck = {
            "epoch": epoch,
            "best_fitness": best_fitness,
            "model": None,
            "ema": e,
            "updates": ema.updates,
            "modelopt": None,  # qat_state(ema): None for a model without QAT layers
            "optimizer": ul_fp16_optimizer(copy.deepcopy(optimizer.state_dict())),
            "scaler": scaler.state_dict(),
            "train_args": vars(args),
            "train_metrics": {**metrics, "fitness": fit},
            "train_results": dict(train_results),
            "date": "2025-01-01T00:%02d:00+00:00" % (epoch + 1),
            "version": UL_VERSION,
            "git": {"root": None, "branch": None, "commit": None, "message": None, "origin": None},
            "license": "AGPL-3.0 (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
        }
        buffer = io.BytesIO()
        torch.save(ck, buffer)
        data = buffer.getvalue()
        with open(os.path.join(wdir, "last.pt"), "wb") as f:
            f.write(data)
        if best_fitness == fit:
            with open(os.path.join(wdir, "best.pt"), "wb") as f:
                f.write(data)
        if save_period > 0 and epoch % save_period == 0:
            with open(os.path.join(wdir, "epoch%d.pt" % epoch), "wb") as f:
                f.write(data)
        if kill_after_epoch is not None and epoch == kill_after_epoch:
            return {"killedDuringEpoch": epoch + 1, "bestFitness": best_fitness, "lrFit": lr_fit}
    # final_eval(): strip_optimizer(last.pt); strip_optimizer(best.pt, updates={'train_results': ...})
    ck = ul_strip_optimizer(os.path.join(wdir, "last.pt"))
    ul_strip_optimizer(os.path.join(wdir, "best.pt"), updates={"train_results": ck.get("train_results")})
    return {"finished": True, "bestFitness": best_fitness, "lrFit": lr_fit}


def ul_strip_optimizer(f, updates=None):
    torch = _torch()
    x = torch.load(f, map_location=torch.device("cpu"), weights_only=False)  # ultralytics torch_load
    metadata = {
        "date": "2025-01-01T01:00:00",
        "version": UL_VERSION,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
    }
    if x.get("ema"):
        x["model"] = x["ema"]
    if hasattr(x["model"], "args"):
        x["model"].args = dict(x["model"].args)
    if hasattr(x["model"], "criterion"):
        x["model"].criterion = None
    x["model"].half()
    for p in x["model"].parameters():
        p.requires_grad = False
    args = {**UL_DEFAULT_CFG, **x.get("train_args", {})}
    for k in "optimizer", "best_fitness", "ema", "updates", "scaler":
        x[k] = None
    x["epoch"] = -1
    x["train_args"] = {k: v for k, v in args.items() if k in UL_DEFAULT_CFG}
    combined = {**metadata, **x, **(updates or {})}
    torch.save(combined, f)
    return combined


def ul_resume(root):
    """yolo train resume=True from the project dir: check_resume (get_latest_run, load_checkpoint), setup_model,
    resume_training (start_epoch, the assert), _load_checkpoint_state."""
    torch = _torch()
    ul_classes()
    cwd = os.getcwd()
    os.chdir(root)
    out = collections.OrderedDict()
    try:
        last_list = glob.glob("./**/last*.pt", recursive=True)
        last = max(last_list, key=os.path.getctime) if last_list else ""
        out["picked"] = last
        if not last:
            out["error"] = "FileNotFoundError: Resume checkpoint not found. Please pass a valid checkpoint to resume from, i.e. 'yolo train resume model=path/to/last.pt'"
            return out
        ckpt = torch.load(last, map_location="cpu", weights_only=False)  # ultralytics.utils.patches.torch_load
        model = (ckpt.get("ema") or ckpt["model"]).float()
        args = {**UL_DEFAULT_CFG, **ckpt.get("train_args", {})}
        epochs = args["epochs"] or 100
        start_epoch = ckpt.get("epoch", -1) + 1
        try:
            assert 0 < start_epoch < epochs, (
                f"{last} training to {epochs} epochs is finished, nothing to resume.\n"
                f"Start a new training without resuming, i.e. 'yolo train model={last}'"
            )
        except AssertionError as e:
            out["error"] = "AssertionError: " + str(e).splitlines()[0]
            out["startEpoch"] = start_epoch
            return out
        _, DetectionModel = ul_classes()
        fresh = DetectionModel(args.get("nc", 2) if False else 2)
        fresh.load_state_dict(model.state_dict())
        optimizer, _ = ul_build_optimizer(fresh, 0.01, args["momentum"], args["weight_decay"] * args["batch"] / args["nbs"], 2)
        restored = ["model"]
        if ckpt.get("optimizer") is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            restored.append("optimizer")
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        if ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        ema = UlModelEMA(fresh)
        if ckpt.get("ema"):
            ema.ema.load_state_dict(ckpt["ema"].float().state_dict())
            ema.updates = ckpt["updates"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda x: 1.0)
        scheduler.last_epoch = start_epoch - 1  # the scheduler is not saved: reset from start_epoch
        restored += ["scheduler", "counter"]
        out.update(startEpoch=start_epoch, epochs=epochs, optimizerStateEntries=len(optimizer.state),
                   optimizerStateDtype=str(next(iter(optimizer.state.values()))["exp_avg"].dtype), emaUpdates=ema.updates,
                   bestFitness=ckpt.get("best_fitness"), restored=restored,
                   log="Resuming training %s from epoch %d to %d total epochs" % (last, start_epoch + 1, epochs))
        return out
    finally:
        os.chdir(cwd)


def build_ultralytics_run():
    name = "ultralytics_run"
    d = R().run_dir(name)
    os.makedirs(d)
    tr = ul_train(d, epochs=5, kill_after_epoch=2, save_period=2)
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(ul_resume(dst), dst, d)
    finally:
        shutil.rmtree(tmp)
    assert res.get("startEpoch") == 3 and "error" not in res, res
    w = "runs/detect/train/weights/"
    R().write_truth(
        name, "ultralytics", "reference", UL_REF, None,
        collections.OrderedDict(
            file=w + "last.pt", outcome="resumes", startsAt=3, counterName="epoch",
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            notes="yolo train resume=True (model=None): check_resume -> get_latest_run() = max(glob('./**/last*.pt', recursive=True), key=os.path.getctime) = %s; load_checkpoint: model = (ckpt['ema'] or ckpt['model']).float(), args rebuilt from ckpt['train_args'] (epochs=5); resume_training: start_epoch = epoch + 1 = 3, assert 0 < 3 < 5 passes; 'Resuming training ... from epoch 4 to 5 total epochs'; _load_checkpoint_state loads optimizer (fp16 exp_avg/exp_avg_sq cast back to fp32 by Optimizer.load_state_dict), scaler ({} - amp is off on CPU), EMA (updates=%d), best_fitness; the LR scheduler is not saved: scheduler.last_epoch = start_epoch - 1. The run was killed during epoch index 3; last.pt is not written atomically (Path.write_bytes). Git does not keep ctimes: with several last*.pt the choice depends on the checkout." % (res["picked"], res["emaUpdates"]),
            observed=res,
        ),
        collections.OrderedDict(file=w + "last.pt", startsAt=3, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="last.pt = epoch index 2 done (epoch 2 stored = last finished 0-based epoch; start_epoch = 3); best.pt is epoch %s (best fitness 0.31), epoch2.pt is a save_period copy of the same state as last.pt, epoch0.pt is older" % 1),
        extra={"files": R().lightning_files(d), "training": tr, "observed": R().weights_only_probe(os.path.join(d, w + "last.pt"))},
    )


def build_ultralytics_finished():
    name = "ultralytics_finished"
    d = R().run_dir(name)
    os.makedirs(d)
    tr = ul_train(d, epochs=3)
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(ul_resume(dst), dst, d)
    finally:
        shutil.rmtree(tmp)
    assert "error" in res and res["startEpoch"] == 0, res
    w = "runs/detect/train/weights/"
    R().write_truth(
        name, "ultralytics", "reference", UL_REF, None,
        collections.OrderedDict(
            file=None, attempted=w + "last.pt", error=res["error"], outcome="crashes", startsAt=None, counterName="epoch",
            restores=[], resets=[],
            notes="training finished 3 of 3 epochs; final_eval ran strip_optimizer on last.pt and best.pt: model = the EMA module (fp16, requires_grad False, args a plain dict), optimizer/best_fitness/ema/updates/scaler = None, epoch = -1, train_args filtered to default keys, metadata (date, version, license, docs) first. resume=True: get_latest_run picks last.pt, start_epoch = -1 + 1 = 0, and resume_training's assert 0 < start_epoch < epochs raises %s" % res["error"],
            observed=res,
        ),
        collections.OrderedDict(file=None, startsAt=None, restores=[], resets=[], why="the run is finished and both files are stripped (no optimizer, EMA, updates, scaler; epoch -1): nothing to resume. To train longer start a new training from the weights ('yolo train model=runs/detect/train/weights/last.pt epochs=N'), which resets optimizer, schedule and counter."),
        extra={"files": R().lightning_files(d), "training": tr, "observed": R().weights_only_probe(os.path.join(d, w + "last.pt"))},
    )


# ----------------------------------------------------------------------------------------------
# torchvision references/classification/train.py (built by hand from the source)
# ----------------------------------------------------------------------------------------------

TV_REF = "reference: pytorch/vision references/classification/train.py @ 017e9b99 (checkpoint dict, save_on_master, --resume); scaler key as in newer copies"


def tv_args(output_dir, extra=()):
    import argparse

    p = argparse.ArgumentParser()
    for k, v in [("data_path", "/datasets01/imagenet_full_size/061417/"), ("model", "resnet18"), ("device", "cpu"), ("batch_size", 4), ("epochs", 5), ("workers", 0),
                 ("opt", "sgd"), ("lr", 0.1), ("momentum", 0.9), ("weight_decay", 1e-4), ("norm_weight_decay", None), ("label_smoothing", 0.0), ("mixup_alpha", 0.0),
                 ("cutmix_alpha", 0.0), ("lr_scheduler", "steplr"), ("lr_warmup_epochs", 0), ("lr_warmup_method", "constant"), ("lr_warmup_decay", 0.01),
                 ("lr_step_size", 2), ("lr_gamma", 0.1), ("print_freq", 10), ("output_dir", output_dir), ("resume", ""), ("start_epoch", 0)]:
        p.add_argument("--" + k.replace("_", "-"), dest=k, default=v, type=type(v) if v is not None else None)
    for k in ("cache_dataset", "sync_bn", "test_only", "pretrained", "amp", "model_ema", "use_deterministic_algorithms"):
        p.add_argument("--" + k.replace("_", "-"), dest=k, action="store_true")
    p.add_argument("--model-ema-steps", dest="model_ema_steps", type=int, default=32)
    p.add_argument("--model-ema-decay", dest="model_ema_decay", type=float, default=0.99998)
    p.add_argument("--world-size", dest="world_size", type=int, default=1)
    p.add_argument("--dist-url", dest="dist_url", default="env://")
    a = p.parse_args(list(extra))
    a.distributed = False  # utils.init_distributed_mode without RANK/WORLD_SIZE: "Not using distributed mode"
    return a


def tv_setup(args):
    torch = _torch()
    R().seed_all(0)
    model = R().tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    scaler = torch.amp.GradScaler("cpu") if args.amp else None  # train.py: torch.cuda.amp.GradScaler() (a no-op scaler without CUDA); CPU scaler here so the state is real
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step_size, gamma=args.lr_gamma)
    model_ema = None
    if args.model_ema:
        adjust = args.world_size * args.batch_size * args.model_ema_steps / args.epochs
        alpha = min(1.0, (1.0 - args.model_ema_decay) * adjust)
        decay = 1.0 - alpha

        def ema_avg(avg_model_param, model_param, num_averaged):
            return decay * avg_model_param + (1 - decay) * model_param

        # references/classification/utils.py ExponentialMovingAverage(torch.optim.swa_utils.AveragedModel)
        model_ema = torch.optim.swa_utils.AveragedModel(model, device="cpu", avg_fn=ema_avg, use_buffers=True)
    return model, optimizer, scaler, lr_scheduler, model_ema


def tv_train(root, extra, kill_after_epoch):
    torch = _torch()
    args = tv_args("./outputs/" + os.path.basename(root), extra)
    model, optimizer, scaler, lr_scheduler, model_ema = tv_setup(args)
    for epoch in range(args.start_epoch, args.epochs):
        for i in range(4):  # train_one_epoch
            x, y = R().toy_batch(epoch * 4 + i)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if model_ema and i % 2 == 0:  # model_ema_steps is 32 by default; every 2nd batch here so it updates
                model_ema.update_parameters(model)
        lr_scheduler.step()
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "epoch": epoch,
            "args": args,
        }
        if model_ema:
            checkpoint["model_ema"] = model_ema.state_dict()
        if scaler:
            checkpoint["scaler"] = scaler.state_dict()
        torch.save(checkpoint, os.path.join(root, f"model_{epoch}.pth"))  # utils.save_on_master -> torch.save
        torch.save(checkpoint, os.path.join(root, "checkpoint.pth"))
        if epoch == kill_after_epoch:
            return args


def tv_resume(root, extra):
    torch = _torch()
    args = tv_args("./outputs/" + os.path.basename(root), list(extra) + ["--resume", os.path.join(root, "checkpoint.pth")])
    model, optimizer, scaler, lr_scheduler, model_ema = tv_setup(args)
    out = collections.OrderedDict()
    try:
        torch.load(args.resume, map_location="cpu")  # train.py @ 017e9b99 as written, on torch >= 2.6 (weights_only=True)
        out["plainTorchLoad"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["plainTorchLoad"] = R().err_str(e)
    checkpoint = torch.load(args.resume, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    restored = ["model"]
    if not args.test_only:
        optimizer.load_state_dict(checkpoint["optimizer"])
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        restored += ["optimizer", "scheduler"]
    args.start_epoch = checkpoint["epoch"] + 1
    restored.append("counter")
    if model_ema:
        model_ema.load_state_dict(checkpoint["model_ema"])
        restored.append("ema")
    if scaler:
        scaler.load_state_dict(checkpoint["scaler"])
        restored.append("scaler")
    out.update(startEpoch=args.start_epoch, optimizerStateEntries=len(optimizer.state), schedulerLastEpoch=lr_scheduler.last_epoch,
               lr=optimizer.param_groups[0]["lr"], restored=restored)
    if model_ema:
        out["emaNAveraged"] = int(model_ema.n_averaged)
    if scaler:
        out["scalerScale"] = float(scaler.get_scale())
    return out


def _build_tv(name, extra, desc):
    d = R().run_dir(name)
    os.makedirs(d)
    tv_train(d, extra, kill_after_epoch=2)
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(tv_resume(dst, extra), dst, d)
    finally:
        shutil.rmtree(tmp)
    assert res["startEpoch"] == 3, res
    R().write_truth(
        name, "torchvision", "reference", TV_REF, None,
        collections.OrderedDict(
            file="checkpoint.pth", outcome="resumes", startsAt=3, counterName="epoch",
            restores=[r for r in res["restored"] if r in ("model", "optimizer", "scheduler", "counter")], resets=[],
            notes="%s torchvision has no auto-discovery: the user passes --resume output_dir/checkpoint.pth (a copy of the newest model_{epoch}.pth, same dict). train.py: model/optimizer/lr_scheduler.load_state_dict%s; args.start_epoch = checkpoint['epoch'] + 1 = 3 (epoch 2 is the last finished; killed during epoch 3 of 5). torch >= 2.6 caveat: train.py @ 017e9b99 calls torch.load(args.resume, map_location='cpu') with the weights_only=True default, which rejects the pickled argparse.Namespace 'args' (plainTorchLoad in observed); the transcription then loads with weights_only=False." % (desc, " + model_ema + scaler" if extra else ""),
            observed=res,
        ),
        collections.OrderedDict(file="checkpoint.pth", startsAt=3, restores=[r for r in res["restored"] if r in ("model", "optimizer", "scheduler", "counter")], resets=[],
                                why="checkpoint.pth holds epoch 2 (= model_2.pth): start_epoch = 3; model_0.pth/model_1.pth are older"),
        extra={"files": R().lightning_files(d), "args": list(extra), "observed": R().weights_only_probe(os.path.join(d, "checkpoint.pth"))},
    )


def build_torchvision_run():
    _build_tv("torchvision_run", [], "python train.py --output-dir ./outputs/torchvision_run --epochs 5 --lr-step-size 2 (SGD, StepLR).")


def build_torchvision_ema_amp():
    _build_tv("torchvision_ema_amp_run", ["--model-ema", "--amp"], "python train.py --model-ema --amp ...: the dict also holds model_ema (AveragedModel.state_dict(): n_averaged + module.*) and scaler (GradScaler.state_dict()).")


# ----------------------------------------------------------------------------------------------
# mmcv 1.x runner (EpochBasedRunner / IterBasedRunner), mmdet-style launch (built by hand)
# ----------------------------------------------------------------------------------------------

MMCV_VERSION, MMDET_VERSION = "1.7.2", "2.28.2"
MMCV_REF = "reference: open-mmlab/mmcv 1.x mmcv/runner/{epoch_based_runner,iter_based_runner,base_runner,checkpoint}.py + open-mmlab/mmdetection mmdet/utils/misc.py find_latest_checkpoint (mmcv_version written: %s)" % MMCV_VERSION


def mmcv_symlink(src, dst, overwrite=True):
    if os.path.lexists(dst) and overwrite:
        os.remove(dst)
    os.symlink(src, dst)


def mmcv_save_checkpoint(model, filename, optimizer, meta, asctime):
    torch = _torch()
    meta.update(mmcv_version=MMCV_VERSION, time=asctime)
    if getattr(model, "CLASSES", None) is not None:
        meta.update(CLASSES=model.CLASSES)
    checkpoint = {"meta": meta, "state_dict": collections.OrderedDict((k, v.cpu()) for k, v in model.state_dict().items())}
    checkpoint["optimizer"] = optimizer.state_dict()
    os.makedirs(os.path.dirname(filename), exist_ok=True)
    with open(filename, "wb") as f:
        torch.save(checkpoint, f)
        f.flush()


def mm_cfg_text(name, by_epoch, work_dir):
    runner = "dict(type='EpochBasedRunner', max_epochs=4)" if by_epoch else "dict(type='IterBasedRunner', max_iters=16)"
    ck = "dict(interval=1)" if by_epoch else "dict(interval=4, by_epoch=False)"
    return (
        "model = dict(type='TinyNet')\n"
        "optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)\n"
        "optimizer_config = dict(grad_clip=None)\n"
        "lr_config = dict(policy='step', step=[3]%s)\n"
        "runner = %s\n"
        "checkpoint_config = %s\n"
        "log_config = dict(interval=2, hooks=[dict(type='TextLoggerHook')])\n"
        "dist_params = dict(backend='nccl')\n"
        "log_level = 'INFO'\n"
        "load_from = None\n"
        "resume_from = None\n"
        "auto_resume = True\n"
        "workflow = [('train', 1)]\n"
        "work_dir = '%s'\n"
        "gpu_ids = [0]\n"
    ) % ("" if by_epoch else ", by_epoch=False", runner, ck, work_dir)


def mm_train(work_dir, by_epoch, kill_at):
    """EpochBasedRunner/IterBasedRunner.run with CheckpointHook, mmdet train_detector meta."""
    torch = _torch()
    R().seed_all(0)
    model = R().tiny_net()
    model.CLASSES = ("cat", "dog")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0001)
    cfg = mm_cfg_text(os.path.basename(work_dir), by_epoch, work_dir)
    with open(os.path.join(work_dir, "tiny_config.py"), "w") as f:
        f.write(cfg)  # mmdet tools/train.py: cfg.dump(osp.join(cfg.work_dir, osp.basename(args.config)))
    runner_meta = collections.OrderedDict([("env_info", "sys.platform: linux\nPython: 3.8.10\nPyTorch: 1.13.1\nMMCV: %s\nMMDetection: %s" % (MMCV_VERSION, MMDET_VERSION)),
                                           ("config", cfg), ("seed", 0), ("exp_name", "tiny_config.py")])
    hook_meta = {"mmdet_version": MMDET_VERSION + "+0000000", "CLASSES": ("cat", "dog")}  # cfg.checkpoint_config.meta
    log = []
    epoch, it = 0, 0
    nb = 4

    def save(filename_tmpl, count, asctime):
        meta = dict(hook_meta)
        if by_epoch:
            meta.update(epoch=epoch + 1, iter=it)
            meta.update(runner_meta)
        else:
            meta.update(runner_meta)
            meta.update(epoch=epoch + 1, iter=it)
        filename = filename_tmpl.format(count)
        mmcv_save_checkpoint(model, os.path.join(work_dir, filename), opt, meta, asctime)
        mmcv_symlink(filename, os.path.join(work_dir, "latest.pth"))
        runner_meta.setdefault("hook_msgs", dict())
        runner_meta["hook_msgs"]["last_ckpt"] = os.path.join(work_dir, filename)

    max_epochs, max_iters = 4, 16
    while True:
        for b in range(nb):
            x, y = R().toy_batch(it)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if not by_epoch:
                if it == kill_at:
                    return log
                it += 1
                epoch = it // nb  # IterLoader epoch: StopIteration every nb batches
                if it % 4 == 0:  # CheckpointHook(interval=4, by_epoch=False).after_train_iter
                    save("iter_{}.pth", it, "Wed Jan  1 00:%02d:00 2025" % it)
                    log.append("Saving checkpoint at %d iterations" % it)
            else:
                it += 1
        if by_epoch:
            log.append("Epoch [%d][%d/%d] lr: %.3e, loss: %.4f" % (epoch + 1, nb, nb, opt.param_groups[0]["lr"], loss.item()))
            save("epoch_{}.pth", epoch + 1, "Wed Jan  1 00:%02d:00 2025" % (epoch + 1))  # after_train_epoch, before _epoch += 1
            log.append("Saving checkpoint at %d epochs" % (epoch + 1))
            epoch += 1
            if epoch == kill_at:
                return log
            if epoch in (3,):  # StepLrUpdaterHook step=[3]
                for g in opt.param_groups:
                    g["lr"] *= 0.1


def mm_resume(work_dir, by_epoch):
    """mmdet apis/train.py: resume_from = find_latest_checkpoint(cfg.work_dir) with auto_resume; runner.resume(resume_from)."""
    torch = _torch()
    out = collections.OrderedDict()
    path = work_dir
    latest = None
    if os.path.exists(os.path.join(path, "latest.pth")):
        latest = os.path.join(path, "latest.pth")
    else:
        best = -1
        for c in glob.glob(os.path.join(path, "*.pth")):
            count = int(os.path.basename(c).split("_")[-1].split(".")[0])
            if count > best:
                best, latest = count, c
    out["resumeFrom"] = latest
    if latest is None:
        return out
    out["resolvesTo"] = os.path.realpath(latest)
    # mmcv load_checkpoint -> CheckpointLoader.load_from_local -> torch.load(filename, map_location) (torch >= 2.6: weights_only=True)
    checkpoint = torch.load(latest, map_location="cpu")
    model = R().tiny_net()
    model.load_state_dict(checkpoint["state_dict"])  # revise_keys [(r'^module.', '')]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0001)
    _epoch = checkpoint["meta"]["epoch"]
    _iter = checkpoint["meta"]["iter"]
    if "optimizer" in checkpoint:
        opt.load_state_dict(checkpoint["optimizer"])
    out.update(epoch=_epoch, iter=_iter, optimizerStateEntries=len(opt.state), log="resumed epoch %d, iter %d" % (_epoch, _iter))
    return out


def _build_mm(name, by_epoch, kill_at):
    d = R().run_dir(name)
    os.makedirs(d)
    log = mm_train(d, by_epoch, kill_at)
    with open(os.path.join(d, "20250101_000000.log"), "w") as f:
        f.write("\n".join(log) + "\n")
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(mm_resume(dst, by_epoch), dst, d)
    finally:
        shutil.rmtree(tmp)
    target = os.readlink(os.path.join(d, "latest.pth"))
    if by_epoch:
        assert res["epoch"] == 2 and target == "epoch_2.pth", (res, target)
        fr = collections.OrderedDict(
            file="epoch_2.pth", outcome="resumes", startsAt=2, counterName="epoch",
            restores=["model", "optimizer", "counter", "scheduler"], resets=[],
            notes="mmdet tools/train.py --auto-resume (mmdet.apis.train_detector): find_latest_checkpoint(work_dir) returns work_dir/latest.pth because it exists (a relative symlink written by mmcv.symlink -> epoch_2.pth); runner.resume: _epoch = meta.epoch = 2, _iter = meta.iter = 8, optimizer loaded ('resumed epoch 2, iter 8'); EpochBasedRunner.run continues while epoch < max_epochs (4) with the 3rd epoch. No scheduler state exists: StepLrUpdaterHook recomputes lr from runner.epoch. torch.load inside mmcv has no weights_only argument: on torch >= 2.6 weights_only=True, which accepts this file (meta holds only str/int/tuple/dict).",
            observed=res,
        )
        cr = collections.OrderedDict(file="epoch_2.pth", startsAt=2, restores=["model", "optimizer", "counter", "scheduler"], resets=[], why="latest.pth links to epoch_2.pth, the newest complete checkpoint (meta.epoch 2 = epochs completed)")
    else:
        assert res["iter"] == 8 and target == "iter_8.pth", (res, target)
        fr = collections.OrderedDict(
            file="iter_8.pth", outcome="resumes", startsAt=8, counterName="iter",
            restores=["model", "optimizer", "counter", "scheduler"], resets=[],
            notes="IterBasedRunner, CheckpointHook(interval=4, by_epoch=False): iter_4.pth, iter_8.pth (named iter + 1 after the 4th/8th iteration), latest.pth -> iter_8.pth; killed at iteration 10 of 16. --auto-resume: find_latest_checkpoint -> latest.pth; IterBasedRunner.resume: _iter = _inner_iter = meta.iter = 8, _epoch = meta.epoch (= IterLoader epoch + 1 at save time: 3); run() continues while iter < max_iters.",
            observed=res,
        )
        cr = collections.OrderedDict(file="iter_8.pth", startsAt=8, restores=["model", "optimizer", "counter", "scheduler"], resets=[], why="latest.pth links to iter_8.pth, the newest checkpoint (meta.iter 8 = iterations completed)")
    R().write_truth(
        name, "mmcv", "reference", MMCV_REF,
        collections.OrderedDict(file="latest.pth", content=target, status="ok", kind="symlink"),
        fr, cr,
        extra={"files": R().lightning_files(d), "symlinks": {"latest.pth": target}, "observed": R().weights_only_probe(os.path.join(d, target))},
    )


def build_mmcv_epoch():
    _build_mm("mmcv_epoch_run", True, 2)


def build_mmcv_iter():
    _build_mm("mmcv_iter_run", False, 10)


# ----------------------------------------------------------------------------------------------
# AllenNLP GradientDescentTrainer + Checkpointer (built by hand from the source)
# ----------------------------------------------------------------------------------------------

ALLENNLP_VERSION = "2.10.1"
ALLENNLP_REF = "reference: allenai/allennlp allennlp/training/checkpointer.py @ 10b1b8c + gradient_descent_trainer.py @ 048c300 (model_state_e{E}_b{B}.th / training_state_e{E}_b{B}.th naming, allennlp %s era)" % ALLENNLP_VERSION


class AnCheckpointer:
    def __init__(self, serialization_dir, save_every_num_batches=None, keep_most_recent_by_count=2, die_between_files_at=None):
        self._serialization_dir = serialization_dir
        self._save_completed_epochs = True
        self._save_every_num_batches = save_every_num_batches
        self._keep_most_recent_by_count = keep_most_recent_by_count
        self._last_save_num_epochs_completed = 0
        self._last_save_num_batches_in_epoch_completed = 0
        self.die_between_files_at = die_between_files_at

    def _model_state_path(self, e, b):
        return os.path.join(self._serialization_dir, f"model_state_e{e}_b{b}.th")

    def _training_state_path(self, e, b):
        return os.path.join(self._serialization_dir, f"training_state_e{e}_b{b}.th")

    def _find_all_checkpoints(self):
        import re

        rx = re.compile(r"(.*/)?model_state_e(\d+)_b(\d+)\.th$")
        out = set()
        for f in glob.iglob(os.path.join(self._serialization_dir, "model_state_e*_b*.th")):
            m = rx.match(f)
            if m:
                out.add((int(m.group(2)), int(m.group(3))))
        return out

    def maybe_save_checkpoint(self, trainer, e, b):
        end_of_epoch = b == 0
        last_b = self._last_save_num_batches_in_epoch_completed if e == self._last_save_num_epochs_completed else 0
        should = (end_of_epoch and self._save_completed_epochs) or (self._save_every_num_batches is not None and b - last_b >= self._save_every_num_batches)
        if should:
            self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer):
        torch = _torch()
        model_state, trainer_state = trainer.get_checkpoint_state()
        e, b = trainer_state["epochs_completed"], trainer_state["batches_in_epoch_completed"]
        mp = self._model_state_path(e, b)
        if not os.path.isfile(mp):
            torch.save(model_state, mp)
        if self.die_between_files_at == (e, b):
            raise R().SimulatedKill("killed between model_state and training_state of e%d_b%d" % (e, b))
        tp = self._training_state_path(e, b)
        if not os.path.isfile(tp):
            torch.save(trainer_state, tp)
        self._last_save_num_epochs_completed, self._last_save_num_batches_in_epoch_completed = e, b
        cps = sorted(self._find_all_checkpoints(), reverse=True)
        keep = set(cps[: self._keep_most_recent_by_count])
        for c in cps:
            if c not in keep:
                os.remove(self._model_state_path(*c))
                os.remove(self._training_state_path(*c))

    def load_checkpoint(self):
        torch = _torch()
        cps = self._find_all_checkpoints()
        if not cps:
            return {}, {}, None
        last = max(cps)
        mp, tp = self._model_state_path(*last), self._training_state_path(*last)
        model_state = torch.load(mp, map_location="cpu")  # nn_util.device_mapping(-1); torch >= 2.6: weights_only=True
        training_state = torch.load(tp, map_location="cpu")
        return model_state, training_state, last


class AnTrainer:
    """GradientDescentTrainer: counters, get_checkpoint_state, _restore_checkpoint, best.th."""

    def __init__(self, sdir, checkpointer, num_epochs=4, nb=4, val_losses=(0.9, 0.7, 0.75, 0.6)):
        torch = _torch()
        R().seed_all(0)
        self.model = R().tiny_net()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.sched = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)  # _PyTorchLearningRateSchedulerWrapper
        self.mt = collections.OrderedDict(best_so_far=None, epochs_with_no_improvement=0, is_best_so_far=True, epoch_number=0, best_epoch=None, best_epoch_metrics={})
        self.sdir, self.ck, self.num_epochs, self.nb, self.val_losses = sdir, checkpointer, num_epochs, nb, val_losses
        self._epochs_completed = 0
        self._batches_in_epoch_completed = 0
        self._best_model_filename = None
        self._start_after_epochs_completed = 0
        self._start_after_batches_in_epoch_completed = 0

    def get_checkpoint_state(self):
        training_states = {
            "version": 1,
            "metric_tracker": copy.deepcopy(dict(self.mt)),
            "optimizer": self.optimizer.state_dict(),
            "callbacks": [{}],  # ConsoleLoggerCallback.state_dict()
            "epochs_completed": self._epochs_completed,
            "batches_in_epoch_completed": self._batches_in_epoch_completed,
            "best_model_filename": self._best_model_filename,
            "learning_rate_scheduler": self.sched.state_dict(),
        }
        return self.model.state_dict(), training_states

    def _restore_checkpoint(self):
        model_state, training_state, which = self.ck.load_checkpoint()
        if len(model_state) <= 0 and len(training_state) <= 0:
            return None
        if training_state["version"] != 1:
            raise ValueError("version")
        self.model.load_state_dict(model_state)
        self.mt.update(training_state["metric_tracker"])
        self.optimizer.load_state_dict(training_state["optimizer"])
        self.sched.load_state_dict(training_state["learning_rate_scheduler"])
        self._start_after_epochs_completed = training_state["epochs_completed"]
        self._start_after_batches_in_epoch_completed = training_state["batches_in_epoch_completed"]
        self._best_model_filename = training_state["best_model_filename"]
        return which

    def train(self, kill_at=None):
        torch = _torch()
        for epoch in range(self._start_after_epochs_completed, self.num_epochs):
            skip = self._start_after_batches_in_epoch_completed if epoch == self._start_after_epochs_completed else 0
            self._batches_in_epoch_completed = skip
            for b in range(skip, self.nb):
                if kill_at == (epoch, b):
                    raise R().SimulatedKill("killed at epoch %d batch %d" % (epoch, b))
                x, y = R().toy_batch(epoch * self.nb + b)
                loss = torch.nn.functional.cross_entropy(self.model(x), y)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self._batches_in_epoch_completed += 1
                self.ck.maybe_save_checkpoint(self, self._epochs_completed, self._batches_in_epoch_completed)
            val = self.val_losses[epoch]
            # MetricTracker.add_metrics (validation_metric '-loss')
            self.mt["epoch_number"] = epoch + 1
            if self.mt["best_so_far"] is None or val < self.mt["best_so_far"]:
                self.mt.update(best_so_far=val, is_best_so_far=True, epochs_with_no_improvement=0, best_epoch=epoch, best_epoch_metrics={"validation_loss": val})
            else:
                self.mt.update(is_best_so_far=False, epochs_with_no_improvement=self.mt["epochs_with_no_improvement"] + 1)
            with open(os.path.join(self.sdir, "metrics_epoch_%d.json" % epoch), "w") as f:
                json.dump({"epoch": epoch, "training_loss": round(float(loss), 6), "validation_loss": val, "best_epoch": self.mt["best_epoch"], "best_validation_loss": self.mt["best_so_far"]}, f, indent=4)
            self.sched.step()
            self._epochs_completed += 1
            self._batches_in_epoch_completed = 0
            self.ck.maybe_save_checkpoint(self, self._epochs_completed, 0)
            if self.mt["is_best_so_far"]:
                self._best_model_filename = os.path.join(self.sdir, "best.th")
                torch.save(self.model.state_dict(), self._best_model_filename)


def an_write_config(sdir):
    cfg = {"dataset_reader": {"type": "tiny"}, "train_data_path": "train.jsonl", "model": {"type": "tiny_net"},
           "data_loader": {"batch_size": 4}, "trainer": {"num_epochs": 4, "optimizer": {"type": "adam", "lr": 0.001},
           "learning_rate_scheduler": {"type": "step", "step_size": 2, "gamma": 0.5},
           "checkpointer": {"save_every_num_batches": 2, "keep_most_recent_by_count": 2}, "validation_metric": "-loss"}}
    with open(os.path.join(sdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=4)
    os.makedirs(os.path.join(sdir, "vocabulary"))
    with open(os.path.join(sdir, "vocabulary", "non_padded_namespaces.txt"), "w") as f:
        f.write("*tags\n*labels\n")


def an_run(sdir, kill_at, die_between=None):
    an_write_config(sdir)
    ck = AnCheckpointer(sdir, save_every_num_batches=2, keep_most_recent_by_count=2, die_between_files_at=die_between)
    tr = AnTrainer(sdir, ck)
    try:
        tr.train(kill_at=kill_at)
    except R().SimulatedKill as e:
        return str(e)


def an_recover(sdir):
    out = collections.OrderedDict()
    ck = AnCheckpointer(sdir, save_every_num_batches=2, keep_most_recent_by_count=2)
    tr = AnTrainer(sdir, ck)
    try:
        which = tr._restore_checkpoint()
    except Exception as e:  # noqa: BLE001
        out["error"] = R().err_str(e)
        cps = ck._find_all_checkpoints()
        out["attempted"] = "e%d_b%d" % max(cps) if cps else None
        return out
    out.update(checkpoint="e%d_b%d" % which if which else None, startAfterEpochsCompleted=tr._start_after_epochs_completed,
               startAfterBatchesInEpochCompleted=tr._start_after_batches_in_epoch_completed,
               optimizerStateEntries=len(tr.optimizer.state), schedulerLastEpoch=tr.sched.last_epoch,
               bestModelFilename=tr._best_model_filename)
    return out


def build_allennlp():
    name = "allennlp_run"
    d = R().run_dir(name)
    os.makedirs(d)
    killed = an_run(d, kill_at=(2, 3))
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(an_recover(dst), dst, d)
    finally:
        shutil.rmtree(tmp)
    assert res.get("checkpoint") == "e2_b2" and res["startAfterEpochsCompleted"] == 2, res
    R().write_truth(
        name, "allennlp", "reference", ALLENNLP_REF, None,
        collections.OrderedDict(
            file="model_state_e2_b2.th", outcome="resumes", startsAt=2, counterName="epochs_completed",
            restores=["model", "optimizer", "scheduler", "counter"], resets=[],
            notes="allennlp train --recover -s <dir>: Checkpointer.load_checkpoint -> _find_latest_checkpoint = max (epochs_completed, batches_in_epoch_completed) over model_state_e*_b*.th = (2, 2); loads model_state_e2_b2.th AND training_state_e2_b2.th (optimizer, learning_rate_scheduler, metric_tracker, callbacks, counters); _start_after_epochs_completed = 2, _start_after_batches_in_epoch_completed = 2: epoch index 2 resumes after its first 2 batches. save_every_num_batches=2, keep_most_recent_by_count=2: only e2_b0 and e2_b2 pairs remain; best.th = weights of the best validation epoch (not resumable: weights only). %s" % killed,
            observed=res, startsAtBatch=2,
        ),
        collections.OrderedDict(file="model_state_e2_b2.th", startsAt=2, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="newest complete pair e2_b2 (model_state + training_state): 2 epochs and 2 batches of the 3rd epoch completed", startsAtBatch=2),
        extra={"files": R().lightning_files(d), "pairs": {"model": "model_state_e{E}_b{B}.th", "training": "training_state_e{E}_b{B}.th"}, "observed": R().weights_only_probe(os.path.join(d, "training_state_e2_b2.th"))},
    )


def build_allennlp_half_pair():
    name = "allennlp_half_pair"
    d = R().run_dir(name)
    os.makedirs(d)
    killed = an_run(d, kill_at=None, die_between=(2, 2))
    tmp, dst = R().copy_for_resume(name)
    try:
        res = R().rebase_paths(an_recover(dst), dst, d)
    finally:
        shutil.rmtree(tmp)
    assert "error" in res, res
    R().write_truth(
        name, "allennlp", "reference", ALLENNLP_REF, None,
        collections.OrderedDict(
            file=None, attempted="model_state_e2_b2.th", error=res["error"], outcome="crashes", startsAt=None, counterName="epochs_completed",
            restores=[], resets=[],
            notes="killed inside Checkpointer.save_checkpoint between torch.save(model_state) and torch.save(training_state) of e2_b2 (%s): model_state_e2_b2.th exists, training_state_e2_b2.th does not, and the keep-count cleanup never ran (e1_b4 and e2_b0 pairs remain). --recover: _find_latest_checkpoint looks only at model_state files, picks (2, 2), and torch.load of training_state_e2_b2.th raises %s" % (killed, res["error"]),
            observed=res,
        ),
        collections.OrderedDict(file="model_state_e2_b0.th", startsAt=2, restores=["model", "optimizer", "scheduler", "counter"], resets=[], why="e2_b2 is half a pair (no training_state); e2_b0 is the newest complete pair: 2 epochs completed, start the 3rd epoch from its first batch", startsAtBatch=0),
        extra={"files": R().lightning_files(d), "observed": R().weights_only_probe(os.path.join(d, "training_state_e2_b0.th"))},
    )


BUILDERS = collections.OrderedDict(
    [
        ("ultralytics_run", build_ultralytics_run),
        ("ultralytics_finished", build_ultralytics_finished),
        ("torchvision_run", build_torchvision_run),
        ("torchvision_ema_amp_run", build_torchvision_ema_amp),
        ("mmcv_epoch_run", build_mmcv_epoch),
        ("mmcv_iter_run", build_mmcv_iter),
        ("allennlp_run", build_allennlp),
        ("allennlp_half_pair", build_allennlp_half_pair),
    ]
)


# ----------------------------------------------------------------------------------------------
# Hugging Face Trainer under DeepSpeed (the Trainer is real; DeepSpeed does not install here)
# ----------------------------------------------------------------------------------------------

HF_DS_REF = (
    "transformers %s Trainer (real run) with the DeepSpeed save it makes under ZeRO-1 built as engine.save_checkpoint "
    "writes it: transformers trainer.py _save_optimizer_and_scheduler (model_wrapped.save_checkpoint(output_dir); no "
    "optimizer.pt; scheduler.pt only for a Trainer-made scheduler), _load_optimizer_and_scheduler (returns early under "
    "DeepSpeed), integrations/deepspeed.py deepspeed_load_checkpoint (global_step* required, engine.load_checkpoint "
    "follows latest, load_path None -> ValueError); DeepSpeed engine.save_checkpoint (ds_version written: %s)"
)


def hf_ds_tag(cdir, step, write_latest):
    """Turn a real Trainer checkpoint-N into what the same run saves under DeepSpeed ZeRO-1 on one rank: the
    Trainer's AdamW (two groups: decayed weights, then biases) wrapped by ZeRO, each group flattened into one fp32
    partition whose Adam moments are the group's moments concatenated, saved by engine.save_checkpoint into
    checkpoint-N; optimizer.pt is not written (the Trainer's scheduler still goes to scheduler.pt)."""
    torch = _torch()
    from safetensors.torch import load_file

    M = R()
    classes = M.ds_classes()
    fragment_address = classes[2]
    module = load_file(os.path.join(cdir, "model.safetensors"))
    hf_opt = torch.load(os.path.join(cdir, "optimizer.pt"), map_location="cpu", weights_only=True)
    os.remove(os.path.join(cdir, "optimizer.pt"))
    decay = [n for n in module if "bias" not in n]
    no_decay = [n for n in module if "bias" in n]
    group_names = [decay, no_decay]
    flat_groups, flat_state, param_shapes, slice_maps, ds_groups = [], {}, [], [], []
    ids = iter(range(len(module)))
    for gi, (names, group) in enumerate(zip(group_names, hf_opt["param_groups"])):
        assert len(names) == len(group["params"]), (names, group["params"])
        pids = [next(ids) for _ in names]
        for n, pid in zip(names, pids):
            assert hf_opt["state"][pid]["exp_avg"].shape == module[n].shape, n
        flat_groups.append(torch.cat([module[n].float().reshape(-1) for n in names]))
        flat_state[gi] = {
            "step": hf_opt["state"][pids[0]]["step"],
            "exp_avg": torch.cat([hf_opt["state"][p]["exp_avg"].reshape(-1) for p in pids]),
            "exp_avg_sq": torch.cat([hf_opt["state"][p]["exp_avg_sq"].reshape(-1) for p in pids]),
        }
        param_shapes.append(collections.OrderedDict((n, module[n].shape) for n in names))
        mapping, off = collections.OrderedDict(), 0
        for n in names:
            mapping[n] = fragment_address(numel=module[n].numel(), start=off)
            off += module[n].numel()
        slice_maps.append(mapping)
        ds_groups.append(dict({k: v for k, v in group.items() if k != "params"}, params=[gi]))
    tag = "global_step%d" % step
    td = os.path.join(cdir, tag)
    os.makedirs(td)
    ds_config = {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1,
                 "zero_optimization": {"stage": 1}, "gradient_clipping": 1.0}
    # the Trainer's own scheduler: saved by the Trainer to scheduler.pt, so the engine's lr_scheduler is None
    state = M.ds_model_states(collections.OrderedDict(module), param_shapes, step, ds_config, None)
    torch.save(dict(state), os.path.join(td, "mp_rank_00_model_states.pt"))
    base = {"state": flat_state, "param_groups": ds_groups}
    zero_sd = M.ds_zero1_optim_states(classes, base, flat_groups, slice_maps, ds_config)
    torch.save(zero_sd, os.path.join(td, "zero_pp_rank_0_mp_rank_00_optim_states.pt"))
    if write_latest:
        with open(os.path.join(cdir, "latest"), "w") as f:
            f.write(tag)
    with open(os.path.join(cdir, "zero_to_fp32.py"), "w") as f:
        f.write("# stand-in for DeepSpeed's utils/zero_to_fp32.py, which engine.save_checkpoint copies here\n")


def hf_ds_run(name, latest_at_newest):
    M = R()
    d = M.run_dir(name)
    os.makedirs(d)
    tr = M.run_worker("hf", d, "train", "6")
    for step in (3, 6):
        hf_ds_tag(os.path.join(d, "checkpoint-%d" % step), step, write_latest=latest_at_newest or step != 6)
    return d, tr["version"]


def build_hf_deepspeed_run():
    name = "hf_deepspeed_run"
    d, ver = hf_ds_run(name, True)
    restores = ["model", "optimizer", "scheduler", "counter", "rng"]
    M = R()
    M.write_truth(
        name, "hf-trainer", "reference", HF_DS_REF % (ver, M.DS_VERSION), None,
        collections.OrderedDict(
            file="checkpoint-6", outcome="resumes", startsAt=6, counterName="global_step", restores=restores, resets=[],
            notes="get_last_checkpoint picks checkpoint-6; deepspeed_load_checkpoint finds global_step* and "
            "engine.load_checkpoint(checkpoint-6) follows latest to global_step6 (module and the ZeRO partition: "
            "model and optimizer); _load_optimizer_and_scheduler returns early under DeepSpeed after loading "
            "scheduler.pt (the Trainer's own scheduler); trainer_state.json gives global_step 6 and rng_state.pth the RNG.",
        ),
        collections.OrderedDict(file="checkpoint-6", startsAt=6, restores=restores, resets=[],
                                why="highest checkpoint-N; its DeepSpeed tag (latest -> global_step6) is complete, and there is no optimizer.pt to look for"),
        extra={"files": M.hf_files(d)},
    )


def build_hf_deepspeed_no_latest():
    name = "hf_deepspeed_no_latest"
    d, ver = hf_ds_run(name, False)
    restores = ["model", "optimizer", "scheduler", "counter", "rng"]
    M = R()
    M.write_truth(
        name, "hf-trainer", "reference", HF_DS_REF % (ver, M.DS_VERSION), None,
        collections.OrderedDict(
            file=None, attempted="checkpoint-6", outcome="crashes", startsAt=None, counterName="global_step",
            restores=[], resets=[],
            error="ValueError: [deepspeed] failed to resume from checkpoint checkpoint-6",
            notes="checkpoint-6 has global_step6/ but no latest (the rank-0 write after the tag was cut): "
            "engine.load_checkpoint(tag=None) warns 'Unable to find latest file' and returns (None, None), and "
            "deepspeed_load_checkpoint raises ValueError.",
        ),
        collections.OrderedDict(file="checkpoint-3", startsAt=3, restores=restores, resets=[],
                                why="checkpoint-6's DeepSpeed save has no latest, so the Trainer cannot load it; checkpoint-3 is complete"),
        extra={"files": M.hf_files(d), "removed": ["checkpoint-6/latest"]},
    )


BUILDERS["hf_deepspeed_run"] = build_hf_deepspeed_run
BUILDERS["hf_deepspeed_no_latest"] = build_hf_deepspeed_no_latest


# ----------------------------------------------------------------------------------------------
# Megatron-LM (built by hand from the source; megatron-core does not install here)
# ----------------------------------------------------------------------------------------------

MEGATRON_REF = (
    "reference: NVIDIA/Megatron-LM megatron/training/checkpointing.py @ 0032978 (get_checkpoint_name, "
    "get_checkpoint_tracker_filename, read_metadata, generate_state_dict, save_checkpoint, _get_checkpoint_format, "
    "_load_base_checkpoint, load_checkpoint); megatron/core/dist_checkpointing (common.pt, metadata.json)"
)
MEGATRON_TRACKER = "latest_checkpointed_iteration.txt"


def megatron_args(tp, distributed_optimizer, ckpt_format="torch"):
    """The argparse.Namespace Megatron pickles as state_dict['args'] (a subset of its ~500 fields)."""
    import argparse

    return argparse.Namespace(
        num_layers=2, hidden_size=8, num_attention_heads=2, ffn_hidden_size=16, seq_length=16,
        max_position_embeddings=16, padded_vocab_size=32, tensor_model_parallel_size=tp,
        pipeline_model_parallel_size=1, expert_model_parallel_size=1, use_distributed_optimizer=distributed_optimizer,
        ckpt_format=ckpt_format, micro_batch_size=2, global_batch_size=8, lr=3e-4, min_lr=3e-5,
        lr_decay_style="cosine", train_iters=1000, save_interval=100, save="/mnt/cluster/alice/megatron/ckpts",
        load="/mnt/cluster/alice/megatron/ckpts", bf16=True, seed=1234,
    )


def megatron_model(tp_rank, tp, step):
    """One tensor-parallel rank's GPT state dict (legacy keys): column-parallel QKV and FC1 split on dim 0,
    row-parallel projections on dim 1, embeddings split by vocabulary."""
    torch = _torch()
    g = torch.Generator().manual_seed(100 * step + 7)
    h, ffn, vocab = 8, 16, 32
    full = collections.OrderedDict()
    full["embedding.word_embeddings.weight"] = torch.randn(vocab, h, generator=g)
    for layer in range(2):
        pre = "decoder.layers.%d." % layer
        full[pre + "self_attention.linear_qkv.weight"] = torch.randn(3 * h, h, generator=g)
        full[pre + "self_attention.linear_proj.weight"] = torch.randn(h, h, generator=g)
        full[pre + "mlp.linear_fc1.weight"] = torch.randn(ffn, h, generator=g)
        full[pre + "mlp.linear_fc2.weight"] = torch.randn(h, ffn, generator=g)
    full["decoder.final_layernorm.weight"] = torch.ones(h)
    out = collections.OrderedDict()
    for name, t in full.items():
        if name.endswith(("linear_proj.weight", "linear_fc2.weight")):
            out[name] = t.chunk(tp, dim=1)[tp_rank].clone().bfloat16()
        elif t.dim() == 2:
            out[name] = t.chunk(tp, dim=0)[tp_rank].clone().bfloat16()
        else:
            out[name] = t.clone().bfloat16()
    return out


def megatron_rng():
    torch = _torch()
    import random

    return [{
        "random_rng_state": random.getstate(),
        "np_rng_state": np.random.get_state(),
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.zeros(16, dtype=torch.uint8),  # CPU build: the CUDA generator's bytes
        "rng_tracker_states": {"model-parallel-rng": torch.zeros(16, dtype=torch.uint8)},
    }]


def megatron_legacy_iteration(ckdir, it, tp, distributed_optimizer=True):
    """save_checkpoint with --ckpt-format torch: every TP rank's generate_state_dict to
    iter_{:07d}/mp_rank_TT/model_optim_rng.pt, the distributed optimizer's parameter state to distrib_optim.pt
    beside it, then rank 0 writes the tracker (str(iteration), no newline) after the barrier."""
    torch = _torch()
    for tp_rank in range(tp):
        d = os.path.join(ckdir, "iter_%07d" % it, "mp_rank_%02d" % tp_rank)
        os.makedirs(d)
        model = megatron_model(tp_rank, tp, it)
        sd = collections.OrderedDict()
        sd["args"] = megatron_args(tp, distributed_optimizer)
        sd["checkpoint_version"] = 3.0
        sd["iteration"] = it
        sd["model"] = model
        # DistributedOptimizer.state_dict(): param groups and the grad scaler; its per-parameter state
        # (fp32 main params, Adam moments) goes to distrib_optim.pt (save_parameter_state).
        sd["optimizer"] = {
            "optimizer": {"param_groups": [{"lr": 3e-4, "weight_decay": 0.1, "betas": (0.9, 0.95), "eps": 1e-8,
                                            "step": it, "params": list(range(len(model)))}]},
            "grad_scaler": None,
        }
        sd["opt_param_scheduler"] = {"max_lr": 3e-4, "min_lr": 3e-5, "lr_warmup_steps": 10, "num_steps": it * 8,
                                     "lr_decay_style": "cosine", "lr_decay_steps": 1000 * 8}
        sd["rng_state"] = megatron_rng()
        sd["num_floating_point_operations_so_far"] = it * 1_000_000
        torch.save(sd, os.path.join(d, "model_optim_rng.pt"))
        if distributed_optimizer:
            numel = sum(t.numel() for t in model.values())
            g = torch.Generator().manual_seed(it + tp_rank)
            state = {"buckets_coalesced": True, 0: {(torch.bfloat16, torch.float32): {
                "param": torch.randn(numel, generator=g), "exp_avg": torch.randn(numel, generator=g),
                "exp_avg_sq": torch.rand(numel, generator=g)}}}
            torch.save(state, os.path.join(d, "distrib_optim.pt"))
    with open(os.path.join(ckdir, MEGATRON_TRACKER), "w") as f:
        f.write(str(it))


def megatron_legacy_run(name, tp=2):
    d = R().run_dir(name)
    for it in (100, 200):
        megatron_legacy_iteration(d, it, tp)
    return d


MEGATRON_RESTORES = ["model", "optimizer", "scheduler", "counter", "rng"]


def build_megatron_run():
    name = "megatron_run"
    d = megatron_legacy_run(name)
    R().write_truth(
        name, "megatron", "reference", MEGATRON_REF,
        collections.OrderedDict(file=MEGATRON_TRACKER, content=open(os.path.join(d, MEGATRON_TRACKER)).read(), status="ok"),
        collections.OrderedDict(
            file="iter_0000200", outcome="resumes", startsAt=200, counterName="iteration",
            restores=MEGATRON_RESTORES, resets=[],
            notes="load_checkpoint: read_metadata(latest_checkpointed_iteration.txt) -> 200; _get_checkpoint_format "
            "finds mp_rank_0* -> torch; each TP rank torch.loads iter_0000200/mp_rank_TT/model_optim_rng.pt and "
            "load_parameter_state reads distrib_optim.pt beside it; iteration = state_dict['iteration'] = 200.",
        ),
        collections.OrderedDict(file="iter_0000200", startsAt=200, restores=MEGATRON_RESTORES, resets=[],
                                why="the tracker names iter_0000200, whose two tensor-parallel ranks and their distributed-optimizer states are all there"),
        extra={"files": R().hf_files(d)},
    )


def build_megatron_missing_rank():
    name = "megatron_missing_rank"
    d = megatron_legacy_run(name)
    shutil.rmtree(os.path.join(d, "iter_0000200", "mp_rank_01"))
    R().write_truth(
        name, "megatron", "reference", MEGATRON_REF,
        collections.OrderedDict(file=MEGATRON_TRACKER, content="200", status="incomplete-target"),
        collections.OrderedDict(
            file=None, attempted="iter_0000200", outcome="crashes", startsAt=None, counterName="iteration",
            restores=[], resets=[],
            error="FileNotFoundError on tensor rank 1 (\'could not load the checkpoint\', sys.exit)",
            notes="the tracker names 200; tensor rank 1's torch.load of iter_0000200/mp_rank_01/model_optim_rng.pt "
            "fails (the node that wrote it lost its files), _load_base_checkpoint prints 'could not load the "
            "checkpoint' and exits.",
        ),
        collections.OrderedDict(file="iter_0000100", startsAt=100, restores=MEGATRON_RESTORES, resets=[],
                                why="iter_0000200 lacks tensor rank 1 (args.tensor_model_parallel_size is 2); iter_0000100 is whole"),
        extra={"files": R().hf_files(d), "removed": ["iter_0000200/mp_rank_01"]},
    )


def build_megatron_no_tracker():
    name = "megatron_no_tracker"
    d = megatron_legacy_run(name)
    os.remove(os.path.join(d, MEGATRON_TRACKER))
    R().write_truth(
        name, "megatron", "reference", MEGATRON_REF,
        collections.OrderedDict(file=MEGATRON_TRACKER, content=None, status="missing"),
        collections.OrderedDict(
            file=None, outcome="starts-over", startsAt=0, counterName="iteration", restores=[],
            resets=["model", "optimizer", "scheduler", "counter"],
            notes="no tracker: _load_base_checkpoint prints 'WARNING: could not find the metadata file ... will not "
            "load any checkpoints and will start from random' (unless --exit-on-missing-checkpoint).",
        ),
        collections.OrderedDict(file="iter_0000200", startsAt=200, restores=MEGATRON_RESTORES, resets=[],
                                why="iter_0000200 is complete: write the tracker (200) or pass --ckpt-step 200"),
        extra={"files": R().hf_files(d), "removed": [MEGATRON_TRACKER]},
    )


def build_megatron_torch_dist():
    """--ckpt-format torch_dist: dist_checkpointing.save writes the sharded part through torch DCP
    (.metadata, __R_0.distcp), the common part to common.pt and the backend to metadata.json. Written here by
    real torch.distributed.checkpoint in one process, with the sharded keys Megatron's sharded_state_dict
    uses (the model's FQNs, `optimizer.state.*`, the rng ShardedObject)."""
    torch = _torch()
    import io

    import torch.distributed.checkpoint as dcp
    import torch.distributed.checkpoint.filesystem as dcp_fs

    ids = iter(["00000000-0000-4000-8000-%012d" % i for i in range(1, 1000)])
    dcp_fs._generate_uuid = lambda: next(ids)
    name = "megatron_torch_dist"
    d = R().run_dir(name)
    for it in (100, 200):
        cd = os.path.join(d, "iter_%07d" % it)
        os.makedirs(cd)
        model = megatron_model(0, 1, it)
        sharded = collections.OrderedDict(model)
        for n, t in model.items():
            sharded["optimizer.state.exp_avg." + n] = torch.zeros_like(t, dtype=torch.float32)
            sharded["optimizer.state.exp_avg_sq." + n] = torch.zeros_like(t, dtype=torch.float32)
            sharded["optimizer.state.fp32_param." + n] = t.float()
        buf = io.BytesIO()
        torch.save(megatron_rng(), buf)
        sharded["rng_state/shard_0.0_1.1"] = buf
        dcp.save(sharded, checkpoint_id=cd, no_dist=True)
        common = collections.OrderedDict()
        common["args"] = megatron_args(1, True, "torch_dist")
        common["checkpoint_version"] = 3.0
        common["iteration"] = it
        common["optimizer"] = {"param_groups": [{"lr": 3e-4, "weight_decay": 0.1, "step": it}]}
        common["opt_param_scheduler"] = {"max_lr": 3e-4, "min_lr": 3e-5, "num_steps": it * 8}
        common["num_floating_point_operations_so_far"] = it * 1_000_000
        torch.save(common, os.path.join(cd, "common.pt"))
        with open(os.path.join(cd, "metadata.json"), "w") as f:
            json.dump({"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                       "common_backend": "torch", "common_backend_version": 1}, f)
        with open(os.path.join(d, MEGATRON_TRACKER), "w") as f:
            f.write(str(it))
    R().write_truth(
        name, "megatron", "reference", MEGATRON_REF,
        collections.OrderedDict(file=MEGATRON_TRACKER, content="200", status="ok"),
        collections.OrderedDict(
            file="iter_0000200", outcome="resumes", startsAt=200, counterName="iteration",
            restores=MEGATRON_RESTORES, resets=[],
            notes="check_is_distributed_checkpoint(iter_0000200) (metadata.json) -> torch_dist; "
            "load_common_state_dict reads common.pt (iteration 200, args, opt_param_scheduler), "
            "dist_checkpointing.load the sharded model, optimizer state and rng_state from the DCP files.",
        ),
        collections.OrderedDict(file="iter_0000200", startsAt=200, restores=MEGATRON_RESTORES, resets=[],
                                why="the tracker names iter_0000200: common.pt, metadata.json, .metadata and its data file are there"),
        extra={"files": R().hf_files(d)},
    )


BUILDERS["megatron_run"] = build_megatron_run
BUILDERS["megatron_missing_rank"] = build_megatron_missing_rank
BUILDERS["megatron_no_tracker"] = build_megatron_no_tracker
BUILDERS["megatron_torch_dist"] = build_megatron_torch_dist


# ----------------------------------------------------------------------------------------------
# fairseq (built by hand from the source; fairseq does not install here)
# ----------------------------------------------------------------------------------------------

FAIRSEQ_REF = (
    "reference: facebookresearch/fairseq fairseq/checkpoint_utils.py (save_checkpoint: checkpoint{epoch}.pt, "
    "checkpoint_best.pt, checkpoint_last.pt copied from the first written; load_checkpoint: --restore-file "
    "defaults to checkpoint_last.pt in save_dir, absent -> trains from scratch), fairseq/trainer.py "
    "(state_dict: args/cfg, model, criterion, optimizer_history [... {criterion_name, optimizer_name, "
    "lr_scheduler_state, num_updates}], task_state, extra_state {train_iterator {epoch, iterations_in_epoch}, "
    "previous_training_time, ...}, last_optimizer_state; load_checkpoint: set_num_updates(last_optim['num_updates']))"
)


def fairseq_state(model, optimizer, scheduler, epoch, updates):
    import argparse

    return collections.OrderedDict(
        args=argparse.Namespace(arch="transformer_iwslt_de_en", optimizer="adam", lr=[5e-4], lr_scheduler="inverse_sqrt",
                                max_epoch=10, save_dir="/mnt/cluster/alice/fairseq/checkpoints", seed=1),
        model=model.state_dict(),
        criterion={},
        optimizer_history=[{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                            "lr_scheduler_state": {"best": 3.21 - 0.1 * epoch, **scheduler.state_dict()},
                            "num_updates": updates}],
        task_state={},
        extra_state={"metrics": {}, "previous_training_time": 12.5 * epoch,
                     "train_iterator": {"version": 2, "epoch": epoch + 1, "iterations_in_epoch": 0, "shuffle": True},
                     "best": 3.21 - 0.1 * epoch, "val_loss": 3.21 - 0.1 * epoch},
        last_optimizer_state=optimizer.state_dict(),
    )


def fairseq_run(name):
    """train.py saves at each epoch end: checkpoint{epoch}.pt first, then copies it to checkpoint_best.pt
    (when best) and checkpoint_last.pt."""
    torch = _torch()
    d = R().run_dir(name)
    os.makedirs(d)
    R().seed_all(3)
    model = R().tiny_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 4))
    updates = 0
    for epoch in (1, 2):
        for step in range(5):
            x, y = R().toy_batch(10 * epoch + step)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()
            updates += 1
        first = os.path.join(d, "checkpoint%d.pt" % epoch)
        torch.save(fairseq_state(model, optimizer, scheduler, epoch, updates), first)
        for copy in ("checkpoint_best.pt", "checkpoint_last.pt"):
            shutil.copyfile(first, os.path.join(d, copy))
    return d


FAIRSEQ_RESTORES = ["model", "optimizer", "scheduler", "counter"]


def build_fairseq_run():
    name = "fairseq_run"
    d = fairseq_run(name)
    R().write_truth(
        name, "fairseq", "reference", FAIRSEQ_REF, None,
        collections.OrderedDict(
            file="checkpoint_last.pt", outcome="resumes", startsAt=10, counterName="step",
            restores=FAIRSEQ_RESTORES, resets=[],
            notes="--restore-file checkpoint_last.pt (the default): model, last_optimizer_state, the scheduler from "
            "optimizer_history[-1]['lr_scheduler_state'], num_updates 10, epoch 3 from extra_state.train_iterator.",
        ),
        collections.OrderedDict(file="checkpoint_last.pt", startsAt=10, restores=FAIRSEQ_RESTORES, resets=[],
                                why="checkpoint_last.pt is whole and the newest (a copy of checkpoint2.pt)"),
        extra={"files": R().hf_files(d)},
    )


def build_fairseq_truncated_last():
    name = "fairseq_truncated_last"
    d = fairseq_run(name)
    last = os.path.join(d, "checkpoint_last.pt")
    with open(last, "r+b") as f:
        f.truncate(os.path.getsize(last) // 2)
    R().write_truth(
        name, "fairseq", "reference", FAIRSEQ_REF, None,
        collections.OrderedDict(
            file=None, attempted="checkpoint_last.pt", outcome="crashes", startsAt=None, counterName="step",
            restores=[], resets=[], error="RuntimeError: PytorchStreamReader failed reading zip archive",
            notes="the copy to checkpoint_last.pt was cut (disk full, preempted): torch.load of it fails in "
            "load_checkpoint_to_cpu and training stops.",
        ),
        collections.OrderedDict(file="checkpoint2.pt", startsAt=10, restores=FAIRSEQ_RESTORES, resets=[],
                                why="checkpoint2.pt holds the same state as the cut copy: pass --restore-file checkpoint2.pt"),
        extra={"files": R().hf_files(d), "truncated": ["checkpoint_last.pt"]},
    )


BUILDERS["fairseq_run"] = build_fairseq_run
BUILDERS["fairseq_truncated_last"] = build_fairseq_truncated_last


# ----------------------------------------------------------------------------------------------
# a directory with text files and no checkpoint
# ----------------------------------------------------------------------------------------------


def build_notes_only():
    name = "notes_only"
    d = R().run_dir(name)
    os.makedirs(d)
    files = collections.OrderedDict([
        ("notes.txt", "abc"),
        ("train_note.txt", "trained on 8 GPUs, lr 3e-4\n"),
        ("README.md", "# run 2024-05-01\n\nResNet-18 baseline. Checkpoints were moved to the cluster.\n\n- lr 0.1, 90 epochs\n- see `log.txt`\n"),
    ])
    for fn, text in files.items():
        R().write_text(os.path.join(d, fn), text)
    torch = _torch()
    loads = collections.OrderedDict()
    for fn in files:
        try:
            torch.load(os.path.join(d, fn), map_location="cpu", weights_only=False)
            loads[fn] = "ok"
        except Exception as e:  # noqa: BLE001
            loads[fn] = R().err_str(e)
    R().write_truth(
        name, "none", "reference", "no framework: three text files (a 3-letter note, a one-line human note, a README) and no checkpoint", None,
        collections.OrderedDict(file=None, outcome="no-checkpoint", startsAt=None, counterName=None, restores=[], resets=[],
                                notes="nothing here is a checkpoint or a pointer: notes.txt holds 'abc' (no file 'abc' exists), train_note.txt a sentence, README.md prose. A resume tool must say 'no checkpoint', not 'pointer to a missing file'. torch.load on each: %s" % json.dumps(loads)),
        collections.OrderedDict(file=None, startsAt=None, restores=[], resets=[], why="no checkpoint in the directory"),
        extra={"files": sorted(files), "torchLoad": loads},
    )


BUILDERS["notes_only"] = build_notes_only
