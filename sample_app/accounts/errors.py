"""The errors the accounts package raises for the UI to show, and their fixed messages.

Every error is an `AccountError`. Form errors (`AccountValidationError` and its
`RegistrationError`) carry their problems per field; sign-in errors carry one message for
the whole form. All of them survive `copy` and `pickle` (their `args` are what their
constructors take), so they can cross thread and process boundaries intact.

Wrong passwords and unknown usernames share `WRONG_CREDENTIALS_MESSAGE`, so the wording
never reveals which usernames exist.
"""

from __future__ import annotations

import math

__all__ = [
    "ACCOUNT_DISABLED_MESSAGE",
    "USERNAME_TAKEN_MESSAGE",
    "WRONG_CREDENTIALS_MESSAGE",
    "AccountError",
    "AccountValidationError",
    "RegistrationError",
    "SignInError",
    "TooManyAttemptsError",
    "TooManyRegistrationsError",
]

WRONG_CREDENTIALS_MESSAGE = "Wrong username or password."
ACCOUNT_DISABLED_MESSAGE = "This account has been disabled."
USERNAME_TAKEN_MESSAGE = "That username is taken."


class AccountError(Exception):
    """Base of the errors the accounts package raises for the UI to show."""


class AccountValidationError(AccountError):
    """Some fields of an account form are invalid.

    Attributes:
        field_errors: Problems per field ("username", "password", "display_name",
            "profile_url"), each a sentence to show under that field.
    """

    def __init__(self, field_errors: dict[str, list[str]]) -> None:
        self.field_errors = {name: list(problems) for name, problems in field_errors.items()}
        # args are the constructor's arguments, so copies and pickles rebuild correctly.
        super().__init__(self.field_errors)

    def __str__(self) -> str:
        return " ".join(problem for problems in self.field_errors.values() for problem in problems)


class RegistrationError(AccountValidationError):
    """The account could not be created; `field_errors` says why, per field."""


class SignInError(AccountError):
    """The sign-in was refused; `str(error)` is the message to show.

    Attributes:
        message: The message to show on the sign-in form.
    """

    def __init__(self, message: str = WRONG_CREDENTIALS_MESSAGE) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


def _wait_text(seconds: int) -> str:
    """Say how long to wait in seconds under a minute, else in whole minutes (rounded up)."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class TooManyAttemptsError(SignInError):
    """Too many recent failed sign-ins for this username or from this client.

    Attributes:
        retry_after_seconds: Whole seconds until an attempt would be allowed again (>= 1).
    """

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        wait = _wait_text(retry_after_seconds)
        super().__init__(f"Too many failed sign-in attempts. Try again in {wait}.")
        self.args = (retry_after_seconds,)  # so copies and pickles rebuild correctly


class TooManyRegistrationsError(AccountError):
    """Too many new accounts from this client, or from everyone, just now.

    Raised before the password is hashed, so refused registrations cost no hashing time.

    Attributes:
        retry_after_seconds: Whole seconds until a registration would be allowed (>= 1).
        per_client: Whether this client's own limit refused it (else the overall one).
        message: The message to show on the registration form.
    """

    def __init__(self, retry_after_seconds: int, per_client: bool) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.per_client = per_client
        who = "from your network" if per_client else "are being created right now"
        self.message = (
            f"Too many new accounts {who}. Try again in {_wait_text(retry_after_seconds)}."
        )
        super().__init__(retry_after_seconds, per_client)

    def __str__(self) -> str:
        return self.message
