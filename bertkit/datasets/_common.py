"""What every reader shares: path checks, line iteration and error messages with line numbers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .._errors import InputError

PathLike = str | os.PathLike


def check_file(path: PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or FileNotFoundError naming it and the expected format."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"The path of the {what} file must be a str or os.PathLike. "
            f"Got {type(path).__name__}: {path!r}."
        )
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"The {what} file {str(path)!r} is a directory, not a file.")
    if not path.is_file():
        raise FileNotFoundError(f"The {what} file {str(path)!r} does not exist.")
    return path


def input_error(path: Path, line: int | None, what: str, message: str) -> InputError:
    """An InputError that starts with ``Malformed <what> file '<path>', line <n>:``."""
    where = f", line {line}" if line is not None else ""
    return InputError(f"Malformed {what} file {str(path)!r}{where}: {message}")


def iter_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line, 1-based, without the line ending.

    Lines end at ``\\n`` only (a ``\\r`` before it is dropped), so the numbers match
    ``wc -l`` and text editors. A UTF-8 byte-order mark on the first line is dropped.
    Bytes that are not UTF-8 raise :class:`~bertkit.InputError` naming the line.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise input_error(
                    path, number, what, f"the bytes are not UTF-8 ({err.reason} at byte "
                    f"{err.start} of the line). Re-encode the file as UTF-8."
                ) from err
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text


def shorten(text: str, limit: int = 80) -> str:
    """``repr`` of ``text``, cut to about ``limit`` characters for error messages."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)
