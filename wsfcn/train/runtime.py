"""Training runtime: device and ranks, determinism, per-epoch seeding, data loaders, small metrics.

Helpers of :mod:`wsfcn.train.loop` (method §6.1: batch 16 shuffled with ``drop_last``). The batch
size is global and split over ``torch.distributed`` ranks with a ``DistributedSampler``; every
random stream of epoch ``e`` is seeded from ``(seed, e, rank)`` so that a resumed run repeats it.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, default_collate

from wsfcn.config import TrainParams
from wsfcn.data.datasets import resolve_workers
from wsfcn.precision import autocast_dtype


@dataclass(frozen=True)
class Runtime:
    """Where and how this process trains. rank/world come from ``torch.distributed`` when initialised."""

    device: torch.device
    rank: int = 0
    world: int = 1
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False


def setup_runtime(tp: TrainParams) -> Runtime:
    """Device (``train.device``; auto = CUDA when present), ranks, determinism switches, AMP dtype
    (``train.amp``; auto = bf16 where the device computes it natively, see :mod:`wsfcn.precision`)."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    want_cuda = tp.device == "cuda" or tp.use_gpu
    if want_cuda and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda (or train.use_gpu=true) but torch sees no CUDA device")
    device = torch.device("cpu")
    if want_cuda or (tp.device == "auto" and torch.cuda.is_available()):
        index = int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else torch.cuda.current_device()
        device = torch.device("cuda", index % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if tp.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not tp.deterministic  # the authors' code sets benchmark=True
    torch.backends.cudnn.deterministic = tp.deterministic
    torch.use_deterministic_algorithms(tp.deterministic, warn_only=True)
    return Runtime(device, rank, world, autocast_dtype(tp.amp, device), tp.channels_last)


def seed_epoch(seed: int, epoch: int, rank: int, loader: DataLoader | None = None) -> int:
    """Seed torch / numpy / python, and ``loader``'s sampler, generator and dataset ``rng``, from
    (seed, epoch, rank); return the derived seed. Loader workers reseed from the generator."""
    s = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)
    if loader is not None:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        if loader.generator is not None:  # shuffling and the loader workers' base seed
            loader.generator.manual_seed(s)
        dataset = loader.dataset
        while dataset is not None and not hasattr(dataset, "rng"):
            dataset = getattr(dataset, "dataset", None)
        if dataset is not None:  # augmentation draws when loading in this process
            dataset.rng = np.random.default_rng(s)
    return s


def collate_by_size(items: list[dict]) -> list[dict]:
    """Batches of equal-sized items (order kept): validation images may differ in size."""
    groups: dict[tuple, list[dict]] = {}
    for item in items:
        groups.setdefault(tuple(item["image"].shape), []).append(item)
    return [default_collate(g) for g in groups.values()]


def make_val_loader(dataset: Dataset, *, subset: int, batch_size: int, workers: int) -> DataLoader:
    """Sequential loader over ``subset`` evenly spaced items (0: all) yielding lists of batches."""
    if 0 < subset < len(dataset):
        dataset = Subset(dataset, np.linspace(0, len(dataset) - 1, subset).round().astype(int).tolist())
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_by_size,
        num_workers=resolve_workers(workers),
    )


def all_mean(values: torch.Tensor, rt: Runtime) -> np.ndarray:
    """The mean of ``values`` over the ranks (a no-op in one process), as float64 numpy."""
    if rt.world > 1:
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        values /= rt.world
    return values.double().cpu().numpy()


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Image-level mAP: mean over classes with a positive of the AP of the ranking by score.

    scores, labels: (N, K). AP = mean of the precision at each positive (ties keep input order).
    """
    aps = []
    ranks = torch.arange(1, scores.shape[0] + 1, dtype=torch.float64)
    for k in range(scores.shape[1]):
        order = torch.argsort(scores[:, k], descending=True, stable=True)
        hits = (labels[order, k] > 0.5).double()
        if hits.sum() > 0:
            aps.append(float((hits.cumsum(0) / ranks * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else math.nan
