"""WER scoring: hand-computed counts, transcript files, normalisation, reports."""

import json

import pytest

from asr.evaluate import (
    Normalizer,
    ScoringError,
    TranscriptError,
    format_alignment,
    load_groups,
    load_transcripts,
    score,
    score_groups,
)

# Hand-aligned:
#   u1  the cat SAT on THE mat / the cat SIT on *** mat   S=1 D=1 I=0  N=6
#       chars: a->i, delete "the "                        5 errors / 22
#   u2  one two three **** / one two three FOUR           I=1          N=3
#       chars: insert " four"                             5 errors / 13
#   u3  hello world / hello world                         correct      N=2, 11 chars
# Totals: 3 word errors / 11 words, 10 char errors / 46 chars, 2 of 3 sentences wrong.
REFS = {"u1": "the cat sat on the mat", "u2": "one two three", "u3": "hello world"}
HYPS = {"u1": "the cat sit on mat", "u2": "one two three four", "u3": "hello world"}


def test_score_counts_match_hand_alignment():
    report = score(REFS, HYPS)
    assert (report.substitutions, report.deletions, report.insertions, report.hits) == (1, 1, 1, 9)
    assert report.num_ref_words == 11
    assert report.wer == pytest.approx(3 / 11)
    assert (report.char_errors, report.num_ref_chars) == (10, 46)
    assert report.cer == pytest.approx(10 / 46)
    assert report.sentence_errors == 2
    assert report.ser == pytest.approx(2 / 3)
    assert report.num_utterances == 3
    assert report.runaways == 0  # u2's 4 words against 3 is an insertion, not a runaway


def test_runaways_are_hypotheses_more_than_twice_their_reference():
    refs = {"a": "one two", "b": "one two", "c": "one two", "d": ""}
    hyps = {"a": "one two one two", "b": "one two one two one", "c": "six six six six six", "d": "six"}
    report = score(refs, hyps)
    assert [u.runaway for u in report.utterances] == [False, True, True, True]
    assert report.runaways == report.summary()["runaways"] == 3


def test_per_utterance_results_and_alignment():
    u1, u2, u3 = score(REFS, HYPS).utterances
    assert [u.id for u in (u1, u2, u3)] == ["u1", "u2", "u3"]
    assert (u1.substitutions, u1.deletions, u1.insertions, u1.errors) == (1, 1, 0, 2)
    assert u1.wer == pytest.approx(2 / 6)
    assert [(p.op, p.ref, p.hyp) for p in u1.alignment] == [
        ("C", "the", "the"), ("C", "cat", "cat"), ("S", "sat", "sit"),
        ("C", "on", "on"), ("D", "the", None), ("C", "mat", "mat"),
    ]
    assert [(p.op, p.ref, p.hyp) for p in u2.alignment][-1] == ("I", None, "four")
    assert u2.wer == pytest.approx(1 / 3)
    assert (u3.errors, u3.wer) == (0, 0.0)


def test_empty_reference_scores_insertions_and_has_no_utterance_wer():
    report = score({"a": "yes no", "b": ""}, {"a": "yes no", "b": "uh um"})
    b = report.utterances[1]
    assert (b.insertions, b.errors, b.num_ref_words, b.wer) == (2, 2, 0, None)
    assert report.wer == pytest.approx(2 / 2)
    assert report.worst(5) == [b]


def test_nothing_to_score_is_an_error():
    with pytest.raises(ScoringError, match="no reference"):
        score({}, {})
    with pytest.raises(ScoringError, match="no words"):
        score({"a": "", "b": "?!"}, {"a": "", "b": ""})


def test_mismatched_ids_error_names_ids_and_counts():
    refs = {f"r{i}": "one" for i in range(8)}
    hyps = {"r0": "one", "x1": "two"}
    with pytest.raises(ScoringError) as err:
        score(refs, hyps)
    message = str(err.value)
    assert "7 of 8 reference ids have no hypothesis" in message
    assert "r1, r2, r3, r4, r5, ..." in message and "r6" not in message
    assert "1 hypothesis ids are not in the references (x1)" in message


def test_allow_missing_scores_missing_hypotheses_as_deletions_but_not_extras():
    refs = {"a": "one two", "b": "three four five"}
    report = score(refs, {"a": "one two"}, allow_missing=True)
    assert (report.deletions, report.wer) == (3, pytest.approx(3 / 5))
    assert report.utterances[1].hyp == ""
    with pytest.raises(ScoringError, match="not in the references"):
        score(refs, {"a": "one two", "zzz": "x"}, allow_missing=True)


def test_worst_orders_by_errors_then_wer_and_skips_correct():
    refs = {"ok": "a b", "two_of_9": "a b c d e f g h i", "one_of_1": "a", "two_of_2": "a b", "one_of_4": "a b c d"}
    hyps = {"ok": "a b", "two_of_9": "a b c d e f g x y", "one_of_1": "x", "two_of_2": "x y", "one_of_4": "a b c x"}
    report = score(refs, hyps)
    assert [u.id for u in report.worst(10)] == ["two_of_2", "two_of_9", "one_of_1", "one_of_4"]
    assert [u.id for u in report.worst(1)] == ["two_of_2"]
    assert report.worst(0) == []


