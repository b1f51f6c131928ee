"""The errors bertkit raises.

Every error derives from :class:`BertkitError`; each also inherits the built-in
class it refines, so ``except ValueError`` or ``except FileNotFoundError`` in a
caller's code keeps working.
"""

from __future__ import annotations

__all__ = [
    "BertkitError",
    "ConfigError",
    "CheckpointError",
    "ModelNotFoundError",
    "PluginError",
    "UnknownNameError",
    "UnsupportedOptionError",
    "InputError",
]


class BertkitError(Exception):
    """Base class of every error bertkit raises on purpose."""


class ConfigError(BertkitError, ValueError):
    """A configuration value is impossible (e.g. hidden size not divisible by heads)."""


class CheckpointError(BertkitError, ValueError):
    """Weights could not be read, or do not fit the model (corrupt file, wrong shape)."""


class ModelNotFoundError(BertkitError, FileNotFoundError):
    """A model source could not be resolved to a folder on disk."""


class PluginError(BertkitError, ValueError):
    """Two plugins claim one name, or a plugin registered something malformed."""


class UnknownNameError(BertkitError, ValueError):
    """A head, attention backend, tokenizer or model source name nobody registered."""


class UnsupportedOptionError(BertkitError, ValueError):
    """An attention backend was asked for something it cannot compute."""


class InputError(BertkitError, ValueError):
    """Model inputs that cannot be run: ids outside the vocabulary, too-long sequences..."""
