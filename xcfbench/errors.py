"""The one exception type for bad input.

Anything the user can get wrong (an unknown name, a malformed trace line, a size over the
maximum) raises InputError with a one-line message; the CLI prints it and exits 2.
"""


class InputError(ValueError):
    """Bad input, described in one line that names the problem."""


def read_input(path: str, what: str, binary: bool = False) -> str | bytes:
    """The whole of a user's input file, or an InputError that names the file and says
    what is wrong with it (what: "trace", "corpus", "result file")."""
    import os
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")
    try:
        if binary:
            with open(path, "rb") as f:
                return f.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist") from None
    except PermissionError:
        raise InputError(f"{what} {path!r} is not readable (permission denied)") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {path!r} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
