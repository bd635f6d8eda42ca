"""The training loop as plain functions (method §1 one step, §5 total loss, §6.1 schedule and selection).

``fit`` runs in the calling process. Under ``torch.distributed`` (Ray Train workers, torchrun) it
wraps the model in DDP, splits the global batch over the ranks, and lets rank 0 validate and
write files. Epoch ``e``'s data order, augmentation and dropout / gate noise depend only on
``(train.seed, e, rank)``, so a run resumed from an epoch checkpoint repeats the epochs it lost
exactly; with ``train.deterministic`` the kernels are pinned too and the final weights equal
those of an uninterrupted run.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wsfcn.checkpoints import (
    CheckpointError,
    capture_rng_state,
    evaluated_weights,
    link_or_copy,
    load_checkpoint,
    newest_resumable,
    resume_refusal,
    save_checkpoint,
)
from wsfcn.code_version import training_code_fingerprint
from wsfcn.config import Params, TrainParams
from wsfcn.errors import InputError
from wsfcn.evaluate.metrics import ConfusionMatrix
from wsfcn.params_io import fingerprint
from wsfcn.precision import precision_name
from wsfcn.train.figures import PanelRow, save_training_figure
from wsfcn.train.optim import build_optimizer, lr_factor, set_lr
from wsfcn.train.runtime import (
    Runtime,
    all_mean,
    make_val_loader,
    mean_average_precision,
    seed_epoch,
    setup_runtime,
)
from wsfcn.units import Report

FIGURE_IMAGES = 4


class NonFiniteLossError(InputError, RuntimeError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class FitResult:
    """What a finished :func:`fit` leaves behind (``epoch`` counts completed epochs, from 1)."""

    out_dir: Path
    last: Path
    best: Path
    epochs: int
    best_epoch: int | None
    best_score: float | None
    n_params: int
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    precision: str = "fp32"  # the training arithmetic of the process that finished the run
    code_fingerprint: str = ""  # the training code of the process that trained it (checkpoint)

    @classmethod
    def from_checkpoint(cls, last: str | Path) -> FitResult:
        """Rebuild the result from ``last.pt`` (used after a Ray Train run)."""
        state = load_checkpoint(last, mmap=True)
        m = state["metrics"]
        return cls(
            Path(last).parent,
            Path(last),
            Path(last).parent / "best.pt",
            state["epoch"],
            m.get("best_epoch"),
            m.get("best_score"),
            m.get("n_params", 0),
            m.get("history", []),
            m.get("resumed_from", 0),
            m.get("precision", "fp32"),
            state.get("code_fingerprint", ""),
        )


def step_loss(
    loss_cls: torch.Tensor, loss_mask: torch.Tensor, *, use_mask: bool, mask_weight: float
) -> torch.Tensor:
    """method §5: ``L = L_cls + [epoch >= PRETRAIN] · mask_weight · L_mask``."""
    return loss_cls.float() + mask_weight * loss_mask.float() if use_mask else loss_cls.float()


def _inputs(batch: dict, rt: Runtime) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fmt = torch.channels_last if rt.channels_last else torch.contiguous_format
    images = batch["image"].to(rt.device, non_blocking=True, memory_format=fmt)
    return images, batch["image_raw"].to(rt.device, non_blocking=True), batch["labels"].to(rt.device).float()


def train_one_epoch(
    net: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    use_mask: bool,
    mask_weight: float,
    rt: Runtime,
    max_steps: int = 0,
    progress: bool = False,
    lr_at: Callable[[int, int], float] | None = None,
    after_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader`` (at most ``max_steps`` steps when > 0).

    ``lr_at(step, steps)``, when given, is the backbone-weight learning rate of each step (the
    groups scale it by their ``lr_mult``); without it the groups keep their rates. ``after_step()``
    runs after each update (the weight average of ``train.ema_decay``).

    Returns the rank-averaged mean ``loss``, ``loss_cls``, ``loss_mask``, the training ``mAP`` of
    this rank's scores, ``images_per_s`` (all ranks) and ``steps``. Raises
    :class:`NonFiniteLossError` before the update of a step whose loss is not finite.
    """
    from tqdm import tqdm

    net.train()
    steps = len(loader) if max_steps <= 0 else min(max_steps, len(loader))
    sums, scores, labels_seen, images = np.zeros(3), [], [], 0
    bar = tqdm(
        total=steps, desc=f"epoch {epoch}", unit="step", leave=False, disable=not progress, file=sys.stderr
    )
    start = time.perf_counter()
    for step, batch in zip(range(steps), loader, strict=False):
        x, raw, labels = _inputs(batch, rt)
        with torch.autocast(
            rt.device.type, dtype=rt.amp_dtype or torch.bfloat16, enabled=rt.amp_dtype is not None
        ):
            out = net(x, images_raw=raw, labels=labels)
        loss = step_loss(out.loss_cls, out.loss_mask, use_mask=use_mask, mask_weight=mask_weight)
        values = all_mean(
            torch.stack([loss.detach(), out.loss_cls.detach().float(), out.loss_mask.detach().float()]), rt
        )
        if not math.isfinite(values[0]):
            raise NonFiniteLossError(f"non-finite loss ({values[0]}) at epoch {epoch} step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if lr_at is not None:
            set_lr(optimizer, lr_at(step, steps))
        optimizer.step()
        if after_step is not None:
            after_step()
        sums += values
        scores.append(out.scores.detach().float().cpu())
        labels_seen.append(labels.cpu())
        images += x.shape[0] * rt.world
        rate = images / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{values[0]:.3f}", img_s=f"{rate:.1f}", refresh=False)
        bar.update()
    bar.close()
    if steps == 0:
        raise ValueError(
            "the training loader yields no full batch: the split is smaller than train.batch_size"
        )
    mean = [float(v) for v in sums / steps]
    return {
        "loss": mean[0],
        "loss_cls": mean[1],
        "loss_mask": mean[2],
        "steps": steps,
        "images_per_s": rate,
        "mAP": mean_average_precision(torch.cat(scores), torch.cat(labels_seen)),
    }


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    *,
    num_classes: int,
    rt: Runtime,
    mask_weight: float = 1.0,
) -> dict[str, float]:
    """Single-scale eval on ``loader`` (batches grouped by image size).

    mIoU uses the raw argmax of the eval-mode masks (no CRF, no label cut). Returns ``val_mIoU``,
    ``val_pixacc``, ``val_mAP`` (image-level) and ``val_loss`` (mean of ``L_cls + w·L_mask``
    with the post-PRETRAIN loss, eval-mode network; the authors' selection proxy is ``1 − val_loss``).
    """
    was_training = model.training
    model.eval()
    conf, scores, labels_seen, loss_sum, n = ConfusionMatrix(num_classes), [], [], 0.0, 0
    for groups in loader:
        for batch in groups:
            x, raw, labels = _inputs(batch, rt)
            out = model(x, images_raw=raw, labels=labels)
            loss = step_loss(out.loss_cls, out.loss_mask, use_mask=True, mask_weight=mask_weight)
            loss_sum, n = loss_sum + float(loss) * x.shape[0], n + x.shape[0]
            _, masks = model(x)  # eval output: masks at the input size, uncleaned
            for gt, pred in zip(batch["mask"].numpy(), masks.argmax(1).cpu().numpy(), strict=True):
                conf.update(gt, pred)
            scores.append(out.scores.float().cpu())
            labels_seen.append(labels.cpu())
    model.train(was_training)
    metrics = conf.compute()
    return {
        "val_mIoU": metrics["miou"],
        "val_pixacc": metrics["pixacc"],
        "val_loss": loss_sum / max(n, 1),
        "val_mAP": mean_average_precision(torch.cat(scores), torch.cat(labels_seen)),
    }


