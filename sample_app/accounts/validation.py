"""Normalise and check what people type into the account forms.

Every check returns the cleaned value together with a list of problems, each a complete
sentence that can be shown under the form field as is. Collecting problems instead of
raising at the first one lets the form show everything wrong in one round trip.

Usernames are normalised with NFKC and lower-cased before they are checked or stored:
`Alice`, `ALICE` and a full-width `Alice` are the same name, so nobody can register a
look-alike of an existing account. Only ASCII letters, digits and `. _ -` are allowed
afterwards, which also keeps the Sendbird side and logs free of confusable characters.

Display names are free text (they become the Sendbird nickname) but must not carry
control or invisible formatting characters (for example right-to-left overrides, which
can make a name render as something else). Runs of whitespace, including tabs and line
breaks, are collapsed to one space rather than refused, since that is what the person
meant. Profile URLs must be absolute http(s) URLs: anything else (`javascript:`, `data:`)
could turn an avatar into a script.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from sample_app.accounts.models import (
    DISPLAY_NAME_MAX_LENGTH,
    PROFILE_URL_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
)

__all__ = [
    "USERNAME_MIN_LENGTH",
    "normalize_username",
    "validate_display_name",
    "validate_profile_url",
    "validate_username",
]

USERNAME_MIN_LENGTH = 3
_USERNAME_RE = re.compile(r"[a-z0-9_.-]+")
_ZERO_WIDTH_JOINER = "\u200d"  # joins emoji sequences such as family emoji
_TAG_CHARACTERS = range(0xE0020, 0xE0080)  # used by subdivision flag emoji

USERNAME_FORMAT_MESSAGE = (
    f"Username must be {USERNAME_MIN_LENGTH} to {USERNAME_MAX_LENGTH} characters: "
    "letters, digits, '.', '_' or '-'."
)


def normalize_username(raw: str) -> str:
    """Return the stored form of a username: NFKC, surrounding spaces removed, lower-case.

    Used both when registering and when signing in, so the two always agree.
    """
    return unicodedata.normalize("NFKC", raw).strip().lower()


def validate_username(raw: str) -> tuple[str, list[str]]:
    """Normalise a username and list what is wrong with it.

    Returns:
        The normalised username and the problems (empty when valid).
    """
    username = normalize_username(raw)
    if not username:
        return username, ["Enter a username."]
    problems: list[str] = []
    if not (
        USERNAME_MIN_LENGTH <= len(username) <= USERNAME_MAX_LENGTH
        and username.isascii()
        and _USERNAME_RE.fullmatch(username)
    ):
        problems.append(USERNAME_FORMAT_MESSAGE)
    if username[0] in "._-":
        problems.append("Username must start with a letter or a digit.")
    return username, problems


def _is_disallowed_character(char: str) -> bool:
    """Whether `char` is a control, formatting, private-use or unassigned character."""
    category = unicodedata.category(char)
    if category == "Cf":
        return char != _ZERO_WIDTH_JOINER and ord(char) not in _TAG_CHARACTERS
    return category in {"Cc", "Cs", "Co", "Cn"}


def validate_display_name(raw: str) -> tuple[str, list[str]]:
    """Clean a display name (NFC, trimmed, inner whitespace collapsed) and list problems.

    Returns:
        The cleaned display name and the problems (empty when valid).
    """
    # Whitespace first: tabs and line breaks are whitespace to collapse, not errors.
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        return name, ["Enter a display name."]
    problems: list[str] = []
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        problems.append(f"Display name must be at most {DISPLAY_NAME_MAX_LENGTH} characters.")
    if any(_is_disallowed_character(char) for char in name):
        problems.append("Display name must not contain control or invisible characters.")
    return name, problems


def validate_profile_url(raw: str | None) -> tuple[str | None, list[str]]:
    """Check an optional profile (avatar) URL.

    Returns:
        The trimmed URL, or None when none was given, and the problems (empty when valid).
    """
    url = (raw or "").strip()
    if not url:
        return None, []
    if len(url) > PROFILE_URL_MAX_LENGTH:
        return url, [f"Profile URL must be at most {PROFILE_URL_MAX_LENGTH} characters."]
    if any(char.isspace() or _is_disallowed_character(char) for char in url):
        return url, ["Profile URL must not contain spaces or control characters."]
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return url, ["Profile URL is not a valid web address."]
    if parts.scheme.lower() not in {"http", "https"}:
        return url, ["Profile URL must start with http:// or https://."]
    if not parts.hostname:
        return url, ["Profile URL must include a host name, as in https://example.com/me.png."]
    if parts.username is not None or parts.password is not None:
        return url, ["Profile URL must not contain a user name or password."]
    return url, []
