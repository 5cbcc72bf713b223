"""Start-up checks of the plugin's file options: a bad path is a usage error naming it.

:func:`check_input_file` (``--baml-budgets``, ``--baml-prices``) wants an existing regular
file that can be read; :func:`check_output_file` (``--baml-report-json``) wants a path
that is not a directory, FIFO or device, in an existing directory it can create files in,
and that is not one of the input files. Neither ever opens a FIFO or a device (which could
hang): the type is read with ``os.stat`` first. Too-long paths and symlink loops are
reported with the OS's reason. Problems raise
:class:`~pytest_baml_telemetry.budgets.config.BudgetConfigError`.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .config import BudgetConfigError

__all__ = ["check_input_file", "check_output_file", "normalised"]


def normalised(path: str | os.PathLike[str]) -> Path:
    """``path`` without ``..``/``.`` parts (its directory resolved, so ``link/..`` is right;
    the file name kept even when it is a symlink), relative to the current directory when
    it is below it, else absolute: how messages and reports show a path."""
    absolute = _absolute(path)
    try:
        return absolute.relative_to(Path(os.path.realpath(os.getcwd())))
    except ValueError:
        return absolute


def _absolute(path: str | os.PathLike[str]) -> Path:
    """The absolute ``path``: its directory resolved, its file name kept."""
    name = os.path.basename(os.path.normpath(path))
    if name in ("", ".", ".."):
        return Path(os.path.realpath(path))
    return Path(os.path.realpath(os.path.dirname(os.path.abspath(path)))) / name


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENAMETOOLONG:
        return "is longer than the OS allows (file name too long)"
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno == errno.ENOTDIR:
        return "has a part that is not a directory"
    return f"cannot be read: {exc.strerror or exc}"


def _kind(mode: int) -> str | None:
    """What a non-regular file is (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input_file(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` (normalised) when it is a readable regular file, else ``BudgetConfigError``
    naming ``option`` and the path."""
    shown = normalised(path)
    where = f"{option}: {str(shown)!r}"
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BudgetConfigError(f"{where} {_why(exc)}") from None
    kind = _kind(st.st_mode)
    if kind is not None:
        raise BudgetConfigError(f"{where} is not a file: it is {kind}; expected a TOML file")
    if not os.access(path, os.R_OK):
        raise BudgetConfigError(f"{where} is not readable (permission denied)")
    return shown


def check_output_file(path: str | os.PathLike[str], option: str, inputs: Iterable[Path] = ()) -> Path:
    """``path`` (absolute, normalised) when a report can be written there, else
    ``BudgetConfigError`` naming ``option`` and the path.

    The directory must exist and accept new files (checked by creating and removing a
    temporary file, which also works for root on a read-only file system); ``path`` must
    not be a directory, FIFO or device, nor the same file as one of ``inputs``.
    """
    absolute = _absolute(path)
    where = f"{option}: {str(normalised(absolute))!r}"
    try:
        st = os.stat(absolute)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BudgetConfigError(f"{where} {_why(exc)}") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            raise BudgetConfigError(f"{where} is {kind}; expected a file path")
        for other in inputs:
            try:
                same = os.path.samefile(absolute, other)
            except OSError:
                same = False
            if same:
                raise BudgetConfigError(
                    f"{where} is the file {str(other)!r} given as an input; writing the report would overwrite it"
                )
    for other in inputs:
        if _absolute(other) == absolute:
            raise BudgetConfigError(f"{where} is the input file {str(other)!r}; writing the report would overwrite it")
    parent = absolute.parent
    try:
        parent_st = os.stat(parent)
    except OSError as exc:
        raise BudgetConfigError(f"{option}: the directory {str(normalised(parent))!r} {_why(exc)}") from None
    if not stat.S_ISDIR(parent_st.st_mode):
        raise BudgetConfigError(f"{option}: the directory {str(normalised(parent))!r} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{absolute.name[:40]}.", suffix=".probe")
    except OSError as exc:
        raise BudgetConfigError(
            f"{option}: the directory {str(normalised(parent))!r} is not writable: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    os.unlink(probe)
    if len(absolute.name.encode()) > _name_max(parent):
        raise BudgetConfigError(f"{where} is longer than the OS allows (file name too long)")
    return absolute


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
