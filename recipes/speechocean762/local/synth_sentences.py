#!/usr/bin/env python3
"""Stage "synthetic voices": a TTS engine reads English sentences -> data/train_synth_ENGINE.

More text and more voices than speechocean762's 3,100 training utterances. Each utterance is
one sentence of --text (Kaldi-style "id sentence" lines; by default the 12,577 LJ Speech
sentences of ../../../shared/data/text/ljspeech_sentences.txt; data/train/text has the recipe's
own sentences read by other voices) read in one go by a random voice of the engine
(local/tts.py: espeak-ng's 304 voices and variants, or flite's awb, rms, slt and kal16, at
random speeds and pitches). The audio is 16 kHz 16-bit (the model hears full-band audio),
trimmed, at a random level within speechocean762's (loudest 10 ms frame -25 to -10 dBFS),
with 100-300 ms of lead and trail and a low noise floor under it all.

  local/synth_sentences.py --data data --engine flite --num-utts 1000

The transcript is the sentence written as the recipe writes text (asr.lm.lm_sentence: lower
case, punctuation other than apostrophes removed). A sentence the engine would not read as
its transcript says is left out: one with digits or symbols, letters outside ASCII, a word in
capitals (read letter by letter: "FBI") or an abbreviation (Mr., Mrs., Dr., St., a.m.: the
engine says "mister" where the transcript would say "mr"); so is a sentence whose transcript
an earlier one has. The sentences are taken in an order drawn with --seed; an utterance
longer than --max-seconds is dropped and the next sentence taken until --num-utts are made,
so the result depends on the seed alone, not on the workers. utt2src: the engine settings
and the sentence's id. Without the engine the stage fails (exit status 1), or with
--optional says so and does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from stage import StageError, add_force_arg, add_seed_arg, begin, done_marker, run_main
from tts import (
    EDGE_MS,
    NOISE_BELOW_PEAK_DB,
    Rendering,
    SynthJob,
    add_engine_args,
    draw_voice,
    find_engine,
    plan_job,
    synthesize,
    voice_params,
    write_synth_dir,
)

from asr.audio import SAMPLE_RATE
from asr.kaldi import TableError, read_table
from asr.lm import lm_sentence

DEFAULT_TEXT = Path(__file__).resolve().parents[4] / "shared" / "data" / "text" / "ljspeech_sentences.txt"
PEAK_DB = (-25.0, -10.0)  # 5th-95th percentile of speechocean762's training utterances (median -15)
ESPEAK_WORD_GAP_10MS = (0, 3)  # a longer gap between words chops a sentence into isolated words
CAPITALS = re.compile(r"\b[A-Z]{2,}\b")
ABBREVIATION = re.compile(r"\b(?:mr|mrs|messrs|dr|st|jr|sr|etc|vs)\b|\bco\.|\b[a-z]\.[a-z]\.", re.IGNORECASE)
TRANSCRIPT = re.compile(r"[a-z' ]+")


@dataclass(frozen=True)
class Sentence:
    id: str
    written: str  # what the engine reads, punctuation and all (it shapes the prosody)
    text: str  # the transcript


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--name", help="data dir to write under --data (default: train_synth_espeak / train_synth_flite)")
    parser.add_argument("--text", type=Path, nargs="+", action="extend",
                        help=f"Kaldi-style text files, 'id sentence' lines; may be repeated (default: {DEFAULT_TEXT})")
    parser.add_argument("--num-utts", type=int, default=1000, help="utterances (default: 1000)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="drop an utterance longer than this and take the next sentence (default: 20)")
    add_engine_args(parser)
    add_seed_arg(parser)
    add_force_arg(parser)
    args = parser.parse_args(argv)
    if args.num_utts < 1 or args.max_seconds <= 0:
        parser.error("need --num-utts >= 1 and --max-seconds > 0")
    args.name = args.name or f"train_synth_{args.engine.split('-')[0]}"
    args.text = args.text or [DEFAULT_TEXT]
    return args


def transcript(written: str) -> str | None:
    """The transcript of a sentence as the engine reads it, or None when the engine would say
    something else (digits, symbols, non-ASCII letters, capitals read as letters, abbreviations)."""
    if not written.isascii() or CAPITALS.search(written) or ABBREVIATION.search(written):
        return None
    text = lm_sentence(written)
    return text if TRANSCRIPT.fullmatch(text) else None


def read_sentences(paths: Sequence[Path]) -> list[Sentence]:
    """The sentences of the text files that can be read as written, the first of each transcript."""
    sentences, seen = [], set()
    for path in paths:
        try:
            table = read_table(path)
        except (OSError, UnicodeDecodeError) as err:
            raise StageError(f"cannot read --text {path} ({err}): it takes Kaldi-style 'id sentence' lines") from None
        except TableError as err:
            raise StageError(f"--text: {err}") from None
        for sid, (_, written) in table.items():
            text = transcript(written)
            if text is not None and text not in seen:
                seen.add(text)
                sentences.append(Sentence(sid, written, text))
    if not sentences:
        raise StageError(f"no sentence of {', '.join(map(str, paths))} can be read as written (see --help)")
    return sentences


def plan_jobs(args: argparse.Namespace, sentences: Sequence[Sentence], wav_dir: Path) -> list[SynthJob]:
    """One job per sentence, in an order drawn with the seed; the caller keeps the first --num-utts that fit."""
    rng = np.random.default_rng(args.seed)
    how = Rendering(SAMPLE_RATE, PEAK_DB)
    jobs = []
    for index, k in enumerate(rng.permutation(len(sentences))):
        s = sentences[k]
        voice = draw_voice(args.engine, rng, ESPEAK_WORD_GAP_10MS)
        utt_id = f"{voice.speaker}-synth-{index:05d}"
        jobs.append(plan_job(rng, how, utt_id, voice, [s.written], s.text, wav_dir / f"{utt_id}.wav", (s.id,)))
    return jobs


def render_until(jobs: Sequence[SynthJob], exe: str, args: argparse.Namespace) -> tuple[list[SynthJob], list[float]]:
    """Render jobs in order until --num-utts of at most --max-seconds are made; delete the rest's WAVs."""
    kept, durations, dropped = [], [], 0
    with closing(synthesize(jobs, exe, args.jobs)) as rendered:
        for job, seconds in zip(jobs, rendered):
            if seconds > args.max_seconds:
                dropped += 1
                continue
            kept.append(job)
            durations.append(seconds)
            if len(kept) == args.num_utts:
                break
    if not kept:
        raise StageError(f"no utterance of at most --max-seconds {args.max_seconds:g} s")
    wanted = {job.wav for job in kept}
    for wav in jobs[0].wav.parent.iterdir():  # the dropped ones, and those the pool made past the last kept
        if wav not in wanted:
            wav.unlink()
    if dropped:
        print(f"dropped {dropped} utterance(s) longer than {args.max_seconds:g} s")
    if len(kept) < args.num_utts:
        print(f"warning: {len(kept)} of --num-utts {args.num_utts} made: the sentences ran out")
    return kept, durations


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sentences = read_sentences(args.text)
    exe = find_engine(args)
    if exe is None:
        return
    out_dir, wav_dir = args.data / args.name, args.data / "wav" / args.name
    params = {k: getattr(args, k) for k in ("engine", "num_utts", "max_seconds", "seed")}
    params.update(text=[[str(p.resolve()), sha256(p)] for p in args.text], sample_rate=SAMPLE_RATE)
    params.update(voice_params(args.engine, ESPEAK_WORD_GAP_10MS))
    params.update(peak_db=PEAK_DB, noise_below_peak_db=NOISE_BELOW_PEAK_DB, edge_ms=EDGE_MS)
    if not begin(done_marker(out_dir), params, args.force, outputs=[out_dir, wav_dir]):
        return
    start = time.time()
    wav_dir.mkdir(parents=True)
    jobs, durations = render_until(plan_jobs(args, sentences, wav_dir.resolve()), exe, args)
    write_synth_dir(out_dir, jobs, durations, params, start)


if __name__ == "__main__":
    sys.exit(run_main(main))
