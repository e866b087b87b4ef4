"""Sign-in throttling: password guessing is limited per email and per source
address, and password hashing (argon2: ~190 ms and 64 MiB each) is limited to
a few at a time, so a crowd of attempts can't take the machine.

Failures are counted in the database, so every server sees the same counts:
``limit`` failures within ``window`` lock that email (or address) for
``lockout``; while locked, attempts are refused before any hashing. A
successful sign-in clears its email's count (not its address's: one address
may be trying many emails).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from didhub import clock
from didhub.accounts.models import SignInFailures
from didhub.errors import TooManyRequests


@dataclass(frozen=True)
class Policy:
    limit: int
    window: timedelta
    lockout: timedelta


EMAIL = Policy(limit=5, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
ADDRESS = Policy(limit=20, window=timedelta(minutes=15), lockout=timedelta(minutes=15))


def _keys(email: str, address: str | None) -> list[tuple[str, Policy, str]]:
    keys = [(f"email:{email.strip().lower()}", EMAIL, "for this email")]
    if address:
        keys.append((f"address:{address}", ADDRESS, "from your network address"))
    return keys


def _minutes(delta: timedelta) -> int:
    return max(1, -(-int(delta.total_seconds()) // 60))


def check(session: Session, email: str, address: str | None) -> None:
    """429 while the email or the address is locked out."""
    now = clock.now()
    for key, _, whose in _keys(email, address):
        row = session.get(SignInFailures, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = row.locked_until - now
            raise TooManyRequests(
                f"too many failed sign-ins {whose}; try again in {_minutes(wait)} minute(s)",
                retry_after=int(wait.total_seconds()) + 1,
                field="email",
            )


def failed(session: Session, email: str, address: str | None) -> None:
    now = clock.now()
    for key, policy, _ in _keys(email, address):
        row = session.get(SignInFailures, key, with_for_update=True)
        if row is None:
            session.add(SignInFailures(key=key, failures=1, window_started_at=now))
            continue
        if now - row.window_started_at > policy.window:
            row.failures, row.window_started_at, row.locked_until = 1, now, None
            continue
        row.failures += 1
        if row.failures >= policy.limit:
            row.locked_until = now + policy.lockout


def succeeded(session: Session, email: str) -> None:
    session.execute(
        delete(SignInFailures).where(SignInFailures.key == f"email:{email.strip().lower()}")
    )


class HashingSlots:
    """At most ``size`` password hashes at a time in this process; a caller
    that can't get a slot within ``wait`` seconds is told to retry."""

    def __init__(self, size: int, wait: float = 5.0) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._wait = wait

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._wait):
            raise TooManyRequests(
                "too many sign-ins at once; try again in a few seconds", retry_after=5
            )
        try:
            yield
        finally:
            self._slots.release()
