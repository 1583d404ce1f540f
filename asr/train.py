"""The training loop: teacher forcing (+ optional scheduled sampling), guided attention,
AdamW with warmup, length-bucketed batches, per-step CSV log, attention plots, atomic and
exactly resumable checkpoints, checkpoint selection by dev WER and checkpoint averaging.

Under torchrun the same loop runs in every process (asr/distributed.py): each rank trains on its
own shard of the epoch's batches (asr.data.shard_batches), DistributedDataParallel averages the
gradients, and rank 0 alone evaluates and writes everything below.

Layout of an experiment directory (cfg.train.exp_dir):
    config.yaml          the config of the run
    tokenizer/           the tokenizer trained on the training transcripts (train.init_model's, when set)
    aux_tokenizer/       with train.aux_data: the characters of the joint task (asr/joint.py)
    train_log.csv        one row per logged step; eval rows carry dev WER
    plots/               cross-attention of a fixed dev utterance at every evaluation
    checkpoints/         last.pt (for resuming) and step-N.pt (best by dev WER)
    model/               the exported model directory (average of the best checkpoints)
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import fmean
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.config import (
    ConfigError, ExperimentConfig, experiment_config, load_config, resolve_device, save_config, to_dict,
)
from asr.data import ASRDataset, Batch, BucketBatchSampler, Utterance, collate, load_manifest, shard_batches
from asr.distributed import join_world, leave_world
from asr.evaluate import Normalizer, score
from asr.joint import AuxCTC
from asr.features import compute_cmvn, fbank
from asr.audio import load_audio
from asr.model import ASRModel, load_model_dir, save_model_dir
from asr.model.asr_model import prepend_sos
from asr.plots import plot_attention
from asr.tokenizer import UNK_ID, Tokenizer
from asr.transcribe import Transcriber

CMVN_MAX_UTTS = 2000  # utterances read to estimate the global mean/std


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch`'s list already trained on, by all ranks (for mid-epoch resume)
    best: list = field(default_factory=list)  # [[dev_wer, step], ...] kept checkpoints, best first
    seconds: float = 0.0  # training wall time so far
    last_eval_step: int = -1
    world_size: int = 1  # processes that trained the last step
    aux_batches: int = 0  # batches of train.aux_data trained on (asr/joint.py)


def noam_lambda(warmup: int):
    """LR multiplier: linear warmup to 1 at `warmup` steps, then inverse square-root decay."""
    return lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))


def sampling_prob_at(cfg: ExperimentConfig, step: int) -> float:
    ss = cfg.scheduled_sampling
    if ss.max_prob <= 0 or step < ss.start_step:
        return 0.0
    return ss.max_prob * min(1.0, (step - ss.start_step) / max(ss.ramp_steps, 1))


def rng_state() -> dict:
    """This process's random generators (torch, CUDA, Python, NumPy), in a checkpoint's keys."""
    return {
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_python": json.dumps(random.getstate()),
        "rng_numpy": json.dumps([x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]),
    }


def set_rng_state(saved: dict) -> None:
    torch.set_rng_state(saved["rng_torch"])
    if saved["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng_cuda"])
    version, internal, gauss = json.loads(saved["rng_python"])
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = json.loads(saved["rng_numpy"])
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(
    path: Path, cfg: ExperimentConfig, model, optimizer, scheduler, scaler, state: TrainState, rngs: list[dict],
    aux_head: Optional[nn.Module] = None,
) -> None:
    """torch.save to a temporary file, then an atomic rename: a kill never leaves half a checkpoint.
    rngs: rng_state() of every rank, in rank order (rank 0's under the top-level keys).
    aux_head: the joint training's character head (asr/joint.py), if the run has one."""
    payload = {
        "config": json.dumps(to_dict(cfg)),  # the run's config, so a resume can check it continues the same run
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),  # empty unless fp16
        "state": json.dumps(asdict(state)),
        **rngs[0],
        "rng_other_ranks": rngs[1:],
        **({"aux_head": aux_head.state_dict()} if aux_head is not None else {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path, model, optimizer=None, scheduler=None, scaler=None, rank: int = 0, aux_head: Optional[nn.Module] = None
) -> TrainState:
    """Restore everything save_checkpoint wrote, with rank `rank`'s random generators (a rank the
    checkpoint's run did not have keeps its own). weights_only=True: nothing is unpickled."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"])
    if aux_head is not None:
        aux_head.load_state_dict(ckpt["aux_head"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and scaler.is_enabled() and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        rngs = [ckpt, *ckpt.get("rng_other_ranks", [])]
        if rank < len(rngs):
            set_rng_state(rngs[rank])
    return TrainState(**json.loads(ckpt["state"]))


def checkpoint_config(path: Path) -> Optional[ExperimentConfig]:
    """The config a checkpoint was written with; None for checkpoints from before they held it."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: the weights are not read
    return experiment_config(json.loads(ckpt["config"]), f"{path} config") if "config" in ckpt else None


# What a resumed run may change: how long it runs, how often it logs, evaluates and saves, on
# what hardware, what it exports, and the inference defaults stored with the model. Anything
# else (features, tokenizer, model, augmentation, losses, scheduled sampling, optimiser, data,
# seed, batch size) changes what the remaining steps compute, or which utterances the rest of
# the interrupted epoch holds: the result would be a model no single config.yaml describes.
RESUMABLE_KEYS = (
    "train.epochs", "train.max_steps", "train.log_every", "train.eval_every_steps", "train.checkpoint_every_steps",
    "train.num_workers", "train.device", "train.precision", "train.keep_checkpoints", "train.average_best",
    "train.report_data", "train.exp_dir",
)


def check_resume(saved: ExperimentConfig, cfg: ExperimentConfig, where: Path) -> list[str]:
    """Refuse (ConfigError naming the keys) to resume the run of `saved` with `cfg` if they differ
    outside RESUMABLE_KEYS and inference.*; return the allowed changes, one "key: old -> new" each."""
    old, new = _flat(saved), _flat(cfg)
    changed = [key for key in new if old[key] != new[key]]
    refused = [key for key in changed if key not in RESUMABLE_KEYS and not key.startswith("inference.")]
    if refused:
        raise ConfigError(
            f"cannot resume from {where}: it was trained with another "
            + ", ".join(f"{key} ({old[key]!r}, now {new[key]!r})" for key in refused)
            + f". A resumed run may change only {', '.join(RESUMABLE_KEYS)} and inference.*;"
            " to train with the new config, give another train.exp_dir"
        )
    return [f"{key}: {old[key]!r} -> {new[key]!r}" for key in changed]


def _flat(cfg: ExperimentConfig) -> dict:
    return {f"{section}.{key}": value for section, values in to_dict(cfg).items() for key, value in values.items()}


def average_checkpoints(paths: list[Path]) -> dict:
    """Element-wise mean of the model weights in `paths` (integer buffers taken from the first)."""
    avg = None
    for p in paths:
        state = torch.load(p, map_location="cpu", weights_only=True)["model"]
        if avg is None:
            avg = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                if v.is_floating_point():
                    avg[k] += v.double()
    return {k: (v / len(paths)).float() if v.is_floating_point() else v for k, v in avg.items()}


def export_checkpoints(paths: list[Path], cfg: ExperimentConfig, tokenizer: Tokenizer, out: Path) -> tuple[ASRModel, Path]:
    """The mean of the checkpoints' weights as a model directory at `out` (what the run's end writes,
    and `asr export` for any checkpoints of a run, finished or not)."""
    model = ASRModel(cfg.model, tokenizer.vocab_size, cfg.features.num_mel_bins)
    model.load_state_dict(average_checkpoints(paths))
    return model, save_model_dir(out, model, tokenizer, cfg)


def export_run(exp_dir: str | Path, out: str | Path, steps: Sequence[int] = ()) -> Path:
    """A run's checkpoints at `steps` (default: its last.pt) averaged into a model directory at
    `out`, with the run's config and tokenizer. FileNotFoundError names what is missing."""
    exp = Path(exp_dir)
    for needed in (exp / "config.yaml", exp / "tokenizer"):
        if not needed.exists():
            raise FileNotFoundError(f"{exp} is not a training run's folder: it has no {needed.name}")
    names = [f"step-{s}.pt" for s in steps] or ["last.pt"]
    paths = [exp / "checkpoints" / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        kept = sorted(p.name for p in (exp / "checkpoints").glob("*.pt"))
        raise FileNotFoundError(f"{exp / 'checkpoints'} has no {', '.join(missing)} (it has: {', '.join(kept) or 'none'})")
    cfg = load_config(exp / "config.yaml")
    return export_checkpoints(paths, cfg, Tokenizer.load(exp / "tokenizer"), Path(out))[1]


def initial_model(cfg: ExperimentConfig, texts: list[str]) -> tuple[ASRModel, Tokenizer]:
    """train.init_model, checked against the run's config and its training transcripts `texts`: the
    network and the features must be the same (the weights and the CMVN statistics fit nothing
    else), but for the no-speech head, which is trained after the rest (asr train-no-speech) and has
    to learn the changed encoder again; its tokenizer must know every word of `texts` (fine-tuning
    cannot add tokens). ConfigError otherwise."""
    model, tokenizer, init_cfg = load_model_dir(cfg.train.init_model)
    for section in ("model", "features"):
        mine, theirs = to_dict(cfg)[section], to_dict(init_cfg)[section]
        diff = [k for k in mine if mine[k] != theirs[k] and k != "no_speech_head"]
        if diff:
            said = ", ".join(f"{k} ({theirs[k]!r}, here {mine[k]!r})" for k in diff)
            raise ConfigError(f"train.init_model: {cfg.train.init_model} has another {section} section: {said}")
    unknown = sorted({w for text in texts for w in text.split() if UNK_ID in tokenizer.encode(w)})
    if unknown:
        raise ConfigError(
            f"train.init_model: the tokenizer of {cfg.train.init_model} cannot write {len(unknown)} word(s) of the "
            f"training transcripts ({', '.join(unknown[:10])}); fine-tuning keeps its vocabulary"
        )
    return model, tokenizer


def estimate_cmvn(utts, cfg: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    rng = random.Random(cfg.train.seed)
    sample = rng.sample(utts, min(len(utts), CMVN_MAX_UTTS))
    feats = (fbank(torch.from_numpy(load_audio(u.audio, cfg.features.sample_rate)), cfg.features) for u in sample)
    return compute_cmvn(feats)


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """train.precision on `device` -> the dtype the forward pass autocasts to (None: fp32 throughout).
    The losses are computed in fp32 either way (asr/losses.py)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision: fp16 needs a GPU; on CPU use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def step_groups(batches: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    """Batches -> lists of `size` consecutive ones: the batches of one optimiser step (a partial last group is dropped)."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []


class Trainer:
    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg
        # the config's mistakes, as ConfigError, before anything is written (on every rank alike)
        self.device = resolve_device(cfg.train.device)
        self.autocast_dtype = autocast_dtype(cfg.train.precision, self.device)
        for name in ("train_data", "dev_data"):
            if not getattr(cfg.train, name):
                raise ConfigError(f"train.{name} is not set: give a Kaldi data dir or a JSONL manifest")
        self.world, self.device = join_world(self.device)
        self.exp = Path(cfg.train.exp_dir)
        last = self.exp / "checkpoints" / "last.pt"
        if last.exists():
            self._check_resume(last)
        if self.world.is_main:
            try:
                (self.exp / "checkpoints").mkdir(parents=True, exist_ok=True)
                (self.exp / "plots").mkdir(exist_ok=True)
            except OSError as e:
                raise ConfigError(f"train.exp_dir: cannot create {self.exp}/ ({e.strerror})") from None
            save_config(cfg, self.exp / "config.yaml")
        # Each rank its own seed, so that ranks draw different dropout masks; rank 0's is the run's.
        seed = cfg.train.seed + self.world.rank
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)

        self.train_utts = load_manifest(cfg.train.train_data)
        self.dev_utts = load_manifest(cfg.train.dev_data)
        if cfg.train.dev_max_utts:
            self.dev_utts = self.dev_utts[: cfg.train.dev_max_utts]
        # fine-tuning: the weights, CMVN and tokenizer of train.init_model (read once: a resumed run has them)
        texts = [u.text or "" for u in self.train_utts]
        init_model, init_tokenizer = initial_model(cfg, texts) if cfg.train.init_model and not last.exists() else (None, None)
        with self.world.main_first():  # rank 0 trains and saves it, the others load it
            if init_tokenizer is not None and self.world.is_main:
                init_tokenizer.save(self.exp / "tokenizer")
            self.tokenizer = Tokenizer.load_or_train(cfg.tokenizer.kind, texts, self.exp / "tokenizer", cfg.tokenizer.vocab_size)

        self.model = ASRModel(cfg.model, self.tokenizer.vocab_size, cfg.features.num_mel_bins).to(self.device)
        if init_model is not None:  # initial_model checked that the two differ in a no-speech head at most
            mine = self.model.state_dict()
            self.model.load_state_dict({k: v for k, v in init_model.state_dict().items() if k in mine}, strict=False)
        self.aux = None
        if cfg.train.aux_data:
            if self.world.size > 1:
                raise ConfigError("train.aux_data: joint training runs in one process for now (not under torchrun)")
            self.aux = AuxCTC(cfg, self.exp, self.device)
        params = list(self.model.parameters()) + (list(self.aux.head.parameters()) if self.aux else [])
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.optim.lr, betas=(0.9, 0.98), weight_decay=cfg.optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, noam_lambda(cfg.optim.warmup_steps))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.state = TrainState()
        if last.exists():  # every rank loads the same checkpoint
            self.state = load_checkpoint(last, self.model, self.optimizer, self.scheduler, self.scaler, self.world.rank,
                                         self.aux.head if self.aux else None)
            self._say(f"resumed from {last} at step {self.state.step} (epoch {self.state.epoch})")
            if self.state.world_size != self.world.size:
                self._say(f"resuming with {self.world.size} processes (the run had {self.state.world_size}): "
                          "the global batch changes from here")
        elif init_model is None:  # estimated by rank 0, sent to the others
            mean, std = self.world.from_main(estimate_cmvn(self.train_utts, cfg) if self.world.is_main else None)
            self.model.set_cmvn(mean.to(self.device), std.to(self.device))
        self.state.world_size = self.world.size
        self.train_model = self._data_parallel()

        self.train_set = ASRDataset(self.train_utts, self.tokenizer, cfg.features, cfg.augment, seed=cfg.train.seed)
        self.dev_set = ASRDataset(self.dev_utts, self.tokenizer, cfg.features, None, seed=cfg.train.seed)
        self.report_utts = load_manifest(cfg.train.report_data) if cfg.train.report_data else []
        self.log_path = self.exp / "train_log.csv"
        self.log_fields = LOG_FIELDS
        if self.log_path.exists():  # a resumed run keeps the columns its log began with (an older version's, perhaps)
            with self.log_path.open(newline="") as f:
                self.log_fields = next(csv.reader(f), LOG_FIELDS)
        # The plotted utterance: the one with the most words among the first 20, so the
        # diagonal (or its absence) is easy to see.
        first = self.dev_utts[:20]
        self.plot_index = max(range(len(first)), key=lambda i: (len((first[i].text or "").split()), -i))

    def _check_resume(self, last: Path) -> None:
        """The run in exp_dir may be continued only with a config that describes the same run (check_resume)."""
        saved = checkpoint_config(last)
        if saved is None and (self.exp / "config.yaml").exists():  # a checkpoint from before they held it
            saved = load_config(self.exp / "config.yaml")
        if saved is not None:
            for change in check_resume(saved, self.cfg, last):
                self._say(f"resuming with {change}")

    def _say(self, line: str) -> None:
        if self.world.is_main:
            print(line)

    def _data_parallel(self) -> nn.Module:
        """The module the training step calls: the model itself in one process; across processes, DDP
        around it, which copies rank 0's weights and buffers to every rank now and averages the
        gradients in every synchronised backward pass."""
        if self.world.size == 1:
            return self.model
        if self.model.no_speech_head is not None:  # it learns afterwards (asr train-no-speech); DDP needs
            self.model.no_speech_head.requires_grad_(False)  # a gradient for every trainable parameter
        # broadcast_buffers=False: DDP would send every buffer from rank 0 before every forward pass. The
        # CMVN statistics and the position tables are the same on every rank already, and the Conformer's
        # batch-norm statistics are used by rank 0 alone (evaluation, checkpoints).
        return DistributedDataParallel(
            self.model, device_ids=[self.device] if self.device.type == "cuda" else None, broadcast_buffers=False
        )

    # ------------------------------------------------------------------ training
    def run(self) -> Path:
        cfg = self.cfg.train
        sampler = BucketBatchSampler(self.train_set.frame_lengths(), cfg.max_frames_per_batch, shuffle=True, seed=cfg.seed)
        start = time.time() - self.state.seconds
        if self.aux is not None:
            self.aux_batches = self.aux.batches(self.state.aux_batches)
        while self.state.epoch < cfg.epochs and not self._done():
            loader = self._epoch_loader(sampler)
            # disable=None: a progress bar on a terminal, none in a log file (evaluations still print)
            bar = tqdm(loader, desc=f"epoch {self.state.epoch}", leave=False, dynamic_ncols=True,
                       disable=None if self.world.is_main else True)
            for batches in step_groups(bar, cfg.accumulate_steps):
                row = self._train_step([batch.to(self.device) for batch in batches])
                self.state.batch_in_epoch += self.world.size * cfg.accumulate_steps
                self.state.seconds = time.time() - start
                if self.state.step % cfg.log_every == 0:
                    row = self._over_ranks(row)
                    self._log(row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.3f}")
                if cfg.eval_every_steps and self.state.step % cfg.eval_every_steps == 0:
                    self._evaluate()
                elif self.state.step % cfg.checkpoint_every_steps == 0:
                    self._save(self.exp / "checkpoints" / "last.pt")
                if self._done():
                    break
            else:
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
                if not cfg.eval_every_steps:
                    self._evaluate()
        if self.state.last_eval_step != self.state.step:
            self._evaluate()
        out = self.export() if self.world.is_main else self.exp / "model"
        self.world.barrier()  # every rank returns once the model directory is written
        return out

    def _epoch_loader(self, sampler: BucketBatchSampler) -> DataLoader:
        """This rank's share (shard_batches) of the batches of the epoch not yet trained on."""
        cfg = self.cfg.train
        sampler.set_epoch(self.state.epoch)
        self.train_set.set_epoch(self.state.epoch)
        remaining = list(sampler)[self.state.batch_in_epoch :]
        per_step = self.world.size * cfg.accumulate_steps
        if self.state.batch_in_epoch == 0 and len(remaining) < per_step:
            raise ConfigError(
                f"the training data makes {len(remaining)} batches an epoch, fewer than one step takes "
                f"({self.world.size} processes x train.accumulate_steps {cfg.accumulate_steps}): "
                "lower train.max_frames_per_batch or train.accumulate_steps"
            )
        return DataLoader(
            self.train_set, batch_sampler=shard_batches(remaining, self.world.rank, self.world.size, cfg.accumulate_steps),
            collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=False,
        )

    def _save(self, *paths: Path) -> None:
        """Every rank gives its random generators' state; rank 0 writes the checkpoint to each of `paths`."""
        rngs = self.world.gather(rng_state())
        if self.world.is_main:
            for path in paths:
                save_checkpoint(path, self.cfg, self.model, self.optimizer, self.scheduler, self.scaler, self.state, rngs,
                                self.aux.head if self.aux else None)

    def _done(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.state.step >= self.cfg.train.max_steps

    def _train_step(self, batches: list[Batch]) -> dict:
        """One optimiser step on this rank's `batches` (train.accumulate_steps of them): the gradient is
        the mean of the batches' loss gradients over the batches and the ranks. -> this rank's figures."""
        self.model.train()
        sampling_prob = sampling_prob_at(self.cfg, self.state.step)
        self.optimizer.zero_grad(set_to_none=True)
        outs = []
        for i, batch in enumerate(batches):
            # DDP averages the gradients over the ranks in the step's last backward pass only
            last = i == len(batches) - 1
            with nullcontext() if last or self.world.size == 1 else self.train_model.no_sync():
                with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                    out = self.train_model(
                        batch.feats, batch.feat_lens, batch.tokens, batch.token_lens, self.cfg.loss,
                        sampling_prob, batch.speech,
                    )
                self.scaler.scale(out.loss / len(batches)).backward()  # scale: fp16's loss scaling, else as is
            outs.append(out)
        aux_ctc = 0.0
        if self.aux is not None:  # one batch of the other speech (one process: no DDP to synchronise)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                aux = self.aux.loss(self.model, next(self.aux_batches))
            self.scaler.scale(self.cfg.train.aux_weight * aux).backward()
            self.state.aux_batches += 1
            aux_ctc = aux.item()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for group in self.optimizer.param_groups for p in group["params"]], self.cfg.optim.grad_clip
        )
        self.scaler.step(self.optimizer)  # skipped by fp16's scaler when a gradient is not finite
        self.scaler.update()
        self.scheduler.step()
        self.state.step += 1
        frames = sum(batch.feat_lens.sum().item() for batch in batches)
        return {
            "loss": fmean(o.loss.item() for o in outs), "attention_ce": fmean(o.attention_ce.item() for o in outs),
            "ctc": fmean(o.ctc.item() for o in outs), "guided": fmean(o.guided.item() for o in outs),
            "accuracy": fmean(o.accuracy for o in outs), "aux_ctc": aux_ctc,
            "grad_norm": float(grad_norm), "lr": self.scheduler.get_last_lr()[0],
            "audio_seconds": frames * self.cfg.features.frame_shift_ms / 1000,
        }

    def _over_ranks(self, row: dict) -> dict:
        """A step's figures over all ranks: audio seconds summed, the rest averaged (the gradient norm
        and the learning rate are the same on every rank)."""
        if self.world.size == 1:
            return row
        total = dict(zip(row, self.world.sum(list(row.values()))))
        return {k: v if k == "audio_seconds" else v / self.world.size for k, v in total.items()}

    # ---------------------------------------------------------------- evaluation
    def dev_wer(self, model: Optional[ASRModel] = None, utts: Optional[list[Utterance]] = None) -> float:
        """Decode the dev set (or `utts`) through the Transcriber with train.dev_decoder's greedy search,
        one warp, and score it: the dev WER chooses checkpoints, and comes from the code `asr decode` runs."""
        model, utts = model or self.model, utts or self.dev_utts
        model.eval()
        cfg = replace(self.cfg, inference=replace(self.cfg.inference, vtln_warps=(1.0,)))
        transcriber = Transcriber(model, self.tokenizer, cfg, "training", self.device)
        hyps = {u.id: r.text for u, r in transcriber.decode_manifest(utts, transcriber.options(self.cfg.train.dev_decoder))}
        return score({u.id: u.text or "" for u in utts}, hyps, Normalizer()).wer

    def _evaluate(self) -> None:
        """Rank 0 scores the dev (and report) set and plots, the others waiting; then every rank keeps
        the same list of best checkpoints, and rank 0 writes them."""
        scores = None
        if self.world.is_main:
            scores = {"dev_wer": self.dev_wer()}
            if self.report_utts:
                scores["report_wer"] = self.dev_wer(utts=self.report_utts)
            self._plot_attention()
        scores = self.world.from_main(scores)
        wer, step = scores["dev_wer"], self.state.step
        ckpt_dir = self.exp / "checkpoints"
        self.state.best.append([wer, step])
        self.state.best.sort(key=lambda ws: (ws[0], -ws[1]))  # lowest WER first, later step on ties
        kept, dropped = self.state.best[: self.cfg.train.keep_checkpoints], self.state.best[self.cfg.train.keep_checkpoints :]
        self.state.best = kept
        self.state.last_eval_step = step
        self._save(*([ckpt_dir / f"step-{step}.pt"] if [wer, step] in kept else []), ckpt_dir / "last.pt")
        if not self.world.is_main:
            return
        for _, s in dropped:
            (ckpt_dir / f"step-{s}.pt").unlink(missing_ok=True)
        self._log(scores)
        extra = f", report WER {100 * scores['report_wer']:.2f}%" if "report_wer" in scores else ""
        tqdm.write(f"step {step}: dev WER {100 * wer:.2f}%{extra}")

    def _plot_attention(self) -> None:
        """Cross-attention of a fixed dev utterance under teacher forcing, every layer."""
        self.model.eval()
        batch = collate([self.dev_set[self.plot_index]]).to(self.device)
        with torch.inference_mode():
            enc, enc_lens = self.model.encode(batch.feats, batch.feat_lens)
            _, attn = self.model.forward_decoder(enc, enc_lens, prepend_sos(batch.tokens), need_attention=True)
        labels = [self.tokenizer.id_to_token(i) for i in batch.tokens[0].tolist()] + ["<eos>"]
        maps = [a[0].mean(0).float().cpu().numpy() for a in attn]  # per layer (U, T')
        plot_attention(maps, labels, self.exp / "plots" / f"attention-step{self.state.step:07d}.png",
                       title=f"{self.dev_utts[self.plot_index].id} step {self.state.step}")

    def _log(self, row: dict) -> None:
        if not self.world.is_main:
            return
        row = {"step": self.state.step, "epoch": self.state.epoch, "seconds": round(self.state.seconds, 1), **row}
        new = not self.log_path.exists()
        with self.log_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.log_fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ------------------------------------------------------------------- export
    def export(self) -> Path:
        """Average the best checkpoints (by dev WER) into the final model directory."""
        k = max(1, self.cfg.train.average_best)
        paths = [self.exp / "checkpoints" / f"step-{s}.pt" for _, s in self.state.best[:k]]
        paths = [p for p in paths if p.exists()] or [self.exp / "checkpoints" / "last.pt"]
        model, out = export_checkpoints(paths, self.cfg, self.tokenizer, self.exp / "model")
        wer = self.dev_wer(model.to(self.device).eval())
        (self.exp / "model" / "dev_wer.json").write_text(json.dumps(
            {"dev_wer": wer, "averaged_steps": [s for _, s in self.state.best[:k]], "train_seconds": self.state.seconds}))
        tqdm.write(f"exported {out} (average of {len(paths)} checkpoints): dev WER {100 * wer:.2f}%")
        return out


LOG_FIELDS = ["step", "epoch", "seconds", "loss", "attention_ce", "ctc", "guided", "accuracy", "aux_ctc",
              "grad_norm", "lr", "audio_seconds", "dev_wer", "report_wer"]


def train(cfg: ExperimentConfig) -> Path:
    """Train (resuming from exp_dir/checkpoints/last.pt if present) and export the model directory;
    under torchrun, as one of its processes."""
    try:
        return Trainer(cfg).run()
    finally:
        leave_world()
