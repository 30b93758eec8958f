"""Data-parallel training through PyTorch's own engine: ``torchrun`` launches, DDP synchronises gradients.

Launched without ``torchrun`` everything here degrades to a single process. The backend is chosen from the
hardware (``nccl`` with CUDA, ``gloo`` on CPU), and a collective that waits longer than ``timeout`` fails the run
instead of hanging (a crashed rank also makes ``torchrun`` stop the others).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of a few numbers over ranks (float64)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def all_gather_objects(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def setup(device: str = "auto", timeout_s: int = 600) -> DistributedContext:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group once; the process
    leaves it at exit (``teardown``): exiting with gloo's threads still running can abort a rank ("terminate called
    without an active exception") after its work is done."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    dev = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout_s))
        atexit.register(teardown)
    return DistributedContext(rank, world, local_rank, dev)


def teardown() -> None:
    """Leave the process group. On gloo the ranks first wait for each other (30 s at most): a rank that tears its
    connections down while a peer still uses them can make that peer's gloo threads abort the process ("terminate
    called without an active exception")."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_backend() == "gloo":
        with contextlib.suppress(RuntimeError):  # a peer that died or hung: leave anyway
            dist.monitored_barrier(timeout=timedelta(seconds=30))
    dist.destroy_process_group()


def even_batches(batches: list[list[int]], multiple: int) -> list[list[int]]:
    """Split the largest batches in two until the count is a multiple of ``multiple``.

    Every rank then runs the same number of steps, and no example is dropped or repeated.
    """
    batches = [list(b) for b in batches]
    while len(batches) % multiple:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        if len(batches[largest]) < 2:
            raise ValueError(f"cannot split {len(batches)} batches evenly over {multiple} ranks/accumulation steps")
        b = batches.pop(largest)
        batches[largest:largest] = [b[: len(b) // 2], b[len(b) // 2 :]]
    return batches


def shard(batches: list[list[int]], rank: int, world_size: int, accumulate: int) -> list[list[int]]:
    """The batches of one rank: update u uses batches [u*W*A, (u+1)*W*A); rank r takes every W-th of them.

    One process with accumulation W*A sees exactly the union of what W ranks with accumulation A see.
    """
    batches = even_batches(batches, world_size * accumulate)
    return batches[rank::world_size]
