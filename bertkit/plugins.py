"""The plugin manager and bertkit's name -> object tables.

bertkit's own attention backends, heads, tokenizer and model sources are plugins
in :mod:`bertkit.default_plugins`; third-party plugins arrive through the
``bertkit`` entry-point group, loaded lazily and once. Set the environment
variable ``BERTKIT_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry points (bertkit's own
plugins still load).

Examples
--------
>>> import bertkit
>>> from bertkit import plugins
>>> from bertkit.attention import sdpa_attention
>>> "sdpa" in plugins.names("attention")
True
>>> class MyPlugin:
...     @bertkit.hookimpl
...     def bertkit_register_attention_backends(self, register):
...         register("my_sdpa", sdpa_attention)
>>> with plugins.isolated():
...     _ = plugins.register_plugin(MyPlugin(), name="mine")
...     "my_sdpa" in plugins.names("attention")
True
>>> "my_sdpa" in plugins.names("attention")
False
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pluggy

from . import hookspecs
from ._errors import PluginError, UnknownNameError

__all__ = [
    "AUTOLOAD_ENV",
    "get_plugin_manager",
    "load_plugins",
    "register_plugin",
    "unregister_plugin",
    "isolated",
    "get",
    "names",
    "table",
    "KINDS",
]

logger = logging.getLogger(__name__)

#: Environment variable that turns entry-point autoloading off when set to 1/true/yes.
AUTOLOAD_ENV = "BERTKIT_DISABLE_PLUGIN_AUTOLOAD"
ENTRY_POINT_GROUP = "bertkit"

#: Table kind -> (registration hook name, words used in messages).
KINDS: dict[str, tuple[str, str]] = {
    "attention": ("bertkit_register_attention_backends", "attention backend"),
    "head": ("bertkit_register_heads", "head"),
    "tokenizer": ("bertkit_register_tokenizers", "tokenizer"),
    "model_source": ("bertkit_register_model_sources", "model source"),
}


class _State:
    def __init__(self) -> None:
        self.pm = _new_plugin_manager()
        self.entry_points_loaded = False
        self.tables: dict[str, dict[str, tuple[Any, str]]] = {}
        self.tables_key: tuple = ()


_lock = threading.RLock()
_state: _State | None = None


def _new_plugin_manager() -> pluggy.PluginManager:
    from . import default_plugins

    pm = pluggy.PluginManager("bertkit")
    pm.add_hookspecs(hookspecs)
    for module in default_plugins.MODULES:
        pm.register(module, name=module.__name__)
    return pm


def _current() -> _State:
    global _state
    with _lock:
        if _state is None:
            _state = _State()
        return _state


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide :class:`pluggy.PluginManager`, with entry points loaded."""
    load_plugins()
    return _current().pm


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def load_plugins() -> None:
    """Load third-party plugins from the ``bertkit`` entry-point group, once.

    Idempotent and cheap after the first call. Does nothing but note it in the log
    when ``BERTKIT_DISABLE_PLUGIN_AUTOLOAD`` is set.
    """
    state = _current()
    with _lock:
        if state.entry_points_loaded:
            return
        state.entry_points_loaded = True
        if _autoload_disabled():
            logger.debug("%s is set: bertkit entry-point plugins not loaded", AUTOLOAD_ENV)
            return
        count = state.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        if count:
            logger.info("loaded %d bertkit plugin(s) from entry points", count)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module; return the name it is registered under."""
    pm = get_plugin_manager()
    with _lock:
        registered = pm.register(plugin, name=name)
    if registered is None:
        raise PluginError(f"Plugin {name or plugin!r} is blocked or already registered.")
    return registered


def unregister_plugin(plugin: object | None = None, name: str | None = None) -> None:
    """Remove a plugin registered with :func:`register_plugin` (by object or by name)."""
    pm = get_plugin_manager()
    with _lock:
        pm.unregister(plugin=plugin, name=name)


@contextlib.contextmanager
def isolated(autoload: bool = False) -> Iterator[pluggy.PluginManager]:
    """Run a block with a fresh plugin manager holding only bertkit's own plugins.

    Whatever the block registers disappears when it ends; the previous manager comes
    back. Tests use this so plugins never leak between them. With ``autoload=True``
    entry-point plugins are loaded into the fresh manager too.
    """
    global _state
    with _lock:
        previous = _state
        fresh = _State()
        fresh.entry_points_loaded = not autoload
        _state = fresh
    try:
        load_plugins()
        yield fresh.pm
    finally:
        with _lock:
            _state = previous


def _build_tables(state: _State) -> None:
    key = tuple(name for name, _ in state.pm.list_name_plugin())
    if state.tables and key == state.tables_key:
        return
    tables: dict[str, dict[str, tuple[Any, str]]] = {}
    for kind, (hook_name, noun) in KINDS.items():
        entries: dict[str, tuple[Any, str]] = {}
        caller = getattr(state.pm.hook, hook_name)
        # get_hookimpls() is in registration order (pluggy *calls* them LIFO), so
        # tables list bertkit's own entries first, then plugins as they were added.
        for impl in caller.get_hookimpls():
            impl.function(**{"register": _registrar(entries, noun, impl.plugin_name)})
        tables[kind] = entries
    state.tables = tables
    state.tables_key = key


def _registrar(entries: dict, noun: str, plugin_name: str) -> Callable[[str, Any], None]:
    def register(name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"Plugin {plugin_name!r} registered a {noun} with an invalid name {name!r}; "
                f"names are non-empty strings."
            )
        if name in entries:
            other = entries[name][1]
            raise PluginError(
                f"The {noun} name {name!r} is claimed by two plugins: {other!r} and "
                f"{plugin_name!r}. Uninstall or unregister one of them, or have one "
                f"register under another name."
            )
        entries[name] = (obj, plugin_name)

    return register


def table(kind: str) -> dict[str, tuple[Any, str]]:
    """``{name: (object, plugin_name)}`` for one kind ('attention', 'head', ...)."""
    if kind not in KINDS:
        raise UnknownNameError(f"Unknown plugin table {kind!r}; known: {sorted(KINDS)}.")
    load_plugins()
    state = _current()
    with _lock:
        _build_tables(state)
        return dict(state.tables[kind])


def names(kind: str) -> list[str]:
    """Registered names of one kind, in registration order."""
    return list(table(kind))


def get(kind: str, name: str) -> Any:
    """The object registered as ``name`` in table ``kind``; raises listing the known names."""
    entries = table(kind)
    if name not in entries:
        noun = KINDS[kind][1]
        raise UnknownNameError(
            f"Unknown {noun} {name!r}. Known {noun}s: {', '.join(repr(n) for n in entries)}. "
            f"A plugin can add more through the {KINDS[kind][0]} hook."
        )
    return entries[name][0]
