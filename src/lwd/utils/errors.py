"""User-facing errors. The CLI prints ``LwdError`` as one line (``error: ...``) and exits non-zero."""


class LwdError(Exception):
    """An error caused by the user's input or configuration; its message says what to do."""


class ConfigError(LwdError):
    """A bad configuration value or preset."""


class DataError(LwdError):
    """Missing, malformed or corrupt data (dataset, episode payload, checkpoint)."""


class TrainingDiverged(LwdError):
    """A loss or weight became NaN/inf; training stopped and nothing non-finite was saved."""
