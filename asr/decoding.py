"""Search over the trained model: greedy, beam search (optionally joint with CTC), CTC greedy.

`recognize` runs the encoder once, then one search (`search`) over the whole batch. Each step
feeds the decoder only the newest token of every prefix (B or B*beam of them at once): a
key/value cache (asr/model/decoder.py) holds each layer's keys and values of the tokens
before it and of the encoder output, computed once per search. The beam search reorders
the cache's rows with its prefixes. `DecodeOptions.kv_cache` False re-runs the decoder over
the whole prefixes instead, the reference the cache is tested and timed against
(tests/test_kv_cache.py, benchmarks/decode_speed.py); both give the same hypotheses.

Conventions (natural-log probabilities throughout):
- A hypothesis' `score` is what the search maximised: the sum of its tokens' log-probs,
  EOS included when it ended with one, less `eos_penalty` if so. With `ctc_weight` w > 0 it
  is the joint score (1 - w) * log P_att(y) + w * log P_ctc(y) (less `eos_penalty`). With
  `lm_weight` l > 0 (beam search, a model with a language model: asr/model/lm.py) it also
  holds l * log P_lm(y), EOS included (shallow fusion).
- Finished hypotheses are ranked by score / n ** length_penalty, n = number of scored
  tokens (emitted tokens + 1 for EOS; a hypothesis cut at the maximum length has no EOS).
  length_penalty = 0 ranks by raw log-prob; 1 by mean log-prob per token.
- `confidence` = exp(mean attention-decoder log-prob per scored token), in [0, 1].
- Identical neighbouring words ("four four one"): the cross-attention is content-based and
  nothing tells the decoder where it read its last token, so it fails in two ways. After the
  first "four" the attention may jump to "one"; or it finds the second "four" and the decoder
  ends there, because its EOS row (left free by the guided attention loss unless
  `loss.guide_eos` puts it on the end of the speech) learnt to look back
  at the last word: "the word I see is the one I just wrote" reads as the end.
  `attention_window` = (first, last) (off when empty) keeps the attention moving forward one
  word at a time: each new token may only attend encoder frames peak + first .. peak + last
  (clipped to the utterance), peak being the frame the previous token's attention (mean over
  heads and layers) peaked at; the first token sees everything. With first > 0 the decoder
  can no longer look back, so at the true end it sees only the last word's tail and silence
  and is sure of EOS, while an EOS on a repeated word is much less sure: `eos_penalty`,
  subtracted from EOS's log-prob at every step, makes it read on there. The penalty needs
  the window: without it the attention returns to words already read and the decoder loops.
  Each hypothesis keeps its tokens' peaks, so re-running the decoder on a prefix (the
  attention of the results, or a search without the cache) rebuilds the same masks.
- Non-finite model output (NaN or infinite logits or log-probs, e.g. on absurd input) counts
  as log-prob -inf: such paths are never chosen. A search left with no hypothesis of finite
  score returns the empty hypothesis (no tokens, score -inf, confidence 0.0), so every input
  gets a Hypothesis whose score is finite or -inf and whose confidence is a float in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from asr.config import check_attention_window, check_eos_penalty, check_min_tokens
from asr.model.asr_model import prepend_sos
from asr.model.decoder import DecoderCache
from asr.model.lm import select_state
from asr.tokenizer import BLANK_ID, EOS_ID, PAD_ID, SOS_ID

METHODS = ("beam", "greedy", "ctc_greedy")
# Largest beam the CLI and the web service accept (the search itself takes any): the decoder
# runs B * beam_size prefixes per step, so a huge beam costs minutes and gigabytes.
MAX_BEAM_SIZE = 32
# ids the attention decoder must never emit; they are masked out of its output
_NEVER_EMITTED = (PAD_ID, BLANK_ID, SOS_ID)


@dataclass(frozen=True)
class DecodeOptions:
    method: str = "beam"  # "beam" | "greedy" | "ctc_greedy"
    beam_size: int = 5
    length_penalty: float = 1.0  # alpha in score / n ** alpha (see module docstring)
    # at most max(min_max_len, ceil(max_len_ratio * T')) tokens, T' = encoder frames (40 ms)
    max_len_ratio: float = 1.0
    min_max_len: int = 10
    ctc_weight: float = 0.0  # beam only: weight of the CTC prefix score (needs model.has_ctc)
    # (first, last): encoder frames, relative to the previous token's attention peak, that the
    # next token may attend (module docstring); () = off, the attention sees every frame
    attention_window: tuple[int, ...] = ()
    eos_penalty: float = 0.0  # subtracted from EOS's log-prob at each step (needs attention_window)
    # False: no key/value cache, the decoder re-runs over whole prefixes (module docstring)
    kv_cache: bool = True
    lm_weight: float = 0.0  # beam only: weight of the model's language model (shallow fusion; needs model.lm)
    # EOS is not a candidate before this many tokens (greedy and beam): once a speech/no-speech
    # gate has judged the input to hold speech, 1 makes the search write at least one word
    # (Whisper's suppression of an immediate end); 0 lets the decoder end at once
    min_tokens: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not _is_int(self.beam_size) or self.beam_size < 1:
            raise ValueError(f"beam_size must be an integer >= 1, got {self.beam_size!r}")
        if not self.length_penalty >= 0:
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty!r}")
        if not self.max_len_ratio >= 0:
            raise ValueError(f"max_len_ratio must be >= 0, got {self.max_len_ratio!r}")
        if not _is_int(self.min_max_len) or self.min_max_len < 1:
            raise ValueError(f"min_max_len must be an integer >= 1, got {self.min_max_len!r}")
        if not 0 <= self.ctc_weight < 1:
            raise ValueError(f"ctc_weight must be in [0, 1), got {self.ctc_weight!r}")
        if not 0 <= self.lm_weight < math.inf:
            raise ValueError(f"lm_weight must be a number >= 0, got {self.lm_weight!r}")
        check_min_tokens(self.min_tokens)
        check_attention_window(self.attention_window)
        check_eos_penalty(self.eos_penalty, self.attention_window)

    def max_lens(self, enc_lens: Tensor) -> Tensor:
        """Maximum number of output tokens (EOS excluded) per utterance: (B,) long."""
        by_ratio = torch.ceil(enc_lens.double() * self.max_len_ratio).long()
        return by_ratio.clamp(min=self.min_max_len)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True, eq=False)
class Hypothesis:
    tokens: list[int]  # without SOS / EOS
    score: float  # log-prob (joint with CTC when ctc_weight > 0; less eos_penalty); -inf: nothing found (module docstring)
    confidence: float  # in [0, 1]; 0.0 when nothing was found
    attention: Optional[Tensor] = None  # (U, T'): cross-attention, mean over heads and layers
    peaks: Optional[list[int]] = None  # (U,): frame each token's attention peaked at (searches with a window)


@torch.inference_mode()
def recognize(
    model, feats: Tensor, feat_lens: Tensor, opts: DecodeOptions = DecodeOptions(), need_attention: bool = True
) -> list[Hypothesis]:
    """Recognise a batch: feats (B, T, n_mels) with lengths feat_lens (B,) -> one Hypothesis each.

    The model must be in eval mode (dropout would make the search random).
    """
    _check_model(model, opts)
    enc, enc_lens = model.encode(feats, feat_lens)  # enc: (B, T', D), enc_lens: (B,)
    return search(model, enc, enc_lens, opts, need_attention)


@torch.inference_mode()
def search(
    model, enc: Tensor, enc_lens: Tensor, opts: DecodeOptions = DecodeOptions(), need_attention: bool = True
) -> list[Hypothesis]:
    """The search of `recognize` on encoder output enc (B, T', D), enc_lens (B,), for callers that
    use the encoder output for more (CTC word times). need_attention: fill Hypothesis.attention
    (one more decoder pass over the results; CTC greedy has none).
    """
    _check_model(model, opts)
    if opts.method == "ctc_greedy":
        return ctc_greedy_search(model.ctc_log_probs(enc), enc_lens)
    max_lens = opts.max_lens(enc_lens)
    if opts.method == "greedy":
        hyps = greedy_search(model, enc, enc_lens, max_lens, opts)
    else:
        hyps = beam_search(model, enc, enc_lens, max_lens, opts)
    if not need_attention:
        return hyps
    attention = cross_attention(model, enc, enc_lens, hyps, opts.attention_window)
    return [dataclasses.replace(h, attention=a) for h, a in zip(hyps, attention)]


def normalised_score(hyp: Hypothesis, opts: DecodeOptions) -> float:
    """score / n ** length_penalty with n = tokens + 1 (EOS): comparable across searches of one input."""
    return hyp.score / (len(hyp.tokens) + 1) ** opts.length_penalty


def _check_model(model, opts: DecodeOptions) -> None:
    if model.training:
        raise ValueError("the search needs the model in eval mode: call model.eval() first")
    uses_ctc = opts.method == "ctc_greedy" or (opts.method == "beam" and opts.ctc_weight > 0)
    if uses_ctc and not model.has_ctc:
        raise ValueError(f"method={opts.method!r} with ctc_weight={opts.ctc_weight} needs a model with a CTC head")
    if opts.method == "beam" and opts.lm_weight > 0 and model.lm is None:
        raise ValueError(f"lm_weight={opts.lm_weight} needs a model with a language model (asr train-lm)")


def _next_log_probs(
    model, enc: Tensor, enc_lens: Tensor, ys: Tensor, peaks: Tensor, window: tuple[int, ...],
    cache: Optional[DecoderCache],
) -> tuple[Tensor, Optional[Tensor]]:
    """Log-probs of the token after each prefix: ys (N, U) starting with SOS -> (N, V), finite or -inf.
    With a cache (holding ys[:, :-1]) the decoder reads the newest token alone and adds it to the
    cache; without, it re-reads the whole prefix. With a window (peaks (N, U - 1): the attention
    peaks of the prefix's tokens) also the peak of the new token's attention (N,); None without."""
    tokens, peaks_before = (ys, peaks) if cache is None else (ys[:, -1:], peaks[:, -1:])  # (N, U | 1)
    mask = None
    if window:  # the rows of the positions fed: (N, U | 1, T')
        mask = window_mask(peaks_before, enc_lens, enc.size(1), window)[:, -tokens.size(1) :]
    logits, attn = model.forward_decoder(enc, enc_lens, tokens, bool(window), mask, cache)  # (N, U | 1, V)
    peak = None
    if window:
        peak = torch.stack([a[:, :, -1] for a in attn]).float().mean(dim=(0, 2)).argmax(-1)  # L x (N, H, T') -> (N,)
    log_probs = _finite_or_minus_inf(logits[:, -1].float().log_softmax(-1))
    log_probs[:, _NEVER_EMITTED] = -math.inf
    return log_probs, peak


def window_mask(peaks: Tensor, enc_lens: Tensor, frames: int, window: tuple[int, ...]) -> Tensor:
    """The frames each decoder position may attend: peaks (N, U) of the tokens fed after SOS ->
    (N, U + 1, T') bool. Position 0 (SOS, predicting the first token) sees every frame; position
    u sees peaks[:, u - 1] + first .. + last, clipped to the valid frames (never empty)."""
    first, last = window
    end = (enc_lens - 1)[:, None]  # (N, 1): last valid frame
    lo = torch.minimum((peaks + first).clamp(min=0), end)[..., None]  # (N, U, 1)
    hi = torch.minimum((peaks + last).clamp(min=0), end)[..., None]
    t = torch.arange(frames, device=peaks.device)  # (T',)
    inside = (t >= lo) & (t <= hi)  # (N, U, T')
    return torch.cat([inside.new_ones(len(peaks), 1, frames), inside], 1)


def _finite_or_minus_inf(log_probs: Tensor) -> Tensor:
    """NaN and +inf -> -inf. One NaN logit makes its whole log_softmax row NaN, and a NaN
    score would win or lose comparisons at random; -inf just takes the path out of the search."""
    return log_probs.nan_to_num(nan=-math.inf, posinf=-math.inf)


def _nothing_found() -> Hypothesis:
    """The result of a search that has no hypothesis with a finite score."""
    return Hypothesis([], -math.inf, 0.0)


def _confidence(log_prob_sum: float, n_scored: int) -> float:
    """exp(mean log-prob per scored token), in [0, 1]; 0.0 when there is nothing (finite) to average."""
    if n_scored <= 0 or not math.isfinite(log_prob_sum):
        return 0.0
    return min(1.0, math.exp(log_prob_sum / n_scored))


def greedy_search(model, enc: Tensor, enc_lens: Tensor, max_lens: Tensor, opts: DecodeOptions) -> list[Hypothesis]:
    """Most likely next token at every step, for the whole batch until all have emitted EOS.
    An utterance whose best next token has log-prob -inf (non-finite model output) gets the
    empty hypothesis. Of opts it reads attention_window, eos_penalty, min_tokens and kv_cache."""
    batch, window, eos_penalty = enc.size(0), opts.attention_window, opts.eos_penalty
    cache = model.decoder_cache(enc) if opts.kv_cache else None  # rows stay the utterances: never reordered
    ys = torch.full((batch, 1), SOS_ID, dtype=torch.long, device=enc.device)  # (B, 1 + step)
    peaks = torch.zeros(batch, 0, dtype=torch.long, device=enc.device)  # (B, step) with a window, else (B, 0)
    log_prob = torch.zeros(batch, device=enc.device)  # model log-prob of the tokens chosen
    n_scored = torch.zeros(batch, dtype=torch.long, device=enc.device)
    done = torch.zeros(batch, dtype=torch.bool, device=enc.device)
    failed = torch.zeros(batch, dtype=torch.bool, device=enc.device)
    for step in range(int(max_lens.max()) + 1):
        done |= max_lens <= step  # prefix already holds the maximum number of tokens
        if done.all():
            break
        log_probs, peak = _next_log_probs(model, enc, enc_lens, ys, peaks, window, cache)  # (B, V), (B,) or None
        choice = log_probs.clone()  # (B, V): what the search maximises; EOS costs the penalty, or is barred
        choice[:, EOS_ID] -= math.inf if step < opts.min_tokens else eos_penalty
        best = choice.argmax(-1)  # (B,): the search's choice
        best_lp = log_probs.gather(1, best[:, None]).squeeze(1)  # (B,): the model's log-prob of it
        if peak is not None:
            peaks = torch.cat([peaks, peak[:, None]], 1)
        failed |= ~done & torch.isinf(best_lp)  # no token with a finite log-prob
        done |= failed
        log_prob += torch.where(done, 0.0, best_lp)
        n_scored += (~done).long()
        ys = torch.cat([ys, torch.where(done, PAD_ID, best)[:, None]], 1)
        done |= best == EOS_ID
    hyps = []
    for row, lp, n, bad, pk in zip(ys[:, 1:].tolist(), log_prob.tolist(), n_scored.tolist(), failed.tolist(), peaks.tolist()):
        tokens = [t for t in row if t not in (EOS_ID, PAD_ID)]  # EOS/PAD only ever trail
        score = lp - eos_penalty * (n > len(tokens))  # n counts EOS when it ended with one
        found = Hypothesis(tokens, score, _confidence(lp, n), peaks=pk[: len(tokens)] if window else None)
        hyps.append(_nothing_found() if bad else found)
    return hyps


def beam_search(model, enc: Tensor, enc_lens: Tensor, max_lens: Tensor, opts: DecodeOptions) -> list[Hypothesis]:
    """Batched beam search: the B * K alive prefixes are one decoder batch (row b * K + k).

    Every step each alive prefix proposes EOS and its C best other tokens (by attention
    log-prob); of the K * (C + 1) candidates of an utterance, the K best that do not end in EOS stay alive,
    and EOS candidates ranked above the K-th of those become finished hypotheses. An
    utterance is done once it has K finished hypotheses, or at its maximum length (its
    alive prefixes then join the finished ones if there are fewer than K). The result is
    the finished hypothesis with the best length-normalised score.
    With opts.ctc_weight > 0 candidates are scored jointly with CTC prefix scores; with
    opts.attention_window each prefix carries its tokens' attention peaks (reordered with it),
    and every EOS candidate's score is lowered by opts.eos_penalty (EOS is no candidate before
    opts.min_tokens tokens). The decoder cache's rows
    (opts.kv_cache) are reordered with the prefixes, as the CTC and language model states are.
    With opts.lm_weight > 0 the model's language model adds lm_weight * its log-prob to each
    candidate, and candidates are pre-selected by attention + language model log-prob.
    An utterance whose alive prefixes all score -inf (non-finite model output) stops there;
    with no finished hypothesis it gets the empty one.
    """
    batch, k = enc.size(0), opts.beam_size
    n = batch * k
    ctc = None
    if opts.ctc_weight > 0:
        ctc = CTCPrefixScorer(model.ctc_log_probs(enc).repeat_interleave(k, 0), enc_lens.repeat_interleave(k))
    # C = K is exact for attention-only scores; with CTC the attention ranking is only a
    # pre-selection, so keep a few more (as ESPnet does). EOS is always scored: its CTC
    # score (the whole labelling) can be high where the attention decoder's is not.
    n_cand = k if ctc is None else int(1.5 * k)
    cache = model.decoder_cache(enc, k) if opts.kv_cache else None  # row b * K + j: utterance b's j-th prefix
    enc, enc_lens = enc.repeat_interleave(k, 0), enc_lens.repeat_interleave(k)  # (N, T', D), (N,)
    ys = torch.full((n, 1), SOS_ID, dtype=torch.long, device=enc.device)  # (N, 1 + step)
    peaks = torch.zeros(n, 0, dtype=torch.long, device=enc.device)  # (N, step) with a window, else (N, 0)
    att = torch.zeros(n, device=enc.device)  # attention log-prob of each alive prefix
    score = torch.zeros(batch, k, device=enc.device)  # search score of each alive prefix
    score[:, 1:] = -math.inf  # one live start per utterance, not K copies of it
    ctc_state = ctc.initial_state() if ctc is not None else None
    lm_weight = opts.lm_weight
    lm = torch.zeros(n, device=enc.device)  # language model log-prob of each alive prefix
    lm_state = None  # the language model's state after each alive prefix (asr/model/lm.py)
    finished: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(batch)]
    done = [False] * batch
    max_len = max_lens.tolist()
    w, window = opts.ctc_weight, opts.attention_window
    eos = torch.tensor([EOS_ID], device=enc.device)

    def finish(b: int, row: int, total: float, att_lp: float, ended: bool) -> None:
        tokens = ys[row, 1:].tolist()
        n_scored = len(tokens) + int(ended)
        hyp = Hypothesis(tokens, total, _confidence(att_lp, n_scored), peaks=peaks[row].tolist() if window else None)
        finished[b].append((total / n_scored**opts.length_penalty, hyp))

    for step in range(max(max_len) + 1):
        for b in range(batch):
            if not done[b] and step >= max_len[b]:
                if len(finished[b]) < k:
                    for j in range(k):
                        if math.isfinite(score[b, j]):
                            finish(b, b * k + j, float(score[b, j]), float(att[b * k + j]), ended=False)
                done[b] = True
        if all(done):
            break
        score[torch.tensor(done, device=enc.device)] = -math.inf  # done utterances propose nothing
        log_probs, peak = _next_log_probs(model, enc, enc_lens, ys, peaks, window, cache)  # (N, V), (N,) or None
        fused = log_probs  # (N, V): what pre-selects the candidates
        if lm_weight > 0:
            lm_lp, lm_next = model.lm.step(ys[:, -1], lm_state)  # (N, V)
            fused = log_probs + lm_weight * lm_lp
        _, cand = fused.index_fill(1, eos, -math.inf).topk(min(n_cand, log_probs.size(-1)), -1)
        cand = torch.cat([cand, eos.expand(n, 1)], 1)  # (N, C+1)
        cand_lp = log_probs.gather(1, cand)
        cand_att = att[:, None] + cand_lp  # (N, C+1)
        if lm_weight > 0:
            lm_step = lm_lp.gather(1, cand)  # (N, C+1)
            cand_lm = lm[:, None] + lm_step  # LM log-prob of each candidate prefix
        if ctc is not None:  # the joint score, from each part's total
            ctc_psi, ctc_cand = ctc.score(ctc_state, cand)  # (N, C+1)
            cand_score = (1 - w) * cand_att + w * ctc_psi
            if lm_weight > 0:
                cand_score = cand_score + lm_weight * cand_lm
            cand_score[~torch.isfinite(score.view(n))] = -math.inf
        else:  # attention (+ LM) alone: the prefix's score plus this step's share
            cand_score = score.view(n, 1) + cand_lp
            if lm_weight > 0:
                cand_score = cand_score + lm_weight * lm_step
        cand_score[:, -1] -= opts.eos_penalty  # the EOS column
        if step < opts.min_tokens:
            cand_score[:, -1] = -math.inf
        top, idx = cand_score.view(batch, -1).topk(2 * k, -1)  # (B, 2K), best first
        src = idx // cand.size(1) + torch.arange(batch, device=enc.device)[:, None] * k  # (B, 2K) rows in N
        tok = cand.view(batch, -1).gather(1, idx)
        top_att = cand_att.view(batch, -1).gather(1, idx)
        is_eos = tok == EOS_ID
        alive_before = torch.cumsum(~is_eos, 1) - (~is_eos).long()  # non-EOS ranked above
        # each prefix proposes EOS once, so 2K candidates hold >= K non-EOS ones
        keep = ~is_eos & (alive_before < k)  # exactly K per utterance
        ends = is_eos & (alive_before < k) & torch.isfinite(top)
        for b, j in ends.nonzero().tolist():
            finish(b, int(src[b, j]), float(top[b, j]), float(top_att[b, j]), ended=True)
        rows = src[keep]  # (N,) in rank order per utterance
        ys = torch.cat([ys[rows], tok[keep][:, None]], 1)
        if cache is not None:  # it held every alive prefix; now it holds the kept ones, ys[:, :-1]
            cache.reorder(rows)
        if peak is not None:
            peaks = torch.cat([peaks, peak[:, None]], 1)[rows]
        att, score = top_att[keep], top[keep].view(batch, k)
        if lm_weight > 0:
            lm, lm_state = cand_lm.reshape(batch, -1).gather(1, idx)[keep], select_state(lm_next, rows)
        if ctc is not None:
            ctc_state = ctc_cand.pick(rows, (idx % cand.size(1))[keep])
        alive = torch.isfinite(score).any(1).tolist()  # (B,): a prefix with a finite score is left
        done = [d or len(f) >= k or not a for d, f, a in zip(done, finished, alive)]
    return [max(f, key=lambda x: x[0])[1] if f else _nothing_found() for f in finished]


def ctc_greedy_search(log_probs: Tensor, lens: Tensor) -> list[Hypothesis]:
    """Best CTC label per frame, repeats collapsed, blanks dropped: log_probs (B, T', V), lens (B,).

    score = log-prob of that best path; confidence = exp(mean over emitted tokens of the
    best log-prob within each token's run of frames), or over all frames if none is emitted.
    A frame with no finite log-prob (non-finite model output) leaves no finite path: the
    utterance gets the empty hypothesis.
    """
    best_lp, best = _finite_or_minus_inf(log_probs.float()).max(-1)  # (B, T'), (B, T')
    hyps = []
    for frame_lp, ids, n in zip(best_lp, best, lens.tolist()):
        frame_lp, ids = frame_lp[:n], ids[:n]
        if torch.isinf(frame_lp).any():
            hyps.append(_nothing_found())
            continue
        run_start = torch.ones_like(ids, dtype=torch.bool)  # (T',) first frame of each run
        run_start[1:] = ids[1:] != ids[:-1]
        emit = run_start & (ids != BLANK_ID)
        run = torch.cumsum(run_start.long(), 0) - 1  # run index of every frame
        run_lp = frame_lp.new_full((int(run_start.sum()),), -math.inf).scatter_reduce(0, run, frame_lp, "amax")
        token_lp = run_lp[run[emit]]
        per_unit = token_lp if len(token_lp) else frame_lp
        confidence = _confidence(float(per_unit.sum()), len(per_unit))
        hyps.append(Hypothesis(ids[emit].tolist(), float(frame_lp.sum()), confidence))
    return hyps


def cross_attention(
    model, enc: Tensor, enc_lens: Tensor, hyps: list[Hypothesis], window: tuple[int, ...] = ()
) -> list[Tensor]:
    """Cross-attention while each token was predicted, mean over heads and layers, under the
    search's attention window (built from the hypotheses' peaks).

    enc: (B, T', D); one hypothesis per utterance -> one (U_b, T'_b) CPU tensor each, row u
    being the query that predicted token u.
    """
    tokens = [h.tokens for h in hyps]
    padded = pad_sequence([torch.tensor(seq, dtype=torch.long) for seq in tokens], True, PAD_ID)  # (B, U)
    ys = prepend_sos(padded.to(enc.device))  # (B, 1 + U)
    mask = None
    if window:
        peaks = pad_sequence([torch.tensor(h.peaks or [], dtype=torch.long) for h in hyps], True, 0)  # (B, U)
        mask = window_mask(peaks.to(enc.device), enc_lens, enc.size(1), window)  # (B, 1 + U, T')
    _, attn = model.forward_decoder(enc, enc_lens, ys, need_attention=True, cross_mask=mask)  # L x (B, H, 1 + U, T')
    mean = torch.stack(attn).float().mean(dim=(0, 2)).cpu()  # (B, 1 + U, T')
    return [m[: len(seq), :n] for m, seq, n in zip(mean, tokens, enc_lens.tolist())]


@dataclass(frozen=True)
class CTCPrefixState:
    """CTC forward variables of prefixes g (or of candidates g + c: extra trailing dim C).

    Index t + 1 holds frame t (index 0 = before the first frame):
      r[t + 1, ..., 0] = log P(frames 0..t emit g, frame t on g's last token)  (r^n)
      r[t + 1, ..., 1] = log P(frames 0..t emit g, frame t blank)              (r^b)
    """

    r: Tensor  # (T' + 1, N, 2) or (T' + 1, N, C, 2)
    last: Tensor  # (N,) or (N, C): last token, SOS_ID for the empty prefix
    length: int  # tokens in every prefix (the beam grows them in lockstep)

    def pick(self, rows: Tensor, cols: Tensor) -> CTCPrefixState:
        """Candidates (rows[i], cols[i]) of a (N, C) state become the new prefixes (N,)."""
        return CTCPrefixState(self.r[:, rows, cols], self.last[rows, cols], self.length)


class CTCPrefixScorer:
    """CTC prefix scores of many hypotheses at once (Watanabe et al., 2017, Algorithm 2).

    For h = g + c the prefix score is psi(h) = log P(the CTC labelling starts with h)
        = log sum_t phi[t - 1] * p_t(c),  phi[t] = r^n_t(g) + r^b_t(g)  (only r^b_t(g) if c
    repeats g's last token, which needs a blank in between); for c = EOS it is the
    probability that the labelling is exactly g: r^n_{T-1}(g) + r^b_{T-1}(g).
    Loops over frames; vectorised over the N prefixes and their C candidates.
    """

    def __init__(self, log_probs: Tensor, lens: Tensor) -> None:
        # log_probs: (N, T', V) CTC log-probs, one row per prefix; lens: (N,) valid frames.
        # Non-finite values become -inf, so prefix scores are finite or -inf (never NaN).
        self.x = _finite_or_minus_inf(log_probs.float()).transpose(0, 1)  # (T', N, V)
        self.lens = lens

    def initial_state(self) -> CTCPrefixState:
        """The empty prefix: all frames blank."""
        frames, n, _ = self.x.shape
        r = self.x.new_full((frames + 1, n, 2), -math.inf)
        r[0, :, 1] = 0.0
        r[1:, :, 1] = torch.cumsum(self.x[:, :, BLANK_ID], 0)
        last = torch.full((n,), SOS_ID, dtype=torch.long, device=self.x.device)
        return CTCPrefixState(r, last, 0)

    def score(self, state: CTCPrefixState, cand: Tensor) -> tuple[Tensor, CTCPrefixState]:
        """Prefix scores of g + c for candidates cand (N, C) -> psi (N, C) and their state."""
        frames, n, _ = self.x.shape
        x_c = self.x.gather(2, cand[None].expand(frames, -1, -1))  # (T', N, C)
        x_blank = self.x[:, :, BLANK_ID, None]  # (T', N, 1)
        r_g = state.r  # (T' + 1, N, 2)
        phi = torch.logaddexp(r_g[..., 0], r_g[..., 1])[..., None]  # (T' + 1, N, 1)
        phi = torch.where(cand == state.last[:, None], r_g[..., 1:], phi)  # (T' + 1, N, C)
        r = x_c.new_full((frames + 1, *cand.shape, 2), -math.inf)  # (T' + 1, N, C, 2)
        # g + c has length + 1 tokens, so it cannot be complete before frame `length`
        for t in range(state.length, frames):
            r[t + 1, ..., 0] = torch.logaddexp(r[t, ..., 0], phi[t]) + x_c[t]
            r[t + 1, ..., 1] = torch.logaddexp(r[t, ..., 0], r[t, ..., 1]) + x_blank[t]
        valid = torch.arange(frames, device=self.x.device)[:, None] < self.lens  # (T', N)
        psi = torch.logsumexp((phi[:-1] + x_c).masked_fill(~valid[..., None], -math.inf), 0)  # (N, C)
        last_frame = self.lens.view(1, n, 1).expand(1, n, 2)  # index T'_n = frame T'_n - 1
        complete = torch.logsumexp(r_g.gather(0, last_frame)[0], -1)  # (N,)
        psi = torch.where(cand == EOS_ID, complete[:, None], psi)
        return psi, CTCPrefixState(r, cand, state.length + 1)
