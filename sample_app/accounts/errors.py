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


class TooManyAttemptsError(SignInError):
    """Too many recent failed sign-ins for this username or from this client.

    Attributes:
        retry_after_seconds: Whole seconds until an attempt would be allowed again (>= 1).
    """

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        if retry_after_seconds < 60:
            wait = f"{retry_after_seconds} second{'s' if retry_after_seconds != 1 else ''}"
        else:
            minutes = math.ceil(retry_after_seconds / 60)
            wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        super().__init__(f"Too many failed sign-in attempts. Try again in {wait}.")
        self.args = (retry_after_seconds,)  # so copies and pickles rebuild correctly
