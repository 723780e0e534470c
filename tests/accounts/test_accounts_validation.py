"""Normalisation and form messages for usernames, display names and profile URLs."""

from __future__ import annotations

import pytest

from sample_app.accounts import (
    normalize_username,
    validate_display_name,
    validate_profile_url,
    validate_username,
)

FORMAT = "Username must be 3 to 32 characters: letters, digits, '.', '_' or '-'."
START = "Username must start with a letter or a digit."


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice", "alice"),
        ("  Alice  ", "alice"),
        ("ALICE.Example_1-x", "alice.example_1-x"),
        ("\uff21\uff4c\uff49\uff43\uff45", "alice"),  # full-width letters
        ("\u212aate", "kate"),  # KELVIN SIGN
        ("\u2460\u2461\u2462abc", "123abc"),  # circled digits
    ],
)
def test_usernames_are_normalised(raw: str, normalised: str) -> None:
    assert normalize_username(raw) == normalised
    assert validate_username(raw) == (normalised, [])


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ("", ["Enter a username."]),
        ("   ", ["Enter a username."]),
        ("ab", [FORMAT]),
        ("a" * 33, [FORMAT]),
        ("has space", [FORMAT]),
        ("émile", [FORMAT]),
        ("\uff21\uff4c\uff49\uff43\uff45!", [FORMAT]),  # full-width, then "!"
        ("al\u200bice", [FORMAT]),  # zero-width space
        ("_alice", [START]),
        (".alice", [START]),
        ("-a", [FORMAT, START]),
    ],
)
def test_username_problems(raw: str, problems: list[str]) -> None:
    assert validate_username(raw)[1] == problems


def test_username_length_boundaries() -> None:
    assert validate_username("abc")[1] == []
    assert validate_username("a" * 32)[1] == []


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Alice Example", "Alice Example"),
        ("  Alice   Example  ", "Alice Example"),
        ("Alice\tExample\n", "Alice Example"),
        ("Zoë 🦊", "Zoë 🦊"),
        ("Zoe\u0308", "Zoë"),  # combining diaeresis composed by NFC
        ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),  # ZWJ emoji stays
        ("x" * 80, "x" * 80),
    ],
)
def test_display_names_are_cleaned(raw: str, clean: str) -> None:
    assert validate_display_name(raw) == (clean, [])


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ("", ["Enter a display name."]),
        (" \t\n ", ["Enter a display name."]),
        ("x" * 81, ["Display name must be at most 80 characters."]),
        ("Bell\x07", ["Display name must not contain control or invisible characters."]),
        ("Nul\x00l", ["Display name must not contain control or invisible characters."]),
        ("evil\u202egnp.exe", ["Display name must not contain control or invisible characters."]),
        ("in\u200bvisible", ["Display name must not contain control or invisible characters."]),
        ("private\ue000", ["Display name must not contain control or invisible characters."]),
    ],
)
def test_display_name_problems(raw: str, problems: list[str]) -> None:
    assert validate_display_name(raw)[1] == problems


def test_overlong_display_name_with_control_characters_lists_both() -> None:
    assert validate_display_name("x" * 81 + "\x1b")[1] == [
        "Display name must be at most 80 characters.",
        "Display name must not contain control or invisible characters.",
    ]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", None),
        ("   ", None),
        (None, None),
        ("https://example.com/me.png", "https://example.com/me.png"),
        ("  http://example.com:8080/a?b=c#d  ", "http://example.com:8080/a?b=c#d"),
        ("HTTPS://EXAMPLE.COM/x", "HTTPS://EXAMPLE.COM/x"),
        ("https://example.com/" + "a" * (2048 - 20), "https://example.com/" + "a" * 2028),
    ],
)
def test_valid_profile_urls(raw: str | None, clean: str | None) -> None:
    assert validate_profile_url(raw) == (clean, [])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("javascript:alert(1)", "Profile URL must start with http:// or https://."),
        ("data:image/png;base64,AAAA", "Profile URL must start with http:// or https://."),
        ("ftp://example.com/me.png", "Profile URL must start with http:// or https://."),
        ("example.com/me.png", "Profile URL must start with http:// or https://."),
        ("//example.com/me.png", "Profile URL must start with http:// or https://."),
        ("https://", "Profile URL must include a host name, as in https://example.com/me.png."),
        (
            "https:///me.png",
            "Profile URL must include a host name, as in https://example.com/me.png.",
        ),
        ("https://example.com/a b", "Profile URL must not contain spaces or control characters."),
        ("https://example.com/\x00", "Profile URL must not contain spaces or control characters."),
        ("https://user:pw@example.com/", "Profile URL must not contain a user name or password."),
        ("https://example.com:99999/", "Profile URL is not a valid web address."),
        ("https://[::1/", "Profile URL is not a valid web address."),
        ("https://example.com/" + "a" * 2029, "Profile URL must be at most 2048 characters."),
    ],
)
def test_profile_url_problems(raw: str, problem: str) -> None:
    assert validate_profile_url(raw)[1] == [problem]
