"""The one exception type for bad input.

Anything the user can get wrong (an unknown name, a malformed trace line, a size over the
maximum) raises InputError with a one-line message; the CLI prints it and exits 2.
"""


class InputError(ValueError):
    """Bad input, described in one line that names the problem."""
