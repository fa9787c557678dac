"""The error hierarchy. Each class is named for what the caller must do about it."""

from __future__ import annotations


class PiaError(Exception):
    """Base of every error pia raises on purpose."""


class ConfigError(PiaError):
    """The configuration is invalid. Fatal at start: fix the named file and key."""


class StoreError(PiaError):
    """The store cannot be opened or migrated. Fatal: the message says what to check."""


class FeedError(PiaError):
    """A feed failed in a way its loop may retry (back off, then reconnect)."""


class FeedDisconnected(FeedError):
    """The feed's connection dropped; reconnect and backfill the gap."""


class BadData(FeedError):
    """A message or file row failed validation; it is dropped and counted, never published."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class SignalError(PiaError):
    """A signal failed on one bar; that bar is skipped for that signal."""


class AgentError(PiaError):
    """The Layer 2 agent failed; degrade to the rule-based agent."""


class AgentTimeout(AgentError):
    """The agent exceeded its hard timeout and was killed."""


class AgentBadOutput(AgentError):
    """The agent's output did not parse or validate."""


class TradeRejected(PiaError):
    """A proposed trade broke a limit; tell the agent why. Portfolio unchanged."""


class UserFacingError(PiaError):
    """An error whose message is shown to the Telegram user as is."""


class BusClosed(PiaError):
    """Publishing on, or subscribing to, a bus that has been closed."""
