"""Training losses: label-smoothed cross-entropy, CTC, and the guided attention loss."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from asr.tokenizer import BLANK_ID

IGNORE_INDEX = -100  # target value of padded positions in the cross-entropy


def attention_ce_loss(logits: Tensor, targets: Tensor, label_smoothing: float) -> Tensor:
    """Label-smoothed cross-entropy, mean over real (non-padded) target tokens.

    logits: (B, U, V); targets: (B, U) with IGNORE_INDEX on padding. Computed in fp32 under autocast too.
    """
    return F.cross_entropy(
        logits.float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing
    )


def ctc_loss(log_probs: Tensor, enc_lens: Tensor, tokens: Tensor, token_lens: Tensor) -> Tensor:
    """CTC loss summed over each utterance, averaged over the batch.

    log_probs: (B, T', V); tokens: (B, U) padded; token_lens: (B,). Computed in fp32 under autocast too.
    """
    loss = F.ctc_loss(
        log_probs.float().transpose(0, 1), tokens, enc_lens, token_lens, blank=BLANK_ID, reduction="sum", zero_infinity=True
    )
    return loss / log_probs.size(0)


def guided_attention_weights(
    out_lens: Tensor,
    in_lens: Tensor,
    U: int,
    T: int,
    sigma: float,
    speech: Optional[Tensor] = None,
    eos: bool = False,
) -> Tensor:
    """Penalty W[b, n, t] = 1 - exp(-(n'/N_b - t'/T_b)^2 / (2 sigma^2)) (Tachibana et al. 2017).

    n' = n + 1/2 and t' = t + 1/2 are the centres of token n and frame t: with N tokens
    read evenly over T frames, token n sits around the middle of its share of the audio
    (with n/N instead, a one-word utterance would be pulled to its leading silence).
    W is zero on that diagonal, close to 1 far from it, and zero outside the valid region.
    out_lens: (B,) tokens N_b; in_lens: (B,) encoder frames T_b. Returns (B, U, T).

    speech: optional (B, 2) encoder frames [s_b, e_b) that hold the speech (the recording
    before padding was added around it). The diagonal then runs over those frames only,
    t' = (t + 1/2 - s_b) / (e_b - s_b), so attention on the added padding is penalised
    like attention anywhere else off the path. Default: all T_b frames.

    eos: also guide row N_b (the EOS prediction) onto n' = 1, the end of the speech, so that
    the end is read where the speech stops rather than left free (utterances with N_b = 0,
    non-speech, keep no row).
    """
    frames = torch.arange(T, device=in_lens.device)[None, None, :]  # (1, 1, T)
    if speech is None:
        start, span = torch.zeros_like(in_lens), in_lens
    else:
        start, span = speech[:, 0], (speech[:, 1] - speech[:, 0]).clamp(min=1)
    rows = torch.arange(U, device=out_lens.device)[None, :, None]  # (1, U, 1)
    N = out_lens[:, None, None]  # (B, 1, 1)
    n = ((rows + 0.5) / N).clamp(max=1.0)  # (B, U, 1); the EOS row (rows == N) sits at 1
    t = (frames + 0.5 - start[:, None, None]) / span[:, None, None]  # (B, 1, T)
    w = 1.0 - torch.exp(-((n - t) ** 2) / (2.0 * sigma**2))
    guided_rows = (rows < N + int(eos)) & (N > 0)  # the N_b tokens (+ EOS)
    valid = guided_rows & (frames < in_lens[:, None, None])  # ... and the T_b frames
    return w * valid


def guided_attention_loss(
    attentions: Sequence[Tensor],
    out_lens: Tensor,
    in_lens: Tensor,
    sigma: float,
    speech: Optional[Tensor] = None,
    eos: bool = False,
) -> Tensor:
    """Expected penalty sum_t A[n, t] * W[n, t], averaged over the valid output positions n
    of every layer and head (0 for a batch without any: non-speech has nothing to place).

    attentions: per decoder layer, cross-attention (B, H, U, T'). Each row A[n, :] is a
    distribution over encoder frames, so the loss lies in [0, 1): close to 0 for a
    monotonic diagonal attention, close to 1 for an anti-diagonal one. speech, eos: see
    `guided_attention_weights` (with eos, each utterance with tokens has one more row).
    """
    A = torch.stack(list(attentions), dim=1).float()  # (B, L, H, U, T'), fp32 under autocast too
    B, L, H, U, T = A.shape
    W = guided_attention_weights(out_lens, in_lens, U, T, sigma, speech, eos)  # (B, U, T')
    rows = out_lens + int(eos) * (out_lens > 0)  # (B,) guided rows per utterance
    return (A * W[:, None, None]).sum() / (rows.sum().clamp(min=1) * L * H)
