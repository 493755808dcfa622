"""The text rules every string field follows (veche.common.text), without a server."""

import pytest

from veche.common.text import LINE_BREAKS, plain_text, trimmed_text

name = trimmed_text("display_name", 64, no_format=True)
content = trimmed_text("content", 4000, allowed_controls=LINE_BREAKS, max_utf8_bytes=16 * 1024, visible=False)
description = plain_text("description", 2000, LINE_BREAKS)


@pytest.mark.parametrize(
    "value",
    ["Анна", "李雷", "Zoë 🎥", "👩‍👩‍👧 Family", "  padded  ", "O'Brien-Smith", "❤️"],
)
def test_names_in_any_script_with_emoji_sequences_are_kept_trimmed(value):
    assert name(value) == value.strip()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\x00b", "NUL"),
        ("a\ud800", "surrogate"),
        ("\u200b\u200b", "invisible"),
        ("\u202egnp.exe", "invisible"),
        ("a\u200db", "invisible"),
        ("adm\U000e0069n", "invisible"),
        ("esc\x1b[2J", "control"),
        ("\u3164", "visible"),
        ("   ", "empty"),
        ("x" * 65, "at most 64"),
    ],
)
def test_names_that_hide_or_break_text_are_refused(value, reason):
    with pytest.raises(ValueError, match=reason):
        name(value)


def test_content_keeps_line_breaks_and_tabs_and_counts_characters_and_bytes():
    assert content("a\n\tb") == "a\n\tb"
    assert content("😀" * 4000) == "😀" * 4000  # 16,000 bytes: within both limits
    with pytest.raises(ValueError, match="at most 4000 characters"):
        content("x" * 4001)
    with pytest.raises(ValueError, match="control"):
        content("bell\x07")
    assert content("\u200b") == "\u200b"  # invisible content is allowed (not a name)


def test_descriptions_may_be_empty_but_not_hold_nul_or_controls():
    assert description("") == ""
    assert description("line\nline\tend") == "line\nline\tend"
    for bad in ("a\x00", "x\udfff", "esc\x1b"):
        with pytest.raises(ValueError):
            description(bad)
