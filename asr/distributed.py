"""Data-parallel training over processes started by torchrun: this process's rank, the process
group (NCCL on GPUs, gloo on CPU), and the few collectives the training loop needs.

Without torchrun (no WORLD_SIZE in the environment) the world is one process and no collective
is ever called, so single-process training runs exactly the code it ran before.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist

# Rank 0 evaluates, writes checkpoints and exports while the other ranks wait in a collective:
# NCCL's default of 10 minutes would kill a run whose dev set takes longer to decode.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process, 0 .. size - 1
    size: int = 1  # processes in the run, over all machines
    local_rank: int = 0  # this process on its machine: its GPU

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes logs, plots, checkpoints and the model."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block (e.g. writes a file) before the other ranks run it (and read the file)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object), on every rank."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        if self.size == 1:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over the ranks (float64)."""
        if self.size == 1:
            return values
        total = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(total)
        return total.tolist()


def _collective_device() -> torch.device:
    """NCCL reduces tensors on this process's GPU, gloo on the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def join_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun described in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) -> (this process's place, its device). On a GPU each process takes
    cuda:LOCAL_RANK, whatever `device` named. Without torchrun: (World(), device)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return world, device


def leave_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
