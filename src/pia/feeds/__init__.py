"""Market data feeds: each source behind one contract (:mod:`pia.feeds.base`)."""
