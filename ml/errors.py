"""The one exception type of the `ml` package; subclasses say which stage failed.

Messages carry the context a user needs (file, key, parameter). Command-line entry points
catch `MLError`, print its message and exit with status 2.
"""

from collections.abc import Callable
from typing import Any


class MLError(Exception):
    """Base of every error `ml` raises on purpose."""


def exit_on_error(prog: str, func: Callable[..., int], *args: Any, **kwargs: Any) -> int:
    """Run a command's main body; turn an MLError into a one-line message and status 2."""
    import sys

    try:
        return int(func(*args, **kwargs))
    except MLError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
