"""The errors an entry point reports as one line instead of a traceback.

Every error that a user's input can cause (a file, an id, a checkpoint, a value) derives from
:class:`InputError` as well as from the builtin it always was (``ValueError``, ``RuntimeError``),
so ``except ValueError`` keeps working while the entry points catch one family: ``InputError``
ends a command with exit status 1, :class:`wsfcn.config.ConfigError` (a parameter) with 2.
"""

from __future__ import annotations


class InputError(Exception):
    """A bad input the user can fix; the message names the file, id, key or value."""


class DataError(InputError, RuntimeError):
    """A prepared dataset that fails its check; the message lists the problems."""


class CheckpointError(InputError, RuntimeError):
    """A checkpoint file that is missing, truncated, not a wsfcn checkpoint, or of other classes."""
