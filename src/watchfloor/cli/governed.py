"""What governance commands need: the store with the deployment's governance, and who acts.

The command line is run by the operator of the machine. Decisions that need a named person
(approving, requesting, revealing) take ``--by USER``, an account in the store whose role
is checked; reads and system chores without ``--by`` are recorded as ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from watchfloor.cli.context import fail, opened_store
from watchfloor.config import Settings
from watchfloor.governance.policy import PolicyError
from watchfloor.governance.service import Governance, GovernanceError


def cli_actor(by: str | None) -> str:
    """The audit log's actor for a command: the named account, or ``cli:<os user>``."""
    if by:
        return by
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@contextmanager
def governed(settings: Settings) -> Iterator[Governance]:
    """The opened store's governance; a refusal or a bad policy is a clean error exit."""
    with opened_store(settings) as store:
        try:
            gov = Governance.open(settings, store)
        except PolicyError as exc:
            raise fail(f"the policy cannot be used: {exc}") from None
        try:
            yield gov
        except GovernanceError as exc:
            raise fail(str(exc)) from None
