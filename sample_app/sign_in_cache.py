"""A per-process cache of resolved sign-ins, so the hot path skips the database.

Every event and API call that touches Sendbird session tokens checks the browser's sign-in
token, and the widget's token refresh checks it twice (before and after issuing). Asking the
database each time is a query plus a thread hop per check (6-13 % of a worker's CPU under
load). `SignInCache` keeps a sign-in that resolved for `DEFAULT_TTL` at most, and never past
the sign-in's own expiry, keyed by the token's SHA-256 (the token itself is not kept). A
check it can answer costs no database call and no thread; with Redis, one GET.

It is as safe as asking the database every time:

* Only sign-ins that resolved are kept. An unknown, expired or revoked token always goes to
  the database, so a flood of made-up tokens costs what it did before (plus one Redis GET
  each, with Redis) and can neither grow the cache nor push real sign-ins out of it (and
  tokens of the wrong shape are refused before hashing). Size is bounded (least recently
  used go first).
* Every sign-out goes through `sign_out` / `sign_out_everywhere` here: this process's copy
  is dropped, then the database revokes, then every worker is told, before the caller
  revokes any Sendbird token; a caller that gives up mid-way does not stop the rest. A check
  that was asking the database while a sign-out landed does not keep its (possibly older)
  answer.
* Several workers each have a cache. A sign-out bumps its account's *sign-in generation* in
  Redis (`SignInGenerations`); a kept sign-in answers only while one GET shows the
  generation it was kept with. The account is only known once the database has answered,
  so what is read before asking it is the *sign-out epoch* (bumped with every generation):
  a sign-in is kept only if the epoch did not move while the database answered, which
  proves the generation read afterwards is the one from before. If Redis does not answer,
  the database decides and nothing is kept: never the cache alone.
* What changes in the database by other means (an operator revoking a sign-in or disabling
  an account in SQL) is seen within the TTL.

Times come from the accounts service's clock (`AccountService.now`), the one that wrote the
sign-in's `expires_at`, so the two are never compared across clocks (and tests move one
fake clock for both). The cache belongs to one event loop and is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sample_app.accounts import AccountService, AccountView, hash_sign_in_token, is_plausible_token

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "SignInCache",
    "SignInGenerations",
    "SignInGenerationsUnavailableError",
]

logger = logging.getLogger(__name__)

#: How long a resolved sign-in answers without the database: how late a sign-in revoked
#: in SQL (not through `SignInCache`) or an account disabled there is noticed. Each tab's
#: kept sign-in is asked for again once per TTL, a query through a thread: with 1,000
#: open tabs, 10 s meant 100 queries a second, a fifth of the worker's throughput
#: (`benchmarks.capacity`, N=1000: 434-445 against 506-569 answers/s with 60 s); 30 s
#: is 33 a second (3-7 % of a core at 1 to 2 ms each).
DEFAULT_TTL = timedelta(seconds=30)
#: Sign-ins kept per process; beyond, the least recently used is dropped (and asked again).
DEFAULT_MAX_ENTRIES = 10_000


class SignInGenerationsUnavailableError(Exception):
    """The shared generations (Redis) did not answer; the database decides instead."""


class SignInGenerations(Protocol):
    """Counters every worker shares, so a sign-out in one reaches the others' caches.

    Implementations raise `SignInGenerationsUnavailableError` when they cannot answer.
    """

    async def epoch(self) -> int:
        """How many times any account's generation has been bumped (0 at first)."""
        ...

    async def generation(self, account_id: int) -> int:
        """The account's generation (0 until its first sign-out)."""
        ...

    async def generation_and_epoch(self, account_id: int) -> tuple[int, int]:
        """The account's generation and the epoch, read at one instant."""
        ...

    async def bump(self, account_id: int) -> None:
        """Bump the account's generation and the epoch together (after a sign-out)."""
        ...


@dataclass(frozen=True, slots=True)
class _Kept:
    """A resolved sign-in: whose, until when it may answer, and its generation then."""

    account: AccountView
    usable_until: datetime
    generation: int | None  # None without shared generations (one process)


