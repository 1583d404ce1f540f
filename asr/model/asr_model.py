"""The whole model: encoder + attention decoder (+ optional CTC head), and its training losses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from asr.config import LossConfig, ModelConfig
from asr.losses import IGNORE_INDEX, attention_ce_loss, ctc_loss, guided_attention_loss
from asr.model.conformer import ConformerEncoder
from asr.model.decoder import Decoder, DecoderCache
from asr.model.encoder import Encoder
from asr.model.lm import LanguageModel
from asr.model.mask import lengths_to_mask
from asr.model.no_speech import NoSpeechHead
from asr.model.subsampling import Conv2dSubsampling4
from asr.tokenizer import EOS_ID, PAD_ID, SOS_ID


@dataclass
class LossOutput:
    loss: Tensor  # the weighted total that is back-propagated
    attention_ce: Tensor  # label-smoothed cross-entropy of the attention decoder
    ctc: Tensor  # 0 when the model has no CTC head
    guided: Tensor  # guided attention loss (unweighted)
    accuracy: float  # teacher-forced token accuracy


def prepend_sos(tokens: Tensor) -> Tensor:
    """tokens (B, U) -> decoder input [SOS y1..yU] (B, 1 + U): what the decoder reads to predict y1..yU EOS."""
    return torch.cat([tokens.new_full((tokens.size(0), 1), SOS_ID), tokens], dim=1)


def decoder_io(tokens: Tensor, token_lens: Tensor) -> tuple[Tensor, Tensor]:
    """tokens (B, U) padded -> decoder input [SOS y1..yU] and target [y1..yU EOS], both (B, U+1)."""
    B = tokens.size(0)
    inputs = prepend_sos(tokens)
    targets = torch.cat([tokens, tokens.new_full((B, 1), PAD_ID)], dim=1)
    targets[torch.arange(B), token_lens] = EOS_ID
    valid = lengths_to_mask(token_lens + 1, targets.size(1))
    return inputs, targets.masked_fill(~valid, IGNORE_INDEX)


class ASRModel(nn.Module):
    """cfg: the network's sizes; vocab_size: the tokenizer's; n_mels: FeatureConfig.num_mel_bins,
    the features it reads (so the two can never disagree)."""

    subsampling_factor = Conv2dSubsampling4.factor

    def __init__(self, cfg: ModelConfig, vocab_size: int, n_mels: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.encoder = ConformerEncoder(cfg, n_mels) if cfg.encoder == "conformer" else Encoder(cfg, n_mels)
        self.decoder = Decoder(cfg, vocab_size)
        self.ctc_head = nn.Linear(cfg.d_model, vocab_size) if cfg.ctc else None
        self.no_speech_head = NoSpeechHead(cfg.d_model) if cfg.no_speech_head else None
        self.lm = LanguageModel(vocab_size, cfg.lm_dim, cfg.lm_layers) if cfg.lm_layers else None

    @property
    def has_ctc(self) -> bool:
        return self.ctc_head is not None

    def set_cmvn(self, mean: Tensor, std: Tensor) -> None:
        self.encoder.cmvn.mean.copy_(mean)
        self.encoder.cmvn.std.copy_(std)

    def encode(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        # feats: (B, T, F) -> enc: (B, T', D), enc_lens: (B,)
        return self.encoder(feats, feat_lens)

    def forward_decoder(
        self, enc: Tensor, enc_lens: Tensor, tokens: Tensor, need_attention: bool = False,
        cross_mask: Optional[Tensor] = None, cache: Optional[DecoderCache] = None,
    ) -> tuple[Tensor, Optional[list[Tensor]]]:
        """One teacher-forced decoder pass over given token sequences (training, plots), or one
        step of a search. tokens: (B, U) starting with SOS -> logits (B, U, V), cross-attention per
        layer (B, H, U, T'). cross_mask: (B, U, T') bool, the encoder frames each position may
        attend (besides enc_lens). cache: from decoder_cache(enc); tokens then holds only the
        next token (B, 1), and the cache is extended with it (asr/model/decoder.py)."""
        return self.decoder(enc, enc_lens, tokens, need_attention, cross_mask, cache)

    def decoder_cache(self, enc: Tensor, rows_per_input: int = 1) -> DecoderCache:
        """An empty decoder cache for a search over enc (B, T', D) with rows_per_input prefixes per input."""
        return self.decoder.new_cache(enc, rows_per_input)

    def encoder_frames(self, spans: Tensor, enc_lens: Tensor) -> Tensor:
        """Feature frame spans (B, 2) [start, end) -> encoder frame spans (B, 2), ends within enc_lens (B,)."""
        out = torch.div(spans, self.subsampling_factor, rounding_mode="floor")
        return torch.stack([out[:, 0], torch.minimum(out[:, 1], enc_lens)], dim=1)

    def ctc_log_probs(self, enc: Tensor) -> Tensor:
        if self.ctc_head is None:
            raise RuntimeError("this model has no CTC head (model.ctc: false)")
        # float(): under bf16 autocast on CPU log_softmax would stay in bf16, too coarse for CTC's sums
        return self.ctc_head(enc).float().log_softmax(dim=-1)  # (B, T', V)

    def no_speech_prob(self, enc: Tensor, enc_lens: Tensor) -> Tensor:
        """enc (B, T', D), enc_lens (B,) -> P(the input holds no speech) (B,)."""
        if self.no_speech_head is None:
            raise RuntimeError("this model has no no-speech head (model.no_speech_head: false)")
        return torch.sigmoid(-self.no_speech_head(enc, enc_lens).float())

    def forward(
        self,
        feats: Tensor,  # (B, T, F)
        feat_lens: Tensor,  # (B,)
        tokens: Tensor,  # (B, U) padded with PAD_ID, no SOS/EOS
        token_lens: Tensor,  # (B,)
        loss_cfg: LossConfig,
        sampling_prob: float = 0.0,
        speech: Optional[Tensor] = None,  # (B, 2) frames [start, end) of the recordings, for the guide
    ) -> LossOutput:
        enc, enc_lens = self.encode(feats, feat_lens)
        inputs, targets = decoder_io(tokens, token_lens)  # (B, U+1) each
        if sampling_prob > 0:
            inputs = self._scheduled_sampling_inputs(enc, enc_lens, inputs, targets, sampling_prob)
        need_attention = loss_cfg.guided_weight > 0
        logits, attn = self.forward_decoder(enc, enc_lens, inputs, need_attention=need_attention)
        attention_ce = attention_ce_loss(logits, targets, loss_cfg.label_smoothing)
        zero = logits.new_zeros(())
        ctc = ctc_loss(self.ctc_log_probs(enc), enc_lens, tokens, token_lens) if self.has_ctc else zero
        guided = (
            # The EOS row is guided onto the end of the speech with loss.guide_eos, else left free.
            guided_attention_loss(
                attn, token_lens, enc_lens, loss_cfg.guided_sigma,
                self.encoder_frames(speech, enc_lens) if speech is not None else None,
                eos=loss_cfg.guide_eos,
            )
            if need_attention
            else zero
        )
        w = loss_cfg.ctc_weight if self.has_ctc else 0.0
        loss = (1 - w) * attention_ce + w * ctc + loss_cfg.guided_weight * guided
        valid = targets != IGNORE_INDEX
        accuracy = ((logits.argmax(-1) == targets) & valid).sum().item() / max(valid.sum().item(), 1)
        return LossOutput(loss, attention_ce.detach(), ctc.detach(), guided.detach(), accuracy)

    @torch.no_grad()
    def _scheduled_sampling_inputs(
        self, enc: Tensor, enc_lens: Tensor, inputs: Tensor, targets: Tensor, prob: float
    ) -> Tensor:
        """Two-pass scheduled sampling (Duckworth et al. 2019 for Transformers).

        Pass 1 decodes with teacher forcing; each input token after SOS is then replaced,
        with probability `prob`, by the model's own prediction at the previous position.
        Pass 2 (the caller's) trains on these mixed inputs.
        """
        logits, _ = self.forward_decoder(enc, enc_lens, inputs)  # (B, U+1, V)
        predicted = logits.argmax(-1)[:, :-1]  # prediction for input position u+1
        replace = torch.rand(predicted.shape, device=inputs.device) < prob
        replace &= targets[:, 1:] != IGNORE_INDEX  # input position u+1 is a real token
        mixed = inputs.clone()
        mixed[:, 1:] = torch.where(replace, predicted, inputs[:, 1:])
        return mixed
