"""WER / CER scoring of hypotheses against references, and sclite-style alignment reports.

Edit distances and alignments come from jiwer (`process_words`, `process_characters`);
this module reads transcript files, normalises text, and reports. Conventions:

- Both sides go through the same `Normalizer`; everything reported (texts, alignments,
  counts) is about the normalised text.
- WER = (S + D + I) / N over the whole set, N = number of reference words (a micro
  average: long utterances weigh more). CER is the same on characters, counting the
  single space between words as a character (jiwer's convention).
- SER = fraction of utterances with at least one word error.
- An utterance whose reference is empty scores every hypothesis word as an insertion;
  its own `wer` is None (undefined), but its errors count in the totals.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import jiwer

from asr.kaldi import TableError, parse_table

MAX_IDS_SHOWN = 5  # ids named in a mismatch error before "..."


class TranscriptError(ValueError):
    """A transcript file is missing, unreadable or malformed; the message names file:line."""


class ScoringError(ValueError):
    """References and hypotheses cannot be scored together (mismatched ids, nothing to score)."""


# ---------------------------------------------------------------------------- loading


def load_transcripts(path: str | Path) -> dict[str, str]:
    """Read `{utterance id: text}` from a Kaldi `text` file or a JSONL manifest.

    Kaldi: one `utt-id word word ...` per line; an id alone means an empty transcript.
    JSONL: one `{"id": ..., "text": ...}` object per line (other keys are ignored).
    The format is taken from the first non-blank line (JSONL if it starts with `{`);
    blank lines are skipped. A directory is read as a Kaldi data dir (its `text` file).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "text"
    content = _read_text(path)
    if not content.lstrip().startswith("{"):
        try:
            return {utt_id: text for utt_id, (_, text) in parse_table(content, path, need_value=False).items()}
        except TableError as err:
            raise TranscriptError(str(err)) from None
    transcripts: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for no, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        utt_id, text = _parse_jsonl_line(line, where)
        if utt_id in first_seen:
            raise TranscriptError(f"{where}: duplicate utterance id {utt_id!r} (first on line {first_seen[utt_id]})")
        first_seen[utt_id] = no
        transcripts[utt_id] = text
    return transcripts


def load_groups(path: str | Path) -> dict[str, str]:
    """Read `{utterance id: group}` from a Kaldi table ("utt-id group" lines, e.g. a data dir's utt2group)."""
    try:
        return {utt_id: group for utt_id, (_, group) in parse_table(_read_text(Path(path)), path).items()}
    except TableError as err:
        raise TranscriptError(str(err)) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise TranscriptError(f"{path}: not UTF-8 text (bad byte at offset {err.start})") from None
    except OSError as err:
        raise TranscriptError(f"{path}: cannot read ({err.strerror})") from None


