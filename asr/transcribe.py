"""The Transcriber: audio in, text (with segments, word times, confidence) out.

The one object the CLI and the web service call. Long recordings are cut at quiet
points into pieces close to the training lengths (asr/segment.py); all pieces of all
inputs are decoded together in length-bounded batches, then put back in order. With
test-time VTLN (inference.vtln_warps) each batch is decoded once per warp of the mel
filters and each piece keeps its best-scoring hypothesis.

Every piece is decoded with inference.pause_seconds of its own noise floor on both sides
(`with_pauses`): a model that learnt from utterances with pauses around them misreads a file
cut tight to the voice. The no-speech head always judges it with HEAD_PAUSE_SECONDS of them.

No words from non-speech: a piece whose loudest 10 ms is quieter than
inference.min_speech_dbfs is not decoded at all, and a piece the model's no-speech head
(asr/model/no_speech.py) finds more likely than inference.no_speech_threshold to hold no
speech gives no words, nor one whose hypothesis has a confidence below inference.min_confidence
(a search that cannot read the piece: hum, tones, some reversed babble).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from asr.alignment import AlignmentError, attention_word_times, ctc_word_times, extend_to_speech
from asr.audio import load_audio
from asr.data import Utterance
from asr.decoding import METHODS, DecodeOptions, Hypothesis, normalised_score, search
from asr.features import fbank, num_frames
from asr.model import load_model_dir, model_name, model_path
from asr.segment import (
    BLOCK_SECONDS, Piece, SegmentConfig, batch_pieces, block_energy_db, peak_level_db, split_long_audio,
)

AudioInput = Union[np.ndarray, str, Path, bytes, BinaryIO]
# The no-speech head judges every piece with these pauses around it, whatever inference.pause_seconds
# gives the decoder: it learnt speech against the pauses the training utterances have, and without them
# it took a quarter of one unseen speaker's single-digit files, cut tight to the voice, for non-speech.
HEAD_PAUSE_SECONDS = 0.2


def with_pauses(piece: torch.Tensor, sample_rate: int, seconds: float) -> torch.Tensor:
    """piece (N,) -> (P + N + P,): `seconds` of its floor before and after it.

    The floor is noise at the level of its quietest 10 ms, at least 20 dB below its mean level,
    around its DC offset, seeded by its length (the same piece always gets the same pauses).
    Noise or hum continues as it was; speech gets a pause, as the training utterances have.
    The shipped digits model read an unseen speaker's tight-cut, quiet single digits (FSDD's raw
    takes) at 13.2 % WER without pauses, 4.2 % with 0.2 s (one VTLN warp).
    """
    pad = round(seconds * sample_rate)
    if pad == 0:
        return piece
    wave = piece.numpy()
    centred = wave - wave.mean()
    block = round(BLOCK_SECONDS * sample_rate)
    quietest = block_energy_db(centred, block)[: max(1, len(wave) // block)].min()
    loudness = 10 * np.log10(np.mean(np.square(centred, dtype=np.float64)) + 1e-12)
    floor = 10 ** (min(quietest, loudness - 20) / 20)
    noise = torch.randn(2 * pad, generator=torch.Generator().manual_seed(piece.numel()))
    noise = float(wave.mean()) + noise * floor
    return torch.cat([noise[:pad], piece, noise[pad:]])


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str
    no_speech_prob: float = 0.0  # P(no speech) of the piece; 0 for models without a no-speech head
    confidence: float = 0.0  # in [0, 1]: exp(mean attention-decoder log-prob per token) of the piece
    token_ids: list[int] = field(default_factory=list)  # the piece's hypothesis, tokenizer ids


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Transcription:
    text: str
    duration: float  # seconds of audio
    segments: list[Segment]
    confidence: float  # in [0, 1]: mean of the segments' confidences, weighted by length
    words: list[Word] = field(default_factory=list)  # filled when timestamps are asked for
    timing_source: Optional[str] = None  # "ctc" (forced alignment) | "attention" | None
    attention: Optional[np.ndarray] = None  # (U, T') cross-attention of a one-piece input
    tokens: list[str] = field(default_factory=list)
    processing_time: float = 0.0  # seconds


class Transcriber:
    def __init__(
        self, model, tokenizer, cfg, name: str, device: str = "cpu", vtln_warps: Optional[Sequence[float]] = None
    ):
        """vtln_warps: test-time VTLN warps instead of the model's inference.vtln_warps (checked the same way)."""
        if vtln_warps is not None:
            inference = replace(cfg.inference, vtln_warps=tuple(vtln_warps))  # ConfigError if out of range
            cfg = replace(cfg, inference=inference)
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.model_name = name
        self.device = torch.device(device)
        self.sample_rate = cfg.features.sample_rate
        self.frame_seconds = cfg.features.frame_shift_ms / 1000 * model.subsampling_factor
        inference = cfg.inference
        self.segment_cfg = SegmentConfig(max_seconds=inference.max_segment_seconds, min_seconds=inference.min_segment_seconds)
        # The search the model was tuned for; callers change it through options().
        self.default_options = DecodeOptions(
            ctc_weight=inference.ctc_weight if model.has_ctc else 0.0, lm_weight=inference.lm_weight if model.lm else 0.0,
            min_tokens=inference.min_tokens,
        )
        self.default_options = self.options()  # with the attention window where it applies
        self.vtln_warps = inference.vtln_warps

    def with_inference(self, **changes) -> "Transcriber":
        """The same model with other inference settings (asr.config.InferenceConfig fields, checked as there)."""
        cfg = replace(self.cfg, inference=replace(self.cfg.inference, **changes))
        return Transcriber(self.model, self.tokenizer, cfg, self.model_name, str(self.device))

    @property
    def methods(self) -> tuple[str, ...]:
        """The searches this model can run (CTC greedy needs a CTC head)."""
        return METHODS if self.model.has_ctc else tuple(m for m in METHODS if m != "ctc_greedy")

    @property
    def max_piece_seconds(self) -> float:
        """Longer audio is cut into pieces of at most this many seconds."""
        return self.segment_cfg.max_seconds

    def options(
        self, method: Optional[str] = None, beam_size: Optional[int] = None, ctc_weight: Optional[float] = None,
        length_penalty: Optional[float] = None, attention_window: Optional[Sequence[int]] = None,
        eos_penalty: Optional[float] = None, lm_weight: Optional[float] = None,
    ) -> DecodeOptions:
        """The model's default search with the given fields changed: the one way the CLI, the
        service and the recipes build decoding options. CTC weight defaults to the model's for
        beam search and is 0 otherwise. The model's attention window and EOS penalty are the
        defaults of attention-only searches (greedy, beam without CTC); the joint search has CTC's
        monotonic alignment and gets none unless asked (the window costs it accuracy: the digits
        recipe's RESULTS.md). attention_window () turns the window off, and with it the EOS penalty
        (which needs the window) unless one is given. LM weight, like CTC weight, defaults to the
        model's for beam search (with a language model) and is 0 otherwise.
        ValueError says what is wrong or what this model cannot do."""
        method = {"ctc": "ctc_greedy"}.get(method, method) or self.default_options.method  # "ctc": the service's name
        if method not in self.methods:
            raise ValueError(f"model {self.model_name} cannot decode with {method!r}; it offers {', '.join(self.methods)}")
        if ctc_weight is None:
            ctc_weight = self.default_options.ctc_weight if method == "beam" else 0.0
        if ctc_weight > 0 and not self.model.has_ctc:
            raise ValueError(f"model {self.model_name} has no CTC head: ctc_weight must be 0")
        if lm_weight is None:
            lm_weight = self.default_options.lm_weight if method == "beam" else 0.0
        if lm_weight > 0 and self.model.lm is None:
            raise ValueError(f"model {self.model_name} has no language model: lm_weight must be 0")
        inference = self.cfg.inference
        attention_only = method != "ctc_greedy" and ctc_weight == 0
        window = tuple(attention_window) if attention_window is not None else (
            inference.attention_window if attention_only else ()
        )
        if eos_penalty is None:
            eos_penalty = inference.eos_penalty if window else 0.0
        changes = dict(
            method=method, beam_size=beam_size, ctc_weight=ctc_weight, length_penalty=length_penalty,
            attention_window=window, eos_penalty=eos_penalty, lm_weight=lm_weight,
        )
        return replace(self.default_options, **{k: v for k, v in changes.items() if v is not None})

    def decode_manifest(
        self, utts: Sequence[Utterance], opts: Optional[DecodeOptions] = None, batch_size: int = 64
    ) -> Iterator[tuple[Utterance, Transcription]]:
        """Transcribe a data set batch by batch, in order: what `asr decode`, the training's dev
        WER and the benchmarks share."""
        for start in range(0, len(utts), batch_size):
            chunk = utts[start : start + batch_size]
            yield from zip(chunk, self.transcribe_batch([u.audio for u in chunk], opts))

    @classmethod
    def load(
        cls, model_dir: Optional[str | Path] = None, device: str = "cpu", vtln_warps: Optional[Sequence[float]] = None
    ) -> "Transcriber":
        path = model_path(model_dir)  # a directory, or a shipped model's name
        model, tokenizer, cfg = load_model_dir(path, device)
        return cls(model, tokenizer, cfg, model_name(path), device, vtln_warps)

    def load_audio(self, audio: AudioInput, max_seconds: Optional[float] = None) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            return audio.astype(np.float32, copy=False)
        return load_audio(audio, self.sample_rate, max_seconds=max_seconds)

    def transcribe(
        self, audio: AudioInput, opts: Optional[DecodeOptions] = None, timestamps: bool = False,
        attention: bool = False,
    ) -> Transcription:
        return self.transcribe_batch([audio], opts, timestamps, attention)[0]

    def transcribe_batch(
        self, audios: Sequence[AudioInput], opts: Optional[DecodeOptions] = None, timestamps: bool = False,
        attention: bool = False,
    ) -> list[Transcription]:
        """timestamps: word times in `words`; attention: the cross-attention of one-piece inputs."""
        start = time.perf_counter()
        opts = opts or self.default_options
        waves = [self.load_audio(a) for a in audios]  # each (N,) float32 at self.sample_rate
        pieces = [(w, p) for w, wave in enumerate(waves) for p in split_long_audio(wave, self.sample_rate, self.segment_cfg)]
        # Decoded: pieces that give the encoder a frame (a tail of a few ms does not) and are not near-silent.
        inference = self.cfg.inference
        bare = [waves[w][p.start : p.end] for w, p in pieces]
        bare_frames = [num_frames(len(b), self.cfg.features) for b in bare]
        encoder_frames = self.model.encoder.subsampling.output_lengths(torch.tensor(bare_frames)).tolist()
        audible = [
            i for i, b in enumerate(bare)
            if encoder_frames[i] > 0 and peak_level_db(b, self.sample_rate) >= inference.min_speech_dbfs
        ]
        pause = inference.pause_seconds
        chunks = [with_pauses(torch.from_numpy(b), self.sample_rate, pause) for b in bare]  # each (P + N + P,)
        frames = [num_frames(c.numel(), self.cfg.features) for c in chunks]
        hyps: list[Optional[Hypothesis]] = [None] * len(pieces)
        no_speech = [1.0] * len(pieces)  # P(no speech); inaudible pieces keep 1, audible ones without a head get 0
        head = self.model.no_speech_head is not None
        # The head reads the encoder at warp 1: the decoder's pass where the pauses and a warp agree.
        shared = head and pause == HEAD_PAUSE_SECONDS and 1.0 in self.vtln_warps
        head_chunks = chunks if pause == HEAD_PAUSE_SECONDS or not head else [  # a separate head pass's input
            with_pauses(torch.from_numpy(b), self.sample_rate, HEAD_PAUSE_SECONDS) for b in bare
        ]
        ctc_log_probs: list[Optional[torch.Tensor]] = [None] * len(pieces)  # (T', V) per piece, for word times
        max_frames = int(inference.max_batch_seconds * 1000 / self.cfg.features.frame_shift_ms)
        for batch in batch_pieces([frames[i] for i in audible], max_frames):
            idx = [audible[b] for b in batch]
            if head and not shared:
                enc, enc_lens = self._encode([head_chunks[i] for i in idx], 1.0)
                with torch.inference_mode():
                    for i, p in zip(idx, self.model.no_speech_prob(enc, enc_lens).cpu().tolist()):
                        no_speech[i] = p
            elif not head:
                for i in idx:
                    no_speech[i] = 0.0
            for warp in self.vtln_warps:
                enc, enc_lens = self._encode([chunks[i] for i in idx], warp)  # (B, T', D), (B,)
                with torch.inference_mode():
                    if shared and warp == 1.0:
                        for i, p in zip(idx, self.model.no_speech_prob(enc, enc_lens).cpu().tolist()):
                            no_speech[i] = p
                    # attention is also the fallback for word times when CTC alignment cannot be used
                    found = search(self.model, enc, enc_lens, opts, need_attention=attention or timestamps)
                    log_probs = self.model.ctc_log_probs(enc).cpu() if timestamps and self.model.has_ctc else None
                for j, (i, hyp) in enumerate(zip(idx, found)):
                    if hyps[i] is None or normalised_score(hyp, opts) > normalised_score(hyps[i], opts):
                        hyps[i] = hyp
                        if log_probs is not None:
                            ctc_log_probs[i] = log_probs[j, : int(enc_lens[j])]  # (B, T', V) row, unpadded
        for i, p in enumerate(no_speech):
            if hyps[i] is None or p > inference.no_speech_threshold or hyps[i].confidence < inference.min_confidence:
                hyps[i], ctc_log_probs[i] = Hypothesis(tokens=[], score=0.0, confidence=p), None
        by_wave: list[list] = [[] for _ in waves]  # the pieces of each input, in order
        for (w, piece), hyp, log_probs, p in zip(pieces, hyps, ctc_log_probs, no_speech):
            by_wave[w].append((piece, hyp, log_probs, p))
        results = [self._assemble(wave, mine, timestamps, attention) for wave, mine in zip(waves, by_wave)]
        elapsed = time.perf_counter() - start
        for r in results:
            r.processing_time = elapsed
        return results

    def _assemble(
        self, wave: np.ndarray, pieces: list[tuple[Piece, Hypothesis, Optional[torch.Tensor], float]], timestamps: bool,
        attention: bool,
    ) -> Transcription:
        sr = self.sample_rate
        segments, words, tokens, confidences, weights = [], [], [], [], []
        source = None
        for piece, hyp, ctc_log_probs, no_speech_prob in pieces:
            text = self.tokenizer.decode(hyp.tokens)
            offset = piece.start / sr
            segments.append(Segment(
                round(offset, 3), round(piece.end / sr, 3), text, round(no_speech_prob, 4), hyp.confidence,
                list(hyp.tokens),
            ))
            tokens += [self.tokenizer.id_to_token(t) for t in hyp.tokens]
            confidences.append(hyp.confidence)
            weights.append(piece.num_samples)
            if timestamps and hyp.tokens:
                source, times = self._word_times(hyp, ctc_log_probs, wave[piece.start : piece.end])
                groups = self.tokenizer.tokens_to_words(hyp.tokens)
                words += [Word(g[0], round(offset + s, 3), round(offset + e, 3)) for g, (s, e) in zip(groups, times)]
        single = self._piece_attention(pieces[0][0], pieces[0][1]) if attention and len(pieces) == 1 else None
        return Transcription(
            text=" ".join(s.text for s in segments if s.text),
            duration=len(wave) / sr,
            segments=segments,
            confidence=float(np.average(confidences, weights=weights)),
            words=words,
            timing_source=source if timestamps else None,
            attention=single,
            tokens=tokens,
        )

    def _encode(self, chunks: list[torch.Tensor], warp: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Waves (N_i,) -> encoder output (B, T', D) and lengths (B,), the mel filters warped by `warp`."""
        feats = [fbank(c, self.cfg.features, warp) for c in chunks]
        lens = torch.tensor([len(f) for f in feats])
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)  # (B, T, F)
        with torch.inference_mode():
            return self.model.encode(batch, lens.to(self.device))

    def _piece_attention(self, piece: Piece, hyp: Hypothesis) -> Optional[np.ndarray]:
        """The hypothesis' cross-attention (U, T') over the piece's own encoder frames: its pauses cut off,
        each row renormalised to a distribution over what remains."""
        if hyp.attention is None:
            return None
        frames = num_frames(piece.num_samples, self.cfg.features)
        n = int(self.model.encoder.subsampling.output_lengths(torch.tensor([frames]))[0])
        first = round(self.cfg.inference.pause_seconds / self.frame_seconds)
        inside = hyp.attention[:, first : first + n].float()  # (U, T')
        return (inside / inside.sum(-1, keepdim=True).clamp(min=1e-9)).cpu().numpy()

    def _word_times(self, hyp: Hypothesis, ctc_log_probs: Optional[torch.Tensor], wave: np.ndarray):
        """Word (start, end) in seconds within the piece wave (N,): each word anchored where CTC
        forced alignment puts its tokens when the model has a CTC head (ctc_log_probs (T', V) of the
        piece with its pauses, and the tokens fit its frames), else where the monotonic
        cross-attention does, then extended over its speech by the piece's 10 ms block energy
        (asr/alignment.py)."""
        groups = self.tokenizer.tokens_to_words(hyp.tokens)
        duration = len(wave) / self.sample_rate
        pause = self.cfg.inference.pause_seconds
        decoded = duration + 2 * pause  # what the anchors are measured in
        source, anchors = "ctc", None
        if ctc_log_probs is not None:
            try:
                anchors = ctc_word_times(ctc_log_probs, hyp.tokens, groups, self.frame_seconds, decoded)
            except AlignmentError:
                pass  # more tokens than CTC frames can hold: fall back to the attention
        if anchors is None:
            source, anchors = "attention", attention_word_times(hyp.attention.cpu(), groups, self.frame_seconds, decoded)
        anchors = [tuple(min(max(t - pause, 0.0), duration) for t in a) for a in anchors]  # the pause cut off
        energy = block_energy_db(wave - wave.mean(), round(BLOCK_SECONDS * self.sample_rate))  # (blocks,)
        return source, extend_to_speech(anchors, energy, BLOCK_SECONDS, duration)
