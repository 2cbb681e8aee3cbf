"""Exceptions that mean "the user gave us something we cannot use".

The CLI turns any :class:`EmoError` into one line on stderr and exit code 2, with no traceback.
Anything else escaping is a bug and keeps its traceback.
"""


class EmoError(Exception):
    """Base class for clear, user-facing errors."""


class InputError(EmoError):
    """A file, stream, argument or array the caller supplied is missing, corrupt or malformed."""


class SchemaError(EmoError):
    """Data or a model file does not match the schema this code expects."""


class ConfigError(EmoError):
    """A configuration file or parameter is invalid."""
