"""Exceptions that the CLI turns into one clear line (no traceback)."""


class MatbenchError(Exception):
    """A user-facing error: bad input, missing configuration, unreachable source."""


class InputError(MatbenchError):
    """A malformed row, missing image, duplicate id...: names the file and the row."""

    def __init__(self, message: str, *, file: str | None = None, row: int | str | None = None):
        where = ""
        if file is not None:
            where = f"{file}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(where + message)
        self.file = file
        self.row = row


class ConfigError(MatbenchError):
    """A missing key, an unknown model/task/backend, a changed configuration on resume."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: ``saved`` lists (run directory, samples saved, samples planned)."""

    def __init__(self, saved: list[tuple[str, int, int]]):
        super().__init__()
        self.saved = saved
