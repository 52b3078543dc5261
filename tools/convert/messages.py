"""One line for every failure the converter can meet, saying what went wrong AND what to do.

ConvertError messages are already written that way; Python's own exceptions (an OSError on the
destination, a ValueError deep in torch) are rewritten here instead of showing a traceback.
"""

import errno
import os

from . import ConvertError


def is_interrupt(e):
    """Ctrl-C, also when it arrived inside torch's C++ code (pybind11 turns it into this RuntimeError)."""
    return isinstance(e, KeyboardInterrupt) or (isinstance(e, RuntimeError) and str(e).startswith("KeyboardInterrupt"))


def describe(e, dst=None):
    """The one-line message (without the 'error: ' prefix) for exception ``e``."""
    if isinstance(e, ConvertError):
        return " ".join(str(e).split())
    if isinstance(e, OSError):
        return " ".join(_describe_os_error(e, dst).split())
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, ValueError):
        return (f"invalid value: {first}. The checkpoint (its config.json files or weights) holds a value this "
                f"converter cannot use; check the file named above, or rerun with --verbose to see where it failed")
    return f"{type(e).__name__}: {first} (rerun with --verbose for the traceback, and report it if the input looks right)"


def _blocking_file(path):
    """The first part of ``path`` that exists and is not a folder (what stops makedirs)."""
    p = os.path.abspath(path)
    while p != os.path.dirname(p):
        if os.path.lexists(p) and not os.path.isdir(p):
            return p
        p = os.path.dirname(p)
    return path


def _describe_os_error(e, dst):
    where = e.filename or dst or "the output"
    target = f" for {dst}" if dst else ""
    code = e.errno
    if isinstance(e, PermissionError) or code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"permission denied: cannot write {where}{target}. Choose a destination in a folder you can "
                f"write, or fix its permissions")
    if isinstance(e, (FileExistsError, NotADirectoryError)) or code in (errno.EEXIST, errno.ENOTDIR):
        return (f"cannot create the destination{target}: {_blocking_file(where)} is a file, not a folder. "
                f"Choose a destination whose parent folders are folders (or remove that file)")
    if isinstance(e, FileNotFoundError) or code == errno.ENOENT:
        return (f"cannot create the destination{target}: {where} does not exist and cannot be created there. "
                f"Choose a destination inside an existing, writable folder")
    if code == errno.ENOSPC:
        return f"no space left on the device while writing {where}. Free some space or choose a destination on another disk"
    return f"cannot write {where}{target}: {e.strerror or e}. Check the destination path"