def _parse_jsonl_line(line: str, where: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise TranscriptError(f"{where}: invalid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(record, dict):
        raise TranscriptError(f'{where}: expected a JSON object with "id" and "text"')
    utt_id, text = record.get("id"), record.get("text")
    if not isinstance(utt_id, str) or not utt_id.strip():
        raise TranscriptError(f'{where}: "id" must be a non-empty string, got {utt_id!r}')
    if not isinstance(text, str):
        raise TranscriptError(f'{where}: "text" must be a string, got {text!r}')
    return utt_id, text


# ---------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalizer:
    """Text normalisation applied identically to references and hypotheses.

    For each whitespace-separated word: lowercase it (if `lowercase`); drop it if it is in
    `drop_tokens`; strip punctuation (every Unicode category P* character, as
    jiwer.RemovePunctuation, so "don't" -> "dont", "<unk>" keeps its brackets); drop it if
    it is now empty or in `drop_tokens`. Words are re-joined with single spaces.
    `drop_tokens` match case-insensitively when lowercasing.
    """

    lowercase: bool = True
    remove_punctuation: bool = True
    drop_tokens: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        drop = {t.lower() for t in self.drop_tokens} if self.lowercase else set(self.drop_tokens)
        words = []
        for word in text.split():
            if self.lowercase:
                word = word.lower()
            if self.remove_punctuation and word not in drop:
                word = "".join(c for c in word if not unicodedata.category(c).startswith("P"))
            if word and word not in drop:
                words.append(word)
        return " ".join(words)


# ---------------------------------------------------------------------------- scoring


RUNAWAY_FACTOR = 2


@dataclass(frozen=True)
class AlignedPair:
    """One column of a word alignment.

    op: "C" correct, "S" substitution, "D" deletion (`hyp` is None), "I" insertion (`ref` is None).
    """

    op: str
    ref: str | None
    hyp: str | None


@dataclass(frozen=True)
class UtteranceResult:
    id: str
    ref: str  # normalised reference
    hyp: str  # normalised hypothesis ("" if it was missing)
    alignment: tuple[AlignedPair, ...]

    def _count(self, op: str) -> int:
        return sum(pair.op == op for pair in self.alignment)

    @property
    def hits(self) -> int:
        return self._count("C")

    @property
    def substitutions(self) -> int:
        return self._count("S")

    @property
    def deletions(self) -> int:
        return self._count("D")

    @property
    def insertions(self) -> int:
        return self._count("I")

    @property
    def errors(self) -> int:
        return len(self.alignment) - self.hits

    @property
    def num_ref_words(self) -> int:
        return len(self.alignment) - self.insertions

    @property
    def wer(self) -> float | None:
        """errors / reference words; None when the reference is empty."""
        return self.errors / self.num_ref_words if self.num_ref_words else None

    @property
    def runaway(self) -> bool:
        """More than RUNAWAY_FACTOR times the reference's words: the sign of a decoder looping or
        running on past the speech (for an empty reference, any word at all)."""
        return self.hits + self.substitutions + self.insertions > RUNAWAY_FACTOR * self.num_ref_words

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "ref": self.ref,
            "hyp": self.hyp,
            "errors": self.errors,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "num_ref_words": self.num_ref_words,
            "wer": self.wer,
            "alignment": [asdict(pair) for pair in self.alignment],
        }


@dataclass(frozen=True)
class WerReport:
    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    num_ref_words: int
    char_errors: int
    num_ref_chars: int
    utterances: tuple[UtteranceResult, ...]  # in reference-file order

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def num_utterances(self) -> int:
        return len(self.utterances)

    @property
    def sentence_errors(self) -> int:
        return sum(utt.errors > 0 for utt in self.utterances)

    @property
    def ser(self) -> float:
        return self.sentence_errors / self.num_utterances

    @property
    def runaways(self) -> int:
        return sum(utt.runaway for utt in self.utterances)

    def worst(self, n: int) -> list[UtteranceResult]:
        """The `n` utterances with the most word errors (ties: higher WER, then file order).

        Utterances without errors are never listed, so fewer than `n` may come back.
        """
        with_errors = [utt for utt in self.utterances if utt.errors > 0]
        ranked = sorted(with_errors, key=lambda u: (-u.errors, -(u.wer if u.wer is not None else math.inf)))
        return ranked[:n]

    def summary(self) -> dict:
        return {
            "wer": self.wer,
            "cer": self.cer,
            "ser": self.ser,
            "errors": self.errors,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "num_ref_words": self.num_ref_words,
            "char_errors": self.char_errors,
            "num_ref_chars": self.num_ref_chars,
            "sentence_errors": self.sentence_errors,
            "num_utterances": self.num_utterances,
            "runaways": self.runaways,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "utterances": [utt.to_dict() for utt in self.utterances]}


def score(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    normalizer: Normalizer = Normalizer(),
    allow_missing: bool = False,
) -> WerReport:
    """Score `hyps` against `refs` (both `{utterance id: text}`).

    Every hypothesis id must be a reference id. A reference without a hypothesis is an
    error, unless `allow_missing`, where it is scored as an empty hypothesis (all deletions).
    """
    if not refs:
        raise ScoringError("no reference transcripts to score")
    _check_ids(refs, hyps, allow_missing)
    ids = list(refs)
    ref_texts = [normalizer(refs[utt_id]) for utt_id in ids]
    hyp_texts = [normalizer(hyps.get(utt_id, "")) for utt_id in ids]

    words = jiwer.process_words(ref_texts, hyp_texts)
    num_ref_words = words.hits + words.substitutions + words.deletions
    if num_ref_words == 0:
        raise ScoringError("the references contain no words (after normalisation): WER is undefined")
    chars = jiwer.process_characters(ref_texts, hyp_texts)

    utterances = tuple(
        UtteranceResult(utt_id, ref, hyp, _aligned_pairs(chunks, ref_words, hyp_words))
        for utt_id, ref, hyp, chunks, ref_words, hyp_words in zip(
            ids, ref_texts, hyp_texts, words.alignments, words.references, words.hypotheses
        )
    )
    return WerReport(
        wer=words.wer,
        cer=chars.cer,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
        num_ref_words=num_ref_words,
        char_errors=chars.substitutions + chars.deletions + chars.insertions,
        num_ref_chars=chars.hits + chars.substitutions + chars.deletions,
        utterances=utterances,
    )


def score_groups(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    groups: Mapping[str, str],
    normalizer: Normalizer = Normalizer(),
    allow_missing: bool = False,
) -> dict[str, WerReport]:
    """`score` of each group of utterances on its own: {group: report}, groups sorted by name.

    `groups` maps every reference id to a group name (e.g. "child" / "adult" from the speakers'
    ages); a reference without a group is an error. A group whose references hold no words is left out.
    """
    ungrouped = [utt_id for utt_id in refs if utt_id not in groups]
    if ungrouped:
        raise ScoringError(f"{len(ungrouped)} reference(s) have no group, e.g. {_some(ungrouped)}")
    _check_ids(refs, hyps, allow_missing)
    reports = {}
    for group in sorted(set(groups[utt_id] for utt_id in refs)):
        mine = {utt_id: text for utt_id, text in refs.items() if groups[utt_id] == group}
        if any(normalizer(text) for text in mine.values()):
            reports[group] = score(mine, {u: hyps[u] for u in mine if u in hyps}, normalizer, allow_missing)
    return reports


def _check_ids(refs: Mapping[str, str], hyps: Mapping[str, str], allow_missing: bool) -> None:
    missing = [utt_id for utt_id in refs if utt_id not in hyps]
    extra = [utt_id for utt_id in hyps if utt_id not in refs]
    problems = []
    if missing and not allow_missing:
        problems.append(
            f"{len(missing)} of {len(refs)} reference ids have no hypothesis ({_some(missing)}); "
            "allow_missing (--allow-missing) scores them as empty hypotheses"
        )
    if extra:
        problems.append(f"{len(extra)} hypothesis ids are not in the references ({_some(extra)})")
    if problems:
        raise ScoringError("; ".join(problems))


def _some(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    return shown + ", ..." if len(ids) > MAX_IDS_SHOWN else shown


_OPS = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def _aligned_pairs(
    chunks: Sequence[jiwer.AlignmentChunk], ref_words: Sequence[str], hyp_words: Sequence[str]
) -> tuple[AlignedPair, ...]:
    """Expand jiwer's alignment chunks (spans of one edit type) into one pair per column."""
    pairs = []
    for chunk in chunks:
        refs = list(ref_words[chunk.ref_start_idx : chunk.ref_end_idx])
        hyps = list(hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx])
        width = max(len(refs), len(hyps))  # one side is empty for "delete" / "insert"
        pairs += [
            AlignedPair(_OPS[chunk.type], ref, hyp)
            for ref, hyp in zip(refs or [None] * width, hyps or [None] * width)
        ]
    return tuple(pairs)


# -------------------------------------------------------------------------- reporting


def format_summary(report: WerReport) -> str:
    """Kaldi compute-wer style totals."""
    return "\n".join(
        [
            f"%WER {100 * report.wer:.2f} [ {report.errors} / {report.num_ref_words}, "
            f"{report.insertions} ins, {report.deletions} del, {report.substitutions} sub ]",
            f"%CER {100 * report.cer:.2f} [ {report.char_errors} / {report.num_ref_chars} ]",
            f"%SER {100 * report.ser:.2f} [ {report.sentence_errors} / {report.num_utterances} ]",
            f"Utterances: {report.num_utterances}, reference words: {report.num_ref_words}",
            f"Runaways: {report.runaways} (hypotheses more than {RUNAWAY_FACTOR}x their reference's words)",
        ]
    )


def format_alignment(utt: UtteranceResult) -> str:
    """One utterance as in sclite's pra output.

    Errors are upper-cased; the missing side of a deletion or insertion is a run of `*`
    (at least 3); the EVAL line marks each error column with S, D or I.
    """
    ref_cols, hyp_cols, eval_cols = [], [], []
    for pair in utt.alignment:
        ref, hyp = pair.ref or "", pair.hyp or ""
        if pair.op != "C":
            ref, hyp = ref.upper(), hyp.upper()
        width = max(len(ref), len(hyp), 3 if pair.op in ("D", "I") else 0)
        ref_cols.append((ref or "*" * width).ljust(width))
        hyp_cols.append((hyp or "*" * width).ljust(width))
        eval_cols.append(("" if pair.op == "C" else pair.op).ljust(width))
    lines = [
        f"id: ({utt.id})",
        f"Scores: (#C #S #D #I) {utt.hits} {utt.substitutions} {utt.deletions} {utt.insertions}",
        "REF:  " + " ".join(ref_cols),
        "HYP:  " + " ".join(hyp_cols),
        "EVAL: " + " ".join(eval_cols),
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_groups(groups: Mapping[str, WerReport]) -> str:
    """One line per group: its WER, CER and size."""
    return "\n".join(
        f"%WER {100 * r.wer:.2f} %CER {100 * r.cer:.2f} [ {r.errors} / {r.num_ref_words} ] "
        f"{r.num_utterances} utterances: {name}"
        for name, r in groups.items()
    )


def format_report(report: WerReport, worst: int, groups: Mapping[str, WerReport] | None = None) -> str:
    """The summary, the groups' WERs (if any), then the alignments of the `worst` utterances with the most errors."""
    blocks = [format_summary(report)]
    if groups:
        blocks.append("By group:\n" + format_groups(groups))
    worst_utts = report.worst(worst)
    if worst_utts:
        blocks.append(f"Utterances with the most word errors ({len(worst_utts)} shown):")
        blocks += [format_alignment(utt) for utt in worst_utts]
    return "\n\n".join(blocks)

