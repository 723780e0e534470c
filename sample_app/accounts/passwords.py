"""Password hashing (argon2id) and the password policy for the app's own accounts.

Why argon2id (through argon2-cffi):

* It is a modern password hash designed for exactly this job; argon2-cffi is maintained
  and wraps the reference C implementation.
* It is memory-hard: each guess needs its own block of memory (64 MiB with the default
  profile), which makes GPU and ASIC cracking far more expensive than with CPU-only hashes.
* bcrypt, the usual alternative, silently ignores everything after the 72nd byte of a
  password, so long passphrases lose strength; argon2 uses the whole input.

Costs are parameters, not constants. `Argon2Hasher()` uses argon2-cffi's recommended
profile (`argon2.profiles.RFC_9106_LOW_MEMORY`, about 50-100 ms per hash); tests pass
`argon2.profiles.CHEAPEST` so the suite stays fast. Every hash records its own parameters,
so hashes made with other costs still verify, and `PasswordCheck.needs_rehash` says when a
stored hash should be replaced by one made with the current parameters.

Passwords are NFKC-normalised before hashing and verifying, so the same password typed on
keyboards that produce different Unicode forms matches.

The policy (`check_password_strength`): length matters, and known-bad passwords are
refused, but there are no "one upper-case letter and one symbol" rules, which mostly
produce `Password1!`.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "COMMON_PASSWORDS",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Argon2Hasher",
    "PasswordCheck",
    "check_password_strength",
    "normalize_password",
]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# Shorter "usernames" (half-typed or invalid ones) would match inside almost any password.
_MIN_USERNAME_TO_COMPARE = 3

# A small built-in list of passwords that are long enough for the length rule but are
# among the first any attacker tries. Compared case-insensitively.
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "p@ssword123",
        "p@ssw0rd123",
        "1234567890",
        "12345678910",
        "0123456789",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "asdfghjkl1",
        "asdfghjkl;",
        "zxcvbnm123",
        "letmein123",
        "letmein1234",
        "welcome123",
        "welcome1234",
        "iloveyou123",
        "admin12345",
        "administrator",
        "changeme123",
        "trustno1234",
        "football123",
        "baseball123",
        "sunshine123",
        "princess123",
        "dragon1234",
        "monkey12345",
        "superman123",
        "abc1234567",
        "abcdefghij",
        "abcd123456",
        "aaaaaa1111",
        "1111111111",
        "123123123123",
        "123456789a",
        "a123456789",
        "secret1234",
        "sendbird123",
    }
)


def normalize_password(password: str) -> str:
    """Return the NFKC form of `password`, which is what gets hashed and measured."""
    return unicodedata.normalize("NFKC", password)


def check_password_strength(password: str, username: str = "") -> list[str]:
    """List the problems with `password` as sentences for the form; empty when it is fine.

    Args:
        password: The proposed password, as typed.
        username: The username it is for (normalised or not); a password containing it is
            refused, because it is the first thing an attacker tries. Usernames shorter
            than 3 characters are not compared.

    Returns:
        Every problem found, in a stable order (an empty list means acceptable).
    """
    if not password:
        return ["Enter a password."]
    normalized = normalize_password(password)
    lowered = normalized.casefold()
    problems: list[str] = []
    if len(normalized) < MIN_PASSWORD_LENGTH:
        problems.append(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(normalized) > MAX_PASSWORD_LENGTH:
        problems.append(f"Password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    user = unicodedata.normalize("NFKC", username).strip().casefold()
    if len(user) >= _MIN_USERNAME_TO_COMPARE and user in lowered:
        problems.append("Password must not contain your username.")
    if len(set(normalized)) == 1:
        problems.append("Password must not be one character repeated.")
    if lowered in COMMON_PASSWORDS:
        problems.append("That password is too common; choose one that is harder to guess.")
    return problems


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of checking a password against a stored hash.

    Attributes:
        matches: Whether the password is right.
        needs_rehash: Whether the stored hash was made with other parameters than the
            hasher's current ones and should be replaced (only meaningful when `matches`).
    """

    matches: bool
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.matches


class Argon2Hasher:
    """Hashes and verifies passwords with argon2id at configurable cost.

    Args:
        parameters: The argon2 cost parameters; `None` means argon2-cffi's recommended
            profile (`argon2.profiles.RFC_9106_LOW_MEMORY`). Tests pass
            `argon2.profiles.CHEAPEST`; production should keep the default.
    """

    def __init__(self, parameters: argon2.Parameters | None = None) -> None:
        self._hasher = argon2.PasswordHasher.from_parameters(
            parameters or argon2.profiles.RFC_9106_LOW_MEMORY
        )
        self._dummy_hash: str | None = None

    def hash_password(self, password: str) -> str:
        """Return an argon2id hash of `password` (with a fresh random salt)."""
        return self._hasher.hash(normalize_password(password))

    def verify_password(self, password_hash: str, password: str) -> PasswordCheck:
        """Check `password` against `password_hash` and say whether to rehash it.

        A malformed or foreign hash is a mismatch, never an exception: a corrupt row must
        not turn a sign-in into a server error.

        Returns:
            A `PasswordCheck`, truthy exactly when the password matches (so it reads as a
            bool in `if`), whose `needs_rehash` says to store `hash_password(password)`.
        """
        try:
            self._hasher.verify(password_hash, normalize_password(password))
        except (VerificationError, InvalidHashError):
            return PasswordCheck(matches=False)
        return PasswordCheck(matches=True, needs_rehash=self.needs_rehash(password_hash))

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether `password_hash` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def burn_verify(self, password: str) -> None:
        """Spend the time a real verification takes, for a user that does not exist.

        Without it, "no such user" would answer in microseconds and "wrong password" in
        tens of milliseconds, and an attacker could list valid usernames by timing.
        """
        if self._dummy_hash is None:
            self._dummy_hash = self.hash_password(secrets.token_urlsafe(16))
        self.verify_password(self._dummy_hash, password)
