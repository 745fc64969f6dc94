"""Writes a sharded checkpoint for bench/convert.mjs with real torch.distributed.checkpoint (issue 14): two gloo
ranks on CPU, each holding its half (Shard(0)) of every tensor as a DTensor, saved by dcp.save the way FSDP2
saves: {"model": ..., "optimizer": ...}. Each rank builds only its local shard, so memory stays at one half.

Usage: python make_sharded_input.py OUT_DIR [TENSORS]   (TENSORS of 4096 x 4096 float32, 64 MiB each; default 40)
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp


def rank_main(rank, world, out, count):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = "29731"
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard

    mesh = init_device_mesh("cpu", (world,))
    generator = torch.Generator().manual_seed(1000 + rank)
    rows = 4096 // world
    model = {
        "layers.%d.weight" % i: DTensor.from_local(
            torch.randn(rows, 4096, generator=generator), mesh, [Shard(0)], run_check=False
        )
        for i in range(count)
    }
    model["norm.weight"] = DTensor.from_local(torch.ones(4096 // world), mesh, [Shard(0)], run_check=False)
    optimizer = {"state": {"norm.weight": {"step": torch.tensor(10.0)}}, "param_groups": [{"lr": 1e-4}]}
    dcp.save({"model": model, "optimizer": optimizer}, checkpoint_id=out)
    dist.destroy_process_group()


if __name__ == "__main__":
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    torch.set_num_threads(1)
    mp.spawn(rank_main, args=(2, out, count), nprocs=2, join=True)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("dcp 2 ranks: %s, %.2f GB" % (out, total / 1e9))