@pytest.mark.parametrize(
    ("normalizer", "text", "expected"),
    [
        (Normalizer(), "  Hello,   WORLD!\t", "hello world"),
        (Normalizer(), "don't -- stop", "dont stop"),
        (Normalizer(lowercase=False), "Hello, World", "Hello World"),
        (Normalizer(remove_punctuation=False), "Hello, World", "hello, world"),
        (Normalizer(drop_tokens=("<unk>", "uh")), "uh, the <UNK> cat Uh", "the cat"),
        (Normalizer(lowercase=False, drop_tokens=("<unk>",)), "a <UNK> <unk> b", "a <UNK> b"),
    ],
)
def test_normalizer(normalizer, text, expected):
    assert normalizer(text) == expected


def test_normalisation_applies_to_both_sides():
    refs, hyps = {"a": "Hello, World!"}, {"a": "hello world"}
    assert score(refs, hyps).wer == 0.0
    strict = Normalizer(lowercase=False, remove_punctuation=False)
    assert score(refs, hyps, strict).substitutions == 2
    assert score({"a": "the cat"}, {"a": "uh the <unk> cat"}, Normalizer(drop_tokens=("uh", "<unk>"))).wer == 0.0


def test_load_kaldi_text(tmp_path):
    path = tmp_path / "text"
    path.write_text("utt1 the cat  sat\n\nutt2\tone two\nutt3\n   \nutt4   \n", encoding="utf-8")
    assert load_transcripts(path) == {"utt1": "the cat  sat", "utt2": "one two", "utt3": "", "utt4": ""}
    assert load_transcripts(tmp_path) == load_transcripts(path)  # a Kaldi data dir


def test_load_jsonl(tmp_path):
    path = tmp_path / "hyp.jsonl"
    lines = [{"id": "a", "text": "one two", "audio": "a.wav"}, {"id": "b", "text": ""}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    assert load_transcripts(path) == {"a": "one two", "b": ""}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "text": "x"}\n{"id": "b", "text": }\n', ":2: invalid JSON"),
        ('{"id": "a", "text": "x"}\n\n["b", "y"]\n', ":3: expected a JSON object"),
        ('{"id": "a"}\n', ':1: "text" must be a string'),
        ('{"id": 7, "text": "x"}\n', ':1: "id" must be a non-empty string'),
        ("a one\nb two\n\na three\n", ":4: duplicate utterance id 'a' (first on line 1)"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', ":2: duplicate utterance id 'a' (first on line 1)"),
    ],
)
def test_malformed_transcripts_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TranscriptError) as err:
        load_transcripts(path)
    assert f"{path}{message}" in str(err.value)


def test_unreadable_transcripts(tmp_path):
    with pytest.raises(TranscriptError, match="no such file"):
        load_transcripts(tmp_path / "missing.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("a caf\u00e9\n".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8"):
        load_transcripts(latin1)


def test_alignment_rendering_like_sclite():
    u1, u2, _ = score(REFS, HYPS).utterances
    assert format_alignment(u1).splitlines() == [
        "id: (u1)",
        "Scores: (#C #S #D #I) 4 1 1 0",
        "REF:  the cat SAT on THE mat",
        "HYP:  the cat SIT on *** mat",
        "EVAL:         S      D",
    ]
    assert format_alignment(u2).splitlines()[2:] == [
        "REF:  one two three ****",
        "HYP:  one two three FOUR",
        "EVAL:               I",
    ]
    short = score({"x": "a b"}, {"x": "b"}).utterances[0]  # stars are at least 3 wide
    assert format_alignment(short).splitlines()[2:] == ["REF:  A   b", "HYP:  *** b", "EVAL: D"]


def test_score_groups_scores_each_group_alone(tmp_path):
    refs = {"a1": "one two", "a2": "three four", "c1": "five six seven eight"}
    hyps = {"a1": "one two", "a2": "three", "c1": "five five seven"}
    groups_file = tmp_path / "utt2group"
    groups_file.write_text("a1 adult\na2 adult\nc1 child\n")
    groups = score_groups(refs, hyps, load_groups(groups_file))
    assert list(groups) == ["adult", "child"]
    assert groups["adult"].wer == pytest.approx(1 / 4)
    assert groups["child"].wer == pytest.approx(2 / 4)
    assert groups["child"].num_utterances == 1


def test_score_groups_needs_a_group_for_every_reference():
    with pytest.raises(ScoringError, match="1 reference.*no group.*c1"):
        score_groups({"a1": "one", "c1": "two"}, {"a1": "one", "c1": "two"}, {"a1": "adult"})
