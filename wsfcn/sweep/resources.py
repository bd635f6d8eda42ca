"""What one sweep trial asks of the Ray cluster (stack §2), and whether the cluster can give it.

* ``train.num_workers == 0``: the trial trains in its own process with ``cpu`` = 1 (or
  cores / ``--max-concurrent``) and a GPU when it trains on CUDA; torch uses that many threads.
* ``>= 1``: ``Tuner(TorchTrainer)`` does not work under Train V2, so the trial (``{"cpu": 0.01}``)
  runs a ``TorchTrainer`` itself, with workers of ``(cores / concurrent - 0.01) / workers`` CPUs
  (0.99 each for 2 workers on 2 cores) plus one GPU each on CUDA. After training, inference runs
  as a Ray task with one worker's resources.
"""

from __future__ import annotations

import math

from wsfcn.config import ConfigError, Params
from wsfcn.sweep.plan import TrialSpec

TRIAL_CPU = 0.01  # the trial driver of a Train-inside-Tune trial (stack §2)


def wants_gpu(params: Params, gpus: float) -> bool:
    """Whether a trial of ``params`` trains on a GPU of a cluster with ``gpus`` GPUs."""
    tp = params.train
    return tp.device != "cpu" and (tp.use_gpu or tp.device == "cuda" or gpus > 0)


def trial_resources(params: Params, cluster: dict[str, float], concurrent: int) -> dict[str, float]:
    """Tune resources of one trial (``concurrent`` 0: as many trials as fit)."""
    if params.train.num_workers >= 1:
        return {"cpu": TRIAL_CPU}
    cpu = max(1.0, float(cluster["CPU"] // concurrent)) if concurrent else 1.0
    return {"cpu": cpu, "gpu": 1.0 if wants_gpu(params, cluster["GPU"]) else 0.0}


def worker_resources(params: Params, cluster: dict[str, float], concurrent: int) -> dict[str, float]:
    """``resources_per_worker`` of the Ray Train workers inside one trial (num_workers >= 1)."""
    share = cluster["CPU"] / max(concurrent, 1) - TRIAL_CPU
    cpu = math.floor(100 * share / params.train.num_workers) / 100
    if cpu <= 0:
        raise ConfigError(f"{cluster['CPU']:g} CPUs cannot host train.num_workers={params.train.num_workers}")
    return {"CPU": cpu, "GPU": 1.0} if wants_gpu(params, cluster["GPU"]) else {"CPU": cpu}


def check_fits(spec: TrialSpec, cluster: dict[str, float], concurrent: int) -> None:
    """Raise :class:`ConfigError` when one trial needs more than the cluster has (Tune would wait forever)."""
    params = spec.to_params()
    trial = trial_resources(params, cluster, concurrent)
    cpu, gpu = trial["cpu"], trial.get("gpu", 0.0)
    if params.train.num_workers >= 1:
        workers = worker_resources(params, cluster, concurrent)
        cpu += params.train.num_workers * workers["CPU"]
        gpu += params.train.num_workers * workers.get("GPU", 0.0)
    if gpu > cluster["GPU"]:
        raise ConfigError(
            f"trial {spec.trial_id} needs {gpu:g} GPUs (train.use_gpu / train.device, train.num_workers) "
            f"but the Ray cluster has {cluster['GPU']:g}; set train.use_gpu=false or use a GPU machine"
        )
    if cpu > cluster["CPU"] + 1e-9:
        raise ConfigError(
            f"trial {spec.trial_id} needs {cpu:g} CPUs but the Ray cluster has {cluster['CPU']:g}"
        )
