"""Writing the files memgate leaves behind (baselines, reports): one way, atomic, with the user's umask;
and reading the JSON files it is given (baselines, reports, the CI's event file): one way, fail closed."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from memgate.errors import MemgateError, UsageError
from memgate.units import NumberTooLong

#: Permissions before the umask, as ``open()`` and the shell give: 0644 under the usual umask 022.
_NEW_FILE_MODE = 0o666
_ATTEMPTS = 100


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to ``path``: a reader never sees half a file, and a failed
    write leaves the previous one in place. The file is written beside ``path``, flushed to disk, then
    renamed over it; it gets the permissions the user's umask gives (not 0600, as ``mkstemp`` would:
    the next CI step, an artifact upload as another user or a teammate must be able to read it).

    A symbolic link at ``path`` is replaced, not written through, except to a pipe or a terminal
    (``--markdown /dev/stdout``): those are written in place, since renaming over one would replace it.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if _is_stream(path):
        with path.open("wb") as handle:
            handle.write(data)
        return
    temporary, descriptor = _create_beside(path)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_requested_file(path: Path, content: str, *, what: str) -> None:
    """Write a file the user asked for (a report), making its folders; a path that cannot be written is
    a ``UsageError`` naming ``what`` was being written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, content)
    except OSError as error:
        raise UsageError(f"cannot write {what}: {error.strerror or error}", path=path,
                         hint="choose a writable path") from None


def _is_stream(path: Path) -> bool:
    """A FIFO or a character device (a terminal, ``/dev/null``), after following links."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _create_beside(path: Path) -> tuple[Path, int]:
    """A new, empty hidden file in ``path``'s folder, opened for writing. ``os.open`` applies the
    umask to the mode it is given, which ``tempfile.mkstemp`` (always 0600) does not allow."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, flags, _NEW_FILE_MODE)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def read_json(path: Path, *, error: type[MemgateError], hint: str,
              parse_int: Callable[[str], object] | None = None) -> object:
    """The JSON value in ``path``; ``error`` naming the file when it cannot be read or is not JSON,
    with ``hint`` as the fix for a file whose content is wrong. ``parse_int`` reads the integers
    (``units.count_of`` refuses numbers longer than any count). Every JSON file memgate is given is read
    here: ``json`` recurses once per ``[`` or ``{``, and a file nested thousands deep raised a bare
    ``RecursionError`` (an internal error, exit 4) instead of saying which file was wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", path=path, hint="check the path") from None
    except UnicodeDecodeError:
        raise error("the file is not UTF-8 JSON", path=path, hint=hint) from None
    except OSError as problem:
        raise error(f"cannot read the file: {problem.strerror or problem}", path=path,
                    hint="check its permissions") from None
    return json_from_text(text, path, error=error, hint=hint, parse_int=parse_int)


def json_from_text(text: str, path: Path | str, *, error: type[MemgateError], hint: str,
                   parse_int: Callable[[str], object] | None = None) -> object:
    """The JSON value in ``text``, read from ``path`` (a file, or a file at a commit of git's history);
    the same errors as ``read_json``."""
    try:
        value: object = json.loads(text, parse_int=parse_int)
    except json.JSONDecodeError as problem:
        raise error(f"the file is not valid JSON (line {problem.lineno}, column {problem.colno}: "
                    f"{problem.msg})", path=path, hint=hint) from None
    except RecursionError:
        raise error("the file nests JSON arrays or objects thousands deep, which no file memgate reads "
                    "does", path=path, hint=hint) from None
    except NumberTooLong as problem:
        raise error(f"the file holds {problem.message}", path=path, hint=hint) from None
    except ValueError:  # int() refuses more than 4,300 digits when no parse_int is given
        raise error("the file holds a number too long to read", path=path, hint=hint) from None
    return value