class SignInCache:
    """Resolved sign-ins of this process, and the sign-outs that must forget them.

    Args:
        ttl: How long a resolved sign-in answers without the database; 0 turns the cache
            off (every check asks the database; sign-outs still bump the generations).
        max_entries: How many sign-ins are kept at most.
        generations: The counters shared with the other workers (Redis); None when this
            process is the only one.

    Raises:
        ValueError: `ttl` is negative or `max_entries` is not positive.
    """

    def __init__(
        self,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        generations: SignInGenerations | None = None,
    ) -> None:
        if ttl < timedelta(0):
            raise ValueError("ttl must not be negative")
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._ttl = ttl
        self._max_entries = max_entries
        self._generations = generations
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        # Sign-outs in this process so far: a resolve that saw it change keeps nothing.
        self._sign_outs = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def shares_sign_outs(self) -> bool:
        """Whether sign-outs reach other workers' caches (shared generations are set)."""
        return self._generations is not None

    @property
    def ttl(self) -> timedelta:
        """How long a resolved sign-in answers without the database (0: never)."""
        return self._ttl

    async def resolve(self, accounts: AccountService, sign_in_token: str) -> AccountView | None:
        """The account whose sign-in `sign_in_token` is, if that sign-in is still valid.

        Args:
            accounts: The accounts service (the truth, and the clock).
            sign_in_token: The browser's sign-in token.

        Returns:
            The account, or None as `AccountService.resolve_sign_in` would say.
        """
        if not is_plausible_token(sign_in_token):
            return None  # what the database would answer, without asking it
        if self._ttl == timedelta(0):  # turned off
            return await asyncio.to_thread(accounts.resolve_sign_in, sign_in_token)
        key = hash_sign_in_token(sign_in_token)
        kept = self._kept.get(key)
        if kept is not None:
            try:
                usable = await self._usable(accounts, kept)
            except SignInGenerationsUnavailableError:
                self._drop(key, kept)
                return await asyncio.to_thread(accounts.resolve_sign_in, sign_in_token)
            if usable and self._kept.get(key) is kept:  # no sign-out here while we asked
                self._kept.move_to_end(key)
                return kept.account
            self._drop(key, kept)
        return await self._resolve_and_keep(accounts, sign_in_token, key)

    async def sign_out(self, accounts: AccountService, sign_in_token: str) -> AccountView | None:
        """End one sign-in (`AccountService.sign_out`), then forget it in every worker.

        Returns:
            What `AccountService.sign_out` returned: whose sign-in it was, or None.
        """
        # Forgotten here first, and the rest shielded: a caller cancelled mid-way (its event
        # or request gone) must not leave a sign-in revoked in the database but still kept.
        self._forget_token(sign_in_token)
        return await asyncio.shield(self._end_sign_in(accounts, sign_in_token))

    async def _end_sign_in(
        self, accounts: AccountService, sign_in_token: str
    ) -> AccountView | None:
        account = await asyncio.to_thread(accounts.sign_out, sign_in_token)
        self._forget_token(sign_in_token)  # and again: a resolve may have kept it meanwhile
        if account is not None:
            await self._bump(account.id)
        return account

    def _forget_token(self, sign_in_token: str) -> None:
        self._sign_outs += 1
        if is_plausible_token(sign_in_token):
            self._kept.pop(hash_sign_in_token(sign_in_token), None)

    async def sign_out_everywhere(self, accounts: AccountService, account_id: int) -> int:
        """End every sign-in of an account (`AccountService.sign_out_everywhere`) everywhere.

        Returns:
            How many sign-in sessions were revoked.
        """
        self._forget_account(account_id)
        return await asyncio.shield(self._end_every_sign_in(accounts, account_id))

    async def _end_every_sign_in(self, accounts: AccountService, account_id: int) -> int:
        revoked = await asyncio.to_thread(accounts.sign_out_everywhere, account_id)
        self._forget_account(account_id)
        await self._bump(account_id)
        return revoked

    def _forget_account(self, account_id: int) -> None:
        self._sign_outs += 1
        for key in [key for key, kept in self._kept.items() if kept.account.id == account_id]:
            del self._kept[key]

    async def _usable(self, accounts: AccountService, kept: _Kept) -> bool:
        """Whether a kept sign-in may answer: in time, and not signed out in another worker.

        Raises:
            SignInGenerationsUnavailableError: Redis did not answer.
        """
        if accounts.now() >= kept.usable_until:
            return False
        if self._generations is None:
            return True
        return await self._generations.generation(kept.account.id) == kept.generation

    async def _resolve_and_keep(
        self, accounts: AccountService, sign_in_token: str, key: str
    ) -> AccountView | None:
        """Ask the database, and keep a positive answer unless a sign-out may have raced it."""
        sign_outs = self._sign_outs
        epoch: int | None = None
        if self._generations is not None:
            try:
                epoch = await self._generations.epoch()
            except SignInGenerationsUnavailableError:
                return await asyncio.to_thread(accounts.resolve_sign_in, sign_in_token)
        asked_at = accounts.now()
        resolved = await asyncio.to_thread(accounts.resolve_sign_in_session, sign_in_token)
        if resolved is None:
            return None
        account = resolved.account
        generation: int | None = None
        if self._generations is not None:
            try:
                generation, epoch_after = await self._generations.generation_and_epoch(account.id)
            except SignInGenerationsUnavailableError:
                return account
            if epoch_after != epoch:
                return account  # someone signed out meanwhile: maybe this very sign-in
        if self._sign_outs != sign_outs:
            return account  # the same, for a sign-out in this process
        usable_until = min(asked_at + self._ttl, resolved.expires_at)
        self._kept[key] = _Kept(account, usable_until, generation)
        self._kept.move_to_end(key)
        while len(self._kept) > self._max_entries:
            self._kept.popitem(last=False)
        return account

    def _drop(self, key: str, kept: _Kept) -> None:
        """Forget `kept`, unless another resolve has replaced it meanwhile."""
        if self._kept.get(key) is kept:
            del self._kept[key]

    async def _bump(self, account_id: int) -> None:
        """Tell the other workers' caches that the account has signed out."""
        if self._generations is None:
            return
        try:
            await self._generations.bump(account_id)
        except SignInGenerationsUnavailableError as error:
            # The sign-out stands (the database has it); workers that still reach Redis may
            # accept the sign-in until their kept copy's TTL ends.
            logger.warning(
                "account %s signed out, but the other workers' sign-in caches could not be "
                "told (%s); they may accept its sign-in for up to %.0f s more",
                account_id,
                error,
                self._ttl.total_seconds(),
            )
