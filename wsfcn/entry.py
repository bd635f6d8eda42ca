"""How every entry point ends (``pipeline/*.py``, ``wsfcn …``): one line naming the bad input, an exit status.

``run_entry(name, body)`` runs ``body() -> int`` and turns :class:`wsfcn.config.ConfigError` into
``<name>: parameter error: …`` with exit status 2 and any :class:`wsfcn.errors.InputError` (a bad
file, id, checkpoint, download, a non-finite loss) into ``<name>: …`` with exit status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from wsfcn.config import ConfigError
from wsfcn.errors import InputError


def run_entry(name: str, body: Callable[[], int], *, also: tuple[type[BaseException], ...] = ()) -> int:
    """``body()``'s exit status; a parameter error is 2, a bad input (or one of ``also``) is 1."""
    try:
        return int(body() or 0)
    except ConfigError as err:
        print(f"{name}: parameter error: {err}", file=sys.stderr)
        return 2
    except (InputError, FileNotFoundError, *also) as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 1
