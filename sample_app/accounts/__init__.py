"""The app's own accounts: registration, sign-in tokens and the sign-in rate limit.

This package decides *who* is signed in. Its bearer credential is the *sign-in token*;
"session token" always means Sendbird's, which the app derives from the `AccountView`
returned here and never from anything the browser claims. The package has no Reflex
dependency, so it can be tested and reused on its own. Its modules:

* `models`: the tables (`Account`, `SignInSession`, `SignInAttempt`) and `AccountView`,
  the only account shape the UI layer should hold (it has no password hash).
* `errors`: the errors shown to the user (`AccountError` and its subclasses) and their
  fixed messages.
* `passwords`: argon2id hashing with injectable cost, and the password policy.
* `validation`: username / display name / profile URL normalisation and messages.
* `rate_limit`: `RateLimit` (the numbers) and `SignInRateLimiter`, which counts sign-in
  attempts per (username, client or device) pair, per client and per username in the
  `sign_in_attempts` table; `RegistrationLimit` / `RegistrationRateLimiter` likewise for
  registrations.
* `service`: `AccountService`, the operations the UI calls.
* `database`: engines and the Alembic migrations (`upgrade_database`), kept apart from
  Reflex's own migration history.
* `seed`: `python -m sample_app.accounts.seed` creates the demo accounts.

Typical wiring::

    engine = create_engine_for(db_url)
    upgrade_database(engine)
    accounts = AccountService(engine)
    signed_in = accounts.sign_in("alice", "sendbird-demo-2026", client_ip)
    account = accounts.resolve_sign_in(signed_in.sign_in_token)
    accounts.sign_out(signed_in.sign_in_token)
"""

from sample_app.accounts.database import (
    create_engine_for,
    current_revision,
    head_revision,
    upgrade_database,
)
from sample_app.accounts.errors import (
    AccountError,
    AccountValidationError,
    RegistrationError,
    SignInError,
    TooManyAttemptsError,
    TooManyRegistrationsError,
)
from sample_app.accounts.models import (
    Account,
    AccountView,
    DeviceToken,
    SignInAttempt,
    SignInSession,
)
from sample_app.accounts.passwords import Argon2Hasher, PasswordCheck, check_password_strength
from sample_app.accounts.rate_limit import (
    RateLimit,
    RegistrationLimit,
    RegistrationRateLimiter,
    SignInRateLimiter,
)
from sample_app.accounts.service import (
    DEFAULT_SESSION_TTL,
    AccountService,
    PruneCounts,
    ResolvedSignIn,
    SignedIn,
    hash_sign_in_token,
    is_plausible_token,
    utc_now,
)
from sample_app.accounts.validation import (
    normalize_username,
    validate_display_name,
    validate_profile_url,
    validate_username,
)

__all__ = [
    "DEFAULT_SESSION_TTL",
    "Account",
    "AccountError",
    "AccountService",
    "AccountValidationError",
    "AccountView",
    "Argon2Hasher",
    "DeviceToken",
    "PasswordCheck",
    "PruneCounts",
    "RateLimit",
    "RegistrationError",
    "RegistrationLimit",
    "RegistrationRateLimiter",
    "ResolvedSignIn",
    "SignInAttempt",
    "SignInError",
    "SignInRateLimiter",
    "SignInSession",
    "SignedIn",
    "TooManyAttemptsError",
    "TooManyRegistrationsError",
    "check_password_strength",
    "create_engine_for",
    "current_revision",
    "hash_sign_in_token",
    "head_revision",
    "is_plausible_token",
    "normalize_username",
    "upgrade_database",
    "utc_now",
    "validate_display_name",
    "validate_profile_url",
    "validate_username",
]
