"""Inputs for the sharded-inspect benchmark (issue 13): the same N tensors as a DCP checkpoint written by
WORLD ranks (real gloo process group, every tensor a DTensor row-sharded over all ranks, as FSDP2 saves
them, so .metadata holds N * WORLD chunks) and as one torch.save zip.

Usage: python bench/make_dcp.py OUT_DIR [N=50000] [WORLD=4]   (writes OUT_DIR/dcp/ and OUT_DIR/single.pt)
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROWS, COLS = 8, 16


def names(n):
    return [f"model.layers.{i // 10}.block{i % 10}.weight" for i in range(n)]


def rank_main(rank, world, out, n, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard
    import torch.distributed.checkpoint as dcp

    mesh = init_device_mesh("cpu", (world,))
    rows = ROWS // world
    local = torch.arange(rows * COLS, dtype=torch.float32).reshape(rows, COLS) + rank
    state = {
        name: DTensor.from_local(local.clone(), mesh, [Shard(0)], run_check=False) for name in names(n)
    }
    dcp.save(state, checkpoint_id=os.path.join(out, "dcp"))
    dist.destroy_process_group()


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
    world = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    os.makedirs(out, exist_ok=True)
    mp.spawn(rank_main, args=(world, out, n, 29777), nprocs=world, join=True)
    torch.save({name: torch.zeros(ROWS, COLS) for name in names(n)}, os.path.join(out, "single.pt"))


if __name__ == "__main__":
    main()
