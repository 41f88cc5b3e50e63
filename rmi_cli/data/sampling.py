"""Which samples make batch t, and the seed of each one's augmentation: a pure function of
(seed, t), so a run resumed at iteration k sees exactly the batches the uninterrupted run saw.

The stream walks through epochs: sample positions t*B .. t*B+B-1 of an endless sequence made of
one random permutation of the dataset per epoch (permutation e seeded by (seed, e)); a batch may
straddle two epochs. Slot j of batch t augments with a generator seeded by (seed, t, j).

Data-parallel rank r of N takes slots r*B/N .. (r+1)*B/N - 1 of every batch: the ranks' shares
put together are exactly the batch one process would draw, and still a pure function of (seed, t).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import torch

_SEED_MASK = (1 << 63) - 1


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python versions (unlike hash)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


@lru_cache(maxsize=4)
def epoch_permutation(num_samples: int, seed: int, epoch: int) -> tuple[int, ...]:
    """The order of the dataset in epoch `epoch` of the stream seeded by `seed`."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch, 0x5E9))
    return tuple(torch.randperm(num_samples, generator=generator).tolist())


@dataclass(frozen=True)
class SlotPlan:
    """One sample of a batch: its dataset index and the seed of its augmentation generator."""

    index: int
    augment_seed: int


def batch_plan(
    num_samples: int,
    batch_size: int,
    seed: int,
    iteration: int,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> list[SlotPlan]:
    """The samples of batch `iteration` (0-based) of the training stream; with `world_size` > 1
    only rank `rank`'s share of it (`batch_size` is the global batch, a multiple of it)."""
    if num_samples < 1:
        raise ValueError("cannot draw batches from an empty dataset")
    per_rank, rest = divmod(batch_size, world_size)
    if rest or not 0 <= rank < world_size:
        raise ValueError(
            f"rank {rank} of {world_size} cannot take an equal share of a batch of {batch_size}"
        )
    plan = []
    for slot in range(rank * per_rank, (rank + 1) * per_rank):
        position = iteration * batch_size + slot
        epoch, offset = divmod(position, num_samples)
        index = epoch_permutation(num_samples, seed, epoch)[offset]
        plan.append(SlotPlan(index, mix_seed(seed, iteration, slot)))
    return plan


def slot_generator(plan: SlotPlan) -> torch.Generator:
    """The CPU generator one slot's augmentation draws from."""
    return torch.Generator().manual_seed(plan.augment_seed)
