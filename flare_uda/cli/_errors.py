"""One line and an exit code for every error that reaches the command line.

Exit codes
----------
0  success.
1  runtime: the command line was fine, but an input's content or the work
   failed (an unreadable, truncated or non-3D file, NaN voxels, a sheared
   grid, a model folder with missing or mismatched files, out of memory).
2  usage: the command line itself is wrong (an unknown option or value, a
   path that does not exist or is of the wrong kind, an output that is not
   writable, would overwrite an input, or is not empty without --overwrite,
   a device this machine does not have). Raised as ``click.UsageError``.

Library code raises ``ValueError``/``TypeError``/``OSError``... with a
message that says what was expected and what arrived; :func:`one_line_error`
turns it into ``Error: <message>`` on stderr, without a traceback. Set
``FLARE_UDA_DEBUG=1`` to get the traceback instead.
"""

from __future__ import annotations

import os
import sys

import click

EXIT_RUNTIME = 1
EXIT_USAGE = 2
DEBUG_ENV = "FLARE_UDA_DEBUG"
MAX_MESSAGE = 2000
"""Longest message shown (torch's state-dict errors list every tensor)."""


class RuntimeFailure(click.ClickException):
    """A runtime error (exit code 1) shown as one ``Error: ...`` line."""

    exit_code = EXIT_RUNTIME


def message_of(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])  # str(KeyError) adds quotes
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"cannot access {err.filename}: {err.strerror}"
    if isinstance(err, MemoryError):
        return f"out of memory ({err or 'no details'}); expected a smaller input or more memory"
    return str(err) or type(err).__name__


KNOWN = (ValueError, TypeError, LookupError, OSError, RuntimeError, MemoryError, EOFError)
"""Exceptions whose messages are written for users; anything else is a bug of ours."""


def one_line_error(err: BaseException) -> click.ClickException:
    """The :class:`click.ClickException` that reports ``err`` in one line (exit code 1)."""
    text = " ".join(message_of(err).split())
    if not isinstance(err, KNOWN) and type(err).__module__ != "yaml.error":
        text = (
            f"internal error, please report it: {type(err).__name__}: {text} "
            f"(set {DEBUG_ENV}=1 for the traceback)"
        )
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return RuntimeFailure(text)


def close_progress_bars() -> None:
    """Close open tqdm bars, so that the error starts on a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def debugging() -> bool:
    """Whether tracebacks are wanted (``FLARE_UDA_DEBUG`` set to anything but 0/empty)."""
    return os.environ.get(DEBUG_ENV, "0") not in ("", "0")
