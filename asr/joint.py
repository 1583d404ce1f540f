"""Joint training on other speech: a second task for the encoder alone (train.aux_data).

A model with a small vocabulary (digits) hears few voices; transcribed speech of many more
voices in another task (read English sentences by children and adults) can still teach its
encoder those voices. The auxiliary task is a character CTC head over the shared encoder:
every training step adds train.aux_weight x its CTC loss per character on one batch of
train.aux_data. The head and its character tokenizer belong to the training run only (they
are saved in its checkpoints, so a resumed run continues them); the exported model has the
main task's heads alone.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from asr.config import ExperimentConfig
from asr.data import ASRDataset, Batch, BucketBatchSampler, collate, load_manifest
from asr.losses import ctc_loss
from asr.tokenizer import Tokenizer

AUX_TOKENIZER_DIR = "aux_tokenizer"  # in the experiment directory


class AuxCTC:
    """train.aux_data's batches, endlessly, and the loss of the character head on them."""

    def __init__(self, cfg: ExperimentConfig, exp: Path, device: torch.device):
        self.cfg = cfg
        self.device = device
        utts = load_manifest(cfg.train.aux_data)
        self.tokenizer = Tokenizer.load_or_train("char", [u.text or "" for u in utts], exp / AUX_TOKENIZER_DIR)
        self.head = nn.Linear(cfg.model.d_model, self.tokenizer.vocab_size).to(device)
        # augmented like the main task's data, with its own draws; its epochs are its own passes over
        # it (augment.start_epoch counts them too)
        self.dataset = ASRDataset(utts, self.tokenizer, cfg.features, cfg.augment, seed=cfg.train.seed + 1)
        self.sampler = BucketBatchSampler(
            self.dataset.frame_lengths(), cfg.train.max_frames_per_batch, shuffle=True, seed=cfg.train.seed + 1
        )
        self.batches_per_epoch = len(self.sampler)

    def batches(self, done: int) -> Iterator[Batch]:
        """Batches from the `done`-th on (counted over all of the auxiliary data's epochs), endlessly:
        every epoch its own order and augmentation draws, as a resumed run gets them again."""
        first, skip = divmod(done, self.batches_per_epoch)
        for epoch in itertools.count(first):
            self.sampler.set_epoch(epoch)
            self.dataset.set_epoch(epoch)
            loader = DataLoader(self.dataset, batch_sampler=list(self.sampler)[skip:], collate_fn=collate,
                                num_workers=self.cfg.train.num_workers, persistent_workers=False)
            skip = 0
            for batch in loader:
                yield batch.to(self.device)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """The head's CTC loss per character (not per utterance, so that long sentences do not
        outweigh the main task), through the model's encoder."""
        enc, enc_lens = model.encode(batch.feats, batch.feat_lens)  # (B, T', D), (B,)
        log_probs = self.head(enc).float().log_softmax(dim=-1)  # (B, T', V_aux)
        return ctc_loss(log_probs, enc_lens, batch.tokens, batch.token_lens) * batch.feats.size(0) / batch.token_lens.sum()
