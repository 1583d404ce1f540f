"""Word timings of a decoded hypothesis: where its tokens are, then how far each word reaches.

Where the tokens are comes from one of two sources:
- CTC forced alignment (`ctc_word_times`): the best CTC path through the CTC head's
  log-probs that emits exactly the hypothesis' tokens (torchaudio's forced_align). Exact
  for the CTC head, but CTC is peaky: a token often occupies a single frame.
- Cross-attention (`attention_word_times`): for models without a CTC head. Each token is
  placed at the frame its (guided, hence near-monotonic) cross-attention looks at.
Either gives each word an anchor: the frames of its tokens, often 40 ms of a 400 ms word.

How far each word reaches comes from the audio (`extend_to_speech`), the anchors saying which
word is where. A 10 ms block of the piece is speech-like when it is within 35 dB of the
piece's loudest block and at least 6 dB above its background (the 10th percentile of its
blocks). Two neighbouring words part in the middle of the longest run of non-speech blocks
between their anchors: the pause, told by its length from the closure of a stop consonant
inside a word, which can be as quiet or quieter. Where the words run together they part at the
quietest block. Each word then spans the speech-like blocks of its own part, first to last, so
that pauses, and the silence before the first word and after the last, are not counted into
words; a part with no speech-like block keeps its anchor.

Conventions: encoder frame k covers [k * frame_sec, (k + 1) * frame_sec) of the input
(frame_sec = fbank frame shift x subsampling factor, 40 ms for 10 ms x 4). An anchor spans
from the start of its first token's first frame to the end of its last token's last frame.
Times are in seconds, clipped to [0, duration]; starts and ends are non-decreasing from
word to word, and extended words do not overlap.
`words` is `Tokenizer.tokens_to_words(token_ids)`: [(word, [token positions])].
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

from asr.tokenizer import BLANK_ID

Words = Sequence[tuple[str, Sequence[int]]]
Times = list[tuple[float, float]]

SPEECH_RANGE_DB = 35.0  # speech-like: within this of the piece's loudest block ...
ABOVE_BACKGROUND_DB = 6.0  # ... and this far above its background (10th percentile of its blocks)


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
) -> Times:
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
) -> Times:
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
) -> Times:
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


def extend_to_speech(anchors: Times, energy_db: np.ndarray, block_sec: float, duration: float) -> Times:
    """Word anchors (start, end) seconds -> the speech of each word, given the piece's energy
    energy_db (N,) in dB of consecutive block_sec blocks (see the module docstring)."""
    if not anchors:
        return []
    blocks = np.clip(np.array(anchors) / block_sec, 0, len(energy_db))  # (W, 2) in blocks
    starts, ends = np.floor(blocks[:, 0]).astype(int), np.ceil(blocks[:, 1]).astype(int)  # (W,) each
    floor = max(energy_db.max() - SPEECH_RANGE_DB, np.percentile(energy_db, 10) + ABOVE_BACKGROUND_DB)
    speech = energy_db >= floor  # (N,)
    cuts = [_cut(energy_db, speech, *sorted((end, start))) for end, start in zip(ends[:-1], starts[1:])]
    bounds = np.maximum.accumulate([0, *cuts, len(energy_db)])  # (W + 1,): word w owns blocks bounds[w]:bounds[w + 1]
    times = []
    for w in range(len(anchors)):
        lo, hi = bounds[w], bounds[w + 1]
        loud = lo + np.flatnonzero(speech[lo:hi])
        if len(loud):
            lo, hi = loud[0], loud[-1] + 1
        else:  # the anchor, inside the part
            lo, hi = min(max(starts[w], lo), hi), max(min(ends[w], hi), lo)
        times.append((min(lo * block_sec, duration), min(hi * block_sec, duration)))
    return times


def _cut(energy_db: np.ndarray, speech: np.ndarray, lo: int, hi: int) -> int:
    """The block where one word gives way to the next, between blocks lo <= hi (the end of one
    anchor and the start of the next, or the other way round where attention's overlap): the
    middle of the longest run of non-speech blocks there, else the quietest block."""
    if hi == lo:
        return lo
    pause = np.concatenate([[False], ~speech[lo:hi], [False]]).astype(np.int8)  # (hi - lo + 2,)
    edges = np.flatnonzero(np.diff(pause))  # (2R,): start, end of each run of non-speech blocks
    if not len(edges):
        return lo + int(np.argmin(energy_db[lo:hi]))
    run_starts, run_ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(run_ends - run_starts))
    return lo + (run_starts[longest] + run_ends[longest]) // 2
