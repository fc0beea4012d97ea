"""Command handlers by concern: money in and out (accounts), settings, orders and fills, and the
market (marks, funding). Each takes a :class:`~crossmargin.app.decision.Decision` and its typed
command, emits events or raises a rejection; ``app.decide`` holds the one dispatch table."""
