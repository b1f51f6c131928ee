"""Every hook a bertkit plugin can implement.

A plugin is any module or object with functions marked ``@bertkit.hookimpl``
and named like the specs below. Third-party plugins are found through the
``bertkit`` entry-point group::

    # pyproject.toml of a plugin distribution
    [project.entry-points.bertkit]
    my_backend = "my_package.bertkit_plugin"

Registration hooks receive a ``register(name, obj)`` callback. bertkit keeps the
name -> object tables; a name claimed twice raises :class:`bertkit.PluginError`
naming both plugins. Hook signatures only ever gain arguments, and pluggy lets an
implementation accept fewer arguments than the spec offers, so plugins keep working.
"""

from __future__ import annotations

import pluggy

__all__ = ["hookspec", "hookimpl"]

hookspec = pluggy.HookspecMarker("bertkit")
hookimpl = pluggy.HookimplMarker("bertkit")


@hookspec
def bertkit_register_attention_backends(register):
    """Register attention backends by name.

    Call ``register(name, attention_fn)`` once per backend. ``attention_fn`` has the
    signature of :func:`bertkit.attention.attention_signature`::

        attention_fn(query, key, value, *, bias, dropout_p, scale, head_mask, need_weights)
            -> (context, probabilities_or_None)

    ``query`` is ``(batch, heads, q_len, head_dim)``, ``key``/``value`` are
    ``(batch, heads, k_len, head_dim)``, ``bias`` is an additive float tensor
    broadcastable to ``(batch, heads, q_len, k_len)`` (padding, causal mask and
    relative-position scores folded in) or ``None``. A backend that cannot serve an
    option (e.g. ``need_weights=True``) raises :class:`bertkit.UnsupportedOptionError`
    naming itself and the option; it never falls back silently.
    """


@hookspec
def bertkit_register_heads(register):
    """Register task heads by name.

    Call ``register(name, head_class)``. ``head_class`` is a :class:`bertkit.heads.Head`
    subclass: ``head_class(config, **head_options)`` builds it, and its ``forward``
    turns encoder outputs into task outputs. Its parameter names are those the
    checkpoint stores outside the ``bert.`` prefix (``classifier.weight``...).
    """


@hookspec
def bertkit_register_tokenizers(register):
    """Register tokenizer loaders by name.

    Call ``register(name, loader)``; ``loader(folder: pathlib.Path)`` returns a
    tokenizer object callable like :class:`bertkit.BertTokenizer`.
    ``bertkit.load_tokenizer(source, kind=name)`` uses it.
    """


@hookspec
def bertkit_register_model_sources(register):
    """Register model sources by name.

    Call ``register(name, resolve)``; ``resolve(spec: str)`` returns the
    ``pathlib.Path`` of a local Hugging Face-format folder for ``spec``, or ``None``
    when this source does not know ``spec``. Sources are asked in registration
    order (bertkit's own ``default`` and ``folder`` sources first). A source must
    never reach the network.
    """
