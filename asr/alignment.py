"""Word timings of a decoded hypothesis, from one of two sources.

- CTC forced alignment (`ctc_word_times`): the best CTC path through the CTC head's
  log-probs that emits exactly the hypothesis' tokens (torchaudio's forced_align). Exact
  for the CTC head, but CTC is peaky: a token often occupies a single frame.
- Cross-attention (`attention_word_times`): for models without a CTC head. Each token is
  placed at the frame its (guided, hence near-monotonic) cross-attention looks at.

Conventions: encoder frame k covers [k * frame_sec, (k + 1) * frame_sec) of the input
(frame_sec = fbank frame shift x subsampling factor, 40 ms for 10 ms x 4). A word spans
from the start of its first token's first frame to the end of its last token's last frame.
Times are in seconds, clipped to [0, duration]; starts and ends are non-decreasing from
word to word.
`words` is `Tokenizer.tokens_to_words(token_ids)`: [(word, [token positions])].
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torchaudio.functional as AF
from torch import Tensor

from asr.tokenizer import BLANK_ID

Words = Sequence[tuple[str, Sequence[int]]]


class AlignmentError(ValueError):
    """The tokens cannot be aligned to these frames (inconsistent inputs, or too few frames)."""


def ctc_token_frames(log_probs: Tensor, token_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Forced-align token_ids to CTC log_probs (T', V) -> first frame (U,) and end frame (U,) exclusive."""
    if any(t == BLANK_ID for t in token_ids):
        raise AlignmentError("token ids contain the CTC blank")
    targets = torch.tensor([list(token_ids)], dtype=torch.int32)  # (1, U)
    try:
        path, scores = AF.forced_align(log_probs[None].float().cpu(), targets, blank=BLANK_ID)  # (1, T') each
    except RuntimeError as e:  # e.g. more tokens (plus blanks between repeats) than frames
        raise AlignmentError(f"cannot align {len(token_ids)} tokens to {log_probs.size(0)} frames: {e}") from None
    spans = AF.merge_tokens(path[0], scores[0].exp(), blank=BLANK_ID)  # one span per target token
    starts = torch.tensor([s.start for s in spans], dtype=torch.float64)
    ends = torch.tensor([s.end for s in spans], dtype=torch.float64)
    return starts, ends


def ctc_word_times(
    log_probs: Tensor,
    token_ids: Sequence[int],
    words: Words,
    frame_sec: float,
    duration: Optional[float] = None,
) -> list[tuple[float, float]]:
    """Word (start, end) seconds from CTC forced alignment: log_probs (T', V) of one utterance.

    duration defaults to T' * frame_sec.
    """
    if not token_ids:
        return []
    starts, ends = ctc_token_frames(log_probs, token_ids)
    if duration is None:
        duration = log_probs.size(0) * frame_sec
    return _word_times(starts, ends, words, frame_sec, duration)


def attention_token_frames(attn: Tensor) -> Tensor:
    """Frame of each token from cross-attention attn (U, T') -> (U,) float, non-decreasing:
    the most attended frame, then a cumulative maximum (speech is read left to right)."""
    frames = attn.argmax(-1).double()
    return torch.cummax(frames, 0).values if len(frames) else frames


def attention_word_times(
    attn: Tensor, words: Words, frame_sec: float, duration: Optional[float] = None
) -> list[tuple[float, float]]:
    """Word (start, end) seconds from cross-attention attn (U, T') (rows: tokens), each token
    taking one frame at its attention position. duration defaults to T' * frame_sec."""
    if attn.dim() != 2:
        raise AlignmentError(f"attention must be (tokens, frames), got shape {tuple(attn.shape)}")
    frames = attention_token_frames(attn)
    if duration is None:
        duration = attn.size(1) * frame_sec
    return _word_times(frames, frames + 1, words, frame_sec, duration)


def _word_times(
    starts: Tensor, ends: Tensor, words: Words, frame_sec: float, duration: float
) -> list[tuple[float, float]]:
    """Token frame spans starts/ends (U,) -> word (start, end) in seconds, clipped to [0, duration]."""
    times, previous = [], -1
    for word, positions in words:
        if not positions or min(positions) <= previous or max(positions) >= len(starts):
            raise AlignmentError(
                f"word {word!r}: token positions {list(positions)} are empty, "
                f"out of order or not in 0..{len(starts) - 1}"
            )
        previous = max(positions)
        start = min(max(float(starts[min(positions)]) * frame_sec, 0.0), duration)
        end = min(max(float(ends[max(positions)]) * frame_sec, start), duration)
        times.append((start, end))
    return times
