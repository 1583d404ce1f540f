"""Kaldi tables: the one reader of wav.scp / text / utt2dur lines."""

import pytest

from asr.kaldi import TableError, parse_table, read_table


def test_keys_values_and_line_numbers():
    text = "a  /x/a.wav \n\n  \nb\t/x/b c.wav\r\nc one  two\n"
    assert parse_table(text, "t") == {"a": (1, "/x/a.wav"), "b": (4, "/x/b c.wav"), "c": (5, "one  two")}


def test_a_key_alone_is_an_empty_value_only_where_allowed():
    assert parse_table("a\nb two\n", "text", need_value=False) == {"a": (1, ""), "b": (2, "two")}
    with pytest.raises(TableError, match=r"wav\.scp:2: expected 'utt-id value', got 'b'"):
        parse_table("a A\nb\n", "wav.scp")


def test_repeated_key_names_both_lines():
    with pytest.raises(TableError, match=r"utt2dur:3: duplicate utterance id 'a' \(first on line 1\)"):
        parse_table("a 1.0\nb 2.0\na 3.0\n", "utt2dur")


def test_lines_end_at_newline_only(tmp_path):
    """A transcript may hold other Unicode line breaks; they stay inside its value."""
    path = tmp_path / "text"
    path.write_text("\ufeffa one\u2028two\x85three\n", encoding="utf-8")  # with a byte-order mark
    assert read_table(path) == {"a": (1, "one\u2028two\x85three")}
