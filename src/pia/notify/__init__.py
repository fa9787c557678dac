"""Notifiers: how pia tells people what changed (the console now; Telegram in a later issue)."""