@torch.no_grad()
def figure_rows(model: nn.Module, items: list[dict], rt: Runtime) -> list[PanelRow]:
    """Figure-6 columns for each item (a dataset item dict, ``train=False``), eval-mode network."""
    was_training = model.training
    model.eval()
    rows = []
    for item in items:
        batch = {k: v.unsqueeze(0) for k, v in item.items() if isinstance(v, torch.Tensor)}
        x, raw, labels = _inputs(batch, rt)
        out = model(x, images_raw=raw, labels=labels)
        rows.append(
            PanelRow(
                image=item["image_raw"].permute(1, 2, 0).numpy(),
                cam=out.masks[0, 1:].max(0).values.float().cpu().numpy(),
                refined=out.refined[0].argmax(0).cpu().numpy(),
                pseudo_gt=out.pseudo_gt[0].cpu().numpy(),
                gt=item["mask"].numpy(),
            )
        )
    model.train(was_training)
    return rows


# ---------------------------------------------------------------------------------------------
# fit
@dataclass
class _Fit:
    """Everything one ``fit`` call threads through its epochs."""

    params: Params
    rt: Runtime
    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    figure_items: list[dict]
    num_classes: int
    report: Report
    quiet: bool
    state: dict  # history, best_epoch, best_score, n_params, resumed_from, precision (in checkpoints)
    ema: nn.Module | None = None  # torch.optim.swa_utils.AveragedModel when train.ema_decay > 0
    class_names: list[str] | None = None  # background first, stored in the checkpoints

    @property
    def out_dir(self) -> Path:
        return Path(self.params.train.out_dir)

    @property
    def evaluated(self) -> nn.Module:
        """The network that is validated and drawn: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model


def _build(params: Params, rt: Runtime, report: Report, quiet: bool) -> _Fit:
    """Datasets, loaders, model and optimiser of ``params`` (the model is wrapped later, after resuming)."""
    import wsfcn.model
    from wsfcn.data.datasets import build_dataset, build_loader

    tp = params.train
    if tp.batch_size % rt.world:
        raise ValueError(f"train.batch_size={tp.batch_size} does not split evenly over {rt.world} workers")
    per_rank = tp.batch_size // rt.world
    train_loader = build_loader(
        params.data,
        params.data.train_split,
        batch_size=per_rank,
        train=True,
        seed=tp.seed,
        rank=rt.rank,
        world_size=rt.world,
    )
    val_set = build_dataset(params.data, params.data.val_split, train=False)
    val_loader = make_val_loader(
        val_set, subset=tp.val_subset, batch_size=per_rank, workers=params.data.loader_workers
    )
    seed_epoch(tp.seed, 0, 0)  # seeded initialisation (the authors' is not), the same on every rank
    model = wsfcn.model.build_model(params.model, val_set.num_classes, params.loss).to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(
        model,
        lr=tp.lr,
        momentum=tp.momentum,
        weight_decay=tp.weight_decay,
        head_lr_mult=tp.head_lr_mult,
        head_bias_lr_mult=tp.head_bias_lr_mult,
    )
    figure_items = [val_set[i] for i in range(min(FIGURE_IMAGES, len(val_set)))] if rt.rank == 0 else []
    ema = None
    if tp.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        # parameters and BN buffers averaged after every step; the first update copies the weights
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tp.ema_decay), use_buffers=True)
    state = {
        "history": [],
        "best_epoch": None,
        "best_score": None,
        "resumed_from": 0,
        "n_params": wsfcn.model.count_parameters(model),
        "precision": precision_name(rt.amp_dtype),
    }
    return _Fit(
        params,
        rt,
        model,
        model,
        optimizer,
        train_loader,
        val_loader,
        figure_items,
        val_set.num_classes,
        report,
        quiet,
        state,
        ema,
        val_set.class_names,
    )


def _wrap(fit_: _Fit) -> None:
    """DDP across the ranks (after resuming, so every rank starts from the same loaded weights).

    ``static_graph``: the set of parameters that get gradients is the same every step (it may
    miss some, e.g. the official FCA's unused MCLM BNs), without a per-step graph search.
    """
    if fit_.rt.world > 1:
        ids = [fit_.rt.device.index] if fit_.rt.device.type == "cuda" else None
        fit_.net = nn.parallel.DistributedDataParallel(fit_.model, device_ids=ids, static_graph=True)
    if fit_.params.train.compile:
        from wsfcn.train.compiled import compile_model

        fit_.net = compile_model(fit_.net)


def _resume(fit_: _Fit, candidates: Sequence[str | Path]) -> int:
    """Load the newest checkpoint of this run among ``candidates``; return its epoch (0: none).

    A run continues only from a checkpoint of the same params and the same training code; when
    ``last.pt`` exists but differs in either, one line says why the run starts from scratch.
    """
    want, code = fingerprint(fit_.params), training_code_fingerprint()
    found = newest_resumable(list(candidates), want, code=code)
    last = fit_.out_dir / "last.pt"
    if found is None:
        if last.is_file() and fit_.rt.rank == 0:
            try:
                why = resume_refusal(load_checkpoint(last, mmap=True), want, code, str(last))
            except CheckpointError as err:
                why = str(err)
            print(f"{why}: training from scratch", file=sys.stderr, flush=True)
        return 0
    path, state = found
    fit_.model.load_state_dict(state["model"])
    if fit_.ema is not None:
        fit_.ema.module.load_state_dict(evaluated_weights(state))
        fit_.ema.n_averaged.fill_(1)  # go on averaging (a zero count would copy the weights)
    fit_.optimizer.load_state_dict(state["optimizer"])
    fit_.state.update({k: state["metrics"][k] for k in ("history", "best_epoch", "best_score")})
    fit_.state["resumed_from"] = state["epoch"]
    if fit_.rt.rank == 0:
        fit_.out_dir.mkdir(parents=True, exist_ok=True)  # resumed from Ray's checkpoint on a fresh node
        repair_best(fit_.out_dir / "best.pt", path, state)
    if not fit_.quiet and fit_.rt.rank == 0:
        print(f"resuming {fit_.params.train.run_name} from {path} (epoch {state['epoch']})", flush=True)
    return state["epoch"]


def repair_best(best: Path, source: Path, state: dict) -> None:
    """A kill between writing last.pt and linking best.pt leaves best.pt one step behind: relink it."""
    want = state["metrics"]["best_epoch"] or state["epoch"]  # None: best.pt mirrors last.pt
    if want != state["epoch"]:
        return
    try:
        have = load_checkpoint(best, mmap=True)["epoch"]
    except CheckpointError:
        have = None
    if have != want:
        link_or_copy(source, best)


def select_best(state: dict, entry: dict, tp: TrainParams) -> bool:
    """method §6.1: after PRETRAIN keep the best validation score (ties → later epoch).

    ``select_by: last`` (embedded) keeps every self-training epoch, so best.pt is the last one.

    ``entry`` is an epoch report (gets ``val_score``); ``state`` holds ``best_epoch``/``best_score``
    and is updated when ``entry`` is the new best.
    """
    if entry["epoch"] <= tp.pretrain_epochs:
        return False
    if tp.select_by == "last":  # every self-training epoch replaces the last; no val images consulted
        state.update(best_epoch=entry["epoch"], best_score=entry.get("val_mIoU"))
        return True
    if "val_mIoU" not in entry:
        return False
    score = entry["val_mIoU"] if tp.select_by == "miou" else 1.0 - entry["val_loss"]
    entry["val_score"] = score
    if state["best_score"] is not None and score < state["best_score"]:
        return False
    state.update(best_epoch=entry["epoch"], best_score=score)
    return True


def _save(fit_: _Fit, epoch: int, is_best: bool) -> Path:
    last = fit_.out_dir / "last.pt"
    save_checkpoint(
        last,
        model=fit_.model,
        optimizer=fit_.optimizer,
        epoch=epoch,
        params=fit_.params,
        rng_state=capture_rng_state(),
        metrics=fit_.state,
        num_classes=fit_.num_classes,
        class_names=fit_.class_names,
        ema=fit_.ema.module if fit_.ema is not None else None,
        code_fingerprint=training_code_fingerprint(),
    )
    if is_best or fit_.state["best_epoch"] is None:  # before PRETRAIN ends best.pt mirrors last.pt
        link_or_copy(last, fit_.out_dir / "best.pt")
    if epoch == fit_.params.train.pretrain_epochs:  # the network's own masks before self-training
        link_or_copy(last, fit_.out_dir / "pretrain.pt")
    return last


def _scheduled_lr(tp: TrainParams, epoch: int, step: int, steps: int) -> float:
    """``train.lr`` times the schedule's factor at ``step`` of ``steps`` in ``epoch``."""
    factor = lr_factor(
        tp.lr_schedule,
        power=tp.lr_power,
        epoch=epoch,
        step=step,
        steps_per_epoch=steps,
        pretrain_epochs=tp.pretrain_epochs,
        epochs=tp.epochs,
        decay_epochs=tp.lr_decay_epochs,
    )
    return tp.lr * factor


def _epoch(fit_: _Fit, epoch: int) -> dict:
    tp, rt = fit_.params.train, fit_.rt
    seed_epoch(tp.seed, epoch, rt.rank, fit_.train_loader)
    stats = train_one_epoch(
        fit_.net,
        fit_.train_loader,
        fit_.optimizer,
        epoch=epoch,
        use_mask=epoch > tp.pretrain_epochs,
        mask_weight=fit_.params.loss.mask_weight,
        rt=rt,
        max_steps=tp.max_steps_per_epoch,
        progress=not fit_.quiet and rt.rank == 0,
        lr_at=None if tp.lr_schedule == "constant" else functools.partial(_scheduled_lr, tp, epoch),
        after_step=None if fit_.ema is None else functools.partial(fit_.ema.update_parameters, fit_.model),
    )
    entry = {"epoch": epoch, **stats}
    if rt.rank == 0 and (epoch % max(tp.val_every, 1) == 0 or epoch == tp.epochs):
        entry.update(
            validate(
                fit_.evaluated,
                fit_.val_loader,
                num_classes=fit_.num_classes,
                rt=rt,
                mask_weight=fit_.params.loss.mask_weight,
            )
        )
    is_best = rt.rank == 0 and select_best(fit_.state, entry, fit_.params.train)
    fit_.state["history"].append(entry)
    report = dict(entry, best_epoch=fit_.state["best_epoch"] or 0)
    if rt.rank == 0:
        report["checkpoint"] = str(_save(fit_, epoch, is_best))
        if tp.figure_every > 0 and fit_.figure_items and (epoch % tp.figure_every == 0 or epoch == tp.epochs):
            path = fit_.out_dir / "figures" / f"epoch_{epoch:03d}.png"
            report["figure"] = str(
                save_training_figure(
                    path,
                    figure_rows(fit_.evaluated, fit_.figure_items, rt),
                    title=f"{tp.run_name}, epoch {epoch}",
                )
            )
        if not fit_.quiet:
            print(_summary(entry, tp.epochs, is_best), flush=True)
    fit_.report(report)
    return entry


def _summary(e: dict, epochs: int, is_best: bool) -> str:
    line = f"epoch {e['epoch']}/{epochs}  loss {e['loss']:.4f}"
    line += f" (cls {e['loss_cls']:.4f} mask {e['loss_mask']:.4f})"
    line += f"  mAP {100 * e['mAP']:.1f}"
    if "val_mIoU" in e:
        line += f"  val mIoU {100 * e['val_mIoU']:.1f} mAP {100 * e['val_mAP']:.1f} loss {e['val_loss']:.4f}"
    return line + f"  {e['images_per_s']:.1f} img/s" + ("  *best*" if is_best else "")


def fit(
    params: Params,
    *,
    report: Report,
    resume: bool = True,
    resume_from: Sequence[str | Path] = (),
    quiet: bool = False,
) -> FitResult:
    """Train ``params`` for ``train.epochs`` epochs; ``report(dict)`` gets ``n_params`` and ``world_size``
    (the processes training together) once, then each epoch.

    Files (rank 0): ``<train.out_dir>/last.pt`` every epoch, ``best.pt`` (method §6.1 choice;
    a copy of ``last.pt`` until PRETRAIN ends), ``figures/epoch_XXX.png``. With ``resume`` the
    newest checkpoint among ``resume_from`` and ``last.pt`` whose params fingerprint matches
    is continued. A non-finite loss raises :class:`NonFiniteLossError` and leaves the last good
    checkpoint in place.
    """
    rt = setup_runtime(params.train)
    fit_ = _build(params, rt, report, quiet)
    start = _resume(fit_, [*resume_from, fit_.out_dir / "last.pt"]) if resume else 0
    _wrap(fit_)
    report({"n_params": fit_.state["n_params"], "world_size": fit_.rt.world})  # world: torch.distributed
    epoch = start
    try:
        for epoch in range(start + 1, params.train.epochs + 1):
            _epoch(fit_, epoch)
    except NonFiniteLossError as err:
        kept = f"{fit_.out_dir / 'last.pt'} (epoch {epoch - 1})" if epoch > 1 else "none (first epoch)"
        raise NonFiniteLossError(
            f"{err}; run {params.train.run_name!r} stopped, last good checkpoint: {kept}"
        ) from None
    s = fit_.state
    return FitResult(
        fit_.out_dir,
        fit_.out_dir / "last.pt",
        fit_.out_dir / "best.pt",
        max(start, epoch),
        s["best_epoch"],
        s["best_score"],
        s["n_params"],
        s["history"],
        s["resumed_from"],
        s["precision"],
        training_code_fingerprint(),
    )
