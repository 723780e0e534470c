"""argon2id hashing with injectable cost, and the password policy."""

from __future__ import annotations

import dataclasses

import argon2
import pytest

from sample_app.accounts import Argon2Hasher, PasswordCheck, check_password_strength
from sample_app.accounts.passwords import COMMON_PASSWORDS, MIN_PASSWORD_LENGTH

PASSWORD = "a long passphrase"


def test_round_trip_with_cheap_parameters(hasher: Argon2Hasher) -> None:
    stored = hasher.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert "m=8,t=1,p=1" in stored
    assert PASSWORD not in stored
    check = hasher.verify_password(stored, PASSWORD)
    assert check == PasswordCheck(matches=True, needs_rehash=False)
    assert check


def test_every_hash_is_salted(hasher: Argon2Hasher) -> None:
    assert hasher.hash_password(PASSWORD) != hasher.hash_password(PASSWORD)


def test_wrong_password_does_not_match(hasher: Argon2Hasher) -> None:
    stored = hasher.hash_password(PASSWORD)
    check = hasher.verify_password(stored, PASSWORD + "!")
    assert not check
    assert check.matches is False


@pytest.mark.parametrize("stored", ["", "not a hash", "$2b$12$bcryptbcryptbcryptbcrypt"])
def test_malformed_hash_is_a_mismatch_not_an_error(hasher: Argon2Hasher, stored: str) -> None:
    assert not hasher.verify_password(stored, PASSWORD)


def test_hash_made_with_other_parameters_verifies_and_asks_for_a_rehash(
    hasher: Argon2Hasher,
) -> None:
    stronger = Argon2Hasher(dataclasses.replace(argon2.profiles.CHEAPEST, time_cost=2))
    old = hasher.hash_password(PASSWORD)
    check = stronger.verify_password(old, PASSWORD)
    assert check == PasswordCheck(matches=True, needs_rehash=True)
    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(stronger.hash_password(PASSWORD))


def test_passwords_are_nfkc_normalised(hasher: Argon2Hasher) -> None:
    # U+FB01 LATIN SMALL LIGATURE FI is NFKC-equivalent to "fi".
    stored = hasher.hash_password("\ufb01ne passphrase")
    assert hasher.verify_password(stored, "fine passphrase")


def test_burn_verify_runs_a_real_verification(
    hasher: Argon2Hasher, verified_passwords: list[str]
) -> None:
    hasher.burn_verify("guess")
    assert verified_passwords == ["guess"]


def test_default_cost_is_the_librarys_recommended_profile() -> None:
    stored = Argon2Hasher().hash_password(PASSWORD)
    assert argon2.extract_parameters(stored) == argon2.profiles.RFC_9106_LOW_MEMORY


# -- policy -----------------------------------------------------------------------------


def test_a_good_password_has_no_problems() -> None:
    assert check_password_strength("sendbird-demo-2026", "alice") == []


@pytest.mark.parametrize(
    ("password", "username", "expected"),
    [
        ("", "alice", ["Enter a password."]),
        ("short1", "alice", [f"Password must be at least {MIN_PASSWORD_LENGTH} characters long."]),
        ("x" * 200 + "y" * 57, "", ["Password must be at most 256 characters long."]),
        ("my-alice-password", "alice", ["Password must not contain your username."]),
        ("ALICE-example", "Alice", ["Password must not contain your username."]),
        ("zzzzzzzzzzzz", "", ["Password must not be one character repeated."]),
        ("Password123", "", ["That password is too common; choose one that is harder to guess."]),
        ("1234567890", "bob", ["That password is too common; choose one that is harder to guess."]),
        ("qwertyuiop", "", ["That password is too common; choose one that is harder to guess."]),
        ("letmein123", "", ["That password is too common; choose one that is harder to guess."]),
    ],
)
def test_policy_messages(password: str, username: str, expected: list[str]) -> None:
    assert check_password_strength(password, username) == expected


def test_policy_lists_every_problem_at_once() -> None:
    assert check_password_strength("aaa", "aaa") == [
        f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.",
        "Password must not contain your username.",
        "Password must not be one character repeated.",
    ]


def test_password_equal_to_the_username_is_refused() -> None:
    assert "Password must not contain your username." in check_password_strength(
        "longusername", "longusername"
    )


def test_very_short_usernames_do_not_poison_every_password() -> None:
    assert check_password_strength("a perfectly fine one", "a") == []


def test_length_is_counted_in_characters_not_bytes() -> None:
    assert check_password_strength("ääääääääää-ö", "") == []
    assert check_password_strength("🔒" * 9, "") == [
        f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.",
        "Password must not be one character repeated.",
    ]


def test_common_list_is_lower_case_and_long_enough_to_matter() -> None:
    assert all(word == word.lower() for word in COMMON_PASSWORDS)
    assert sum(len(word) >= MIN_PASSWORD_LENGTH for word in COMMON_PASSWORDS) >= 30
