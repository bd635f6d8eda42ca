"""How every entry point ends (``pipeline/*.py``, ``wsfcn …``): one line naming the bad input, an exit status.

``run_entry(name, body)`` runs ``body() -> int`` and turns :class:`wsfcn.config.ConfigError` into
``<name>: parameter error: …`` with exit status 2 and any :class:`wsfcn.errors.InputError` (a bad
file, id, checkpoint, download, a non-finite loss) or ``OSError`` (a file that cannot be read or
written: the message names it) into ``<name>: …`` with exit status 1; Ctrl-C is ``<name>: interrupted``
with 130. With the environment variable ``WSFCN_DEBUG=1`` these errors are re-raised, so Python prints
the traceback. Any other exception is a bug of wsfcn and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from wsfcn.config import ConfigError
from wsfcn.errors import InputError

DEBUG_VARIABLE = "WSFCN_DEBUG"


def debugging() -> bool:
    """Whether ``WSFCN_DEBUG`` asks for tracebacks (set and not ``0``/``false``/empty)."""
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def one_line(err: BaseException) -> str:
    """The message of ``err`` (its type's name when it has none)."""
    return str(err).strip() or type(err).__name__


def run_entry(name: str, body: Callable[[], int], *, also: tuple[type[BaseException], ...] = ()) -> int:
    """``body()``'s exit status; a parameter error is 2, a bad input (or one of ``also``) is 1."""
    try:
        return int(body() or 0)
    except ConfigError as err:
        if debugging():
            raise
        print(f"{name}: parameter error: {one_line(err)}", file=sys.stderr)
        return 2
    except (InputError, OSError, *also) as err:
        if debugging():
            raise
        print(f"{name}: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debugging():
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
