"""What a string field may hold, in one place for every service (the contract's Field rules).

Every string a client sends is checked here before anything stores, logs or serialises it: a
NUL or a lone surrogate (which JSON allows as `\\ud800`, and which PostgreSQL and UTF-8 cannot
hold) is a 422, never a 5xx somewhere further in."""

import unicodedata
from collections.abc import Callable

# Characters that take no room on screen although their category says otherwise (Hangul and
# Braille fillers): a name made of them alone looks empty.
_BLANK_LOOKALIKES = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


def _category(ch: str) -> str:
    return unicodedata.category(ch)


def check_encodable(value: str, what: str) -> None:
    """No NUL, no lone surrogate: nothing that UTF-8, JSON encoders or PostgreSQL refuse."""
    for ch in value:
        if ch == "\x00":
            raise ValueError(f"{what} must not contain a NUL character")
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(f"{what} must not contain a lone surrogate")


def check_no_controls(value: str, what: str, allowed: frozenset[str] = frozenset()) -> None:
    """No control characters (category Cc) but the allowed ones; line and paragraph separators
    count as controls too."""
    for ch in value:
        if ch not in allowed and _category(ch) in {"Cc", "Zl", "Zp"}:
            raise ValueError(f"{what} must not contain control characters")


_ZWJ = "\u200d"
# What may stand between a pictograph and a zero-width joiner: a variation selector (U+FE0F)
# or a skin tone (U+1F3FB–U+1F3FF).
_EMOJI_TRAILERS = {"\ufe0f"} | {chr(c) for c in range(0x1F3FB, 0x1F400)}


def _pictographic(ch: str) -> bool:
    return _category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _joins_emoji(value: str, i: int) -> bool:
    """A zero-width joiner inside an emoji sequence (👩‍👩‍👧): it draws one picture, hides
    nothing, so it is allowed there and nowhere else."""
    before = i - 1
    while before >= 0 and value[before] in _EMOJI_TRAILERS:
        before -= 1
    after = i + 1
    return before >= 0 and after < len(value) and _pictographic(value[before]) and _pictographic(value[after])


def check_no_format(value: str, what: str) -> None:
    """No format characters (category Cf): bidi overrides such as U+202E, zero-width
    characters, tag characters: they make a name look like another or hide text. The one
    exception is the joiner inside an emoji sequence."""
    for i, ch in enumerate(value):
        if _category(ch) == "Cf" and not (ch == _ZWJ and _joins_emoji(value, i)):
            raise ValueError(f"{what} must not contain invisible or direction-changing characters")


def check_visible(value: str, what: str) -> None:
    """At least one character that shows: a letter, digit, punctuation or symbol."""
    for ch in value:
        if _category(ch)[0] in "LNPS" and ch not in _BLANK_LOOKALIKES:
            return
    raise ValueError(f"{what} must contain at least one visible character")


def trimmed_text(
    what: str,
    max_chars: int,
    *,
    allowed_controls: frozenset[str] = frozenset(),
    no_format: bool = False,
    visible: bool = True,
    max_utf8_bytes: int | None = None,
) -> Callable[[str], str]:
    """A pydantic AfterValidator: trims, then applies the rules in the order a client can act
    on (encoding first, so no other rule ever sees a surrogate)."""

    def check(value: str) -> str:
        check_encodable(value, what)
        value = value.strip()
        if not value:
            raise ValueError(f"{what} must not be empty")
        if len(value) > max_chars:
            raise ValueError(f"{what} must be at most {max_chars} characters")
        if max_utf8_bytes is not None and len(value.encode("utf-8")) > max_utf8_bytes:
            raise ValueError(f"{what} must be at most {max_utf8_bytes} bytes of UTF-8")
        check_no_controls(value, what, allowed_controls)
        if no_format:
            check_no_format(value, what)
        if visible:
            check_visible(value, what)
        return value

    return check


def plain_text(what: str, max_chars: int, allowed_controls: frozenset[str]) -> Callable[[str], str]:
    """An untrimmed, possibly empty text (a description): encodable, no stray controls."""

    def check(value: str) -> str:
        check_encodable(value, what)
        if len(value) > max_chars:
            raise ValueError(f"{what} must be at most {max_chars} characters")
        check_no_controls(value, what, allowed_controls)
        return value

    return check


LINE_BREAKS = frozenset("\n\t")
