"""The BERT encoder, top to bottom: embeddings, layers, pooler, :class:`BertModel`.

Parameter names follow the public BERT checkpoints (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query``...), so Hugging Face weights load as
they are. Attention runs through a backend chosen by name (see
:mod:`bertkit.attention`); the layers never know which one.

Shapes in comments: ``b`` batch, ``s`` query length, ``k`` key length (past +
current), ``h`` heads, ``d`` head width, ``H`` hidden size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._attrdict import AttrDict
from ._errors import InputError
from .attention import get_attention
from .config import BertConfig
from .dropout import Dropout

__all__ = ["BertModel", "Output", "KVCache", "Packing"]

# Per layer: (self_key, self_value) or (self_key, self_value, cross_key, cross_value),
# each (b, h, length, d).
KVCache = tuple[tuple[torch.Tensor, ...], ...]


class Output(AttrDict):
    """Model outputs: a dict whose keys also read as attributes (``out.logits``).

    Keys: ``last_hidden_state``, ``pooler_output``, ``hidden_states``,
    ``attentions``, ``cross_attentions``, ``past_key_values``, and whatever the
    head adds (``logits``, ``start_logits``/``end_logits``,
    ``prediction_logits``/``seq_relationship_logits``). Absent outputs are ``None``.
    """


def activation(name: str):
    """The activation function called ``name`` in ``BertConfig.hidden_act``."""
    return {
        "gelu": F.gelu,
        "gelu_new": _gelu_tanh,
        "gelu_pytorch_tanh": _gelu_tanh,
        "gelu_fast": _gelu_tanh,
        "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
        "relu": F.relu,
        "silu": F.silu,
        "swish": F.silu,
        "tanh": torch.tanh,
        "mish": F.mish,
    }[name]


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


#: In-place twins of :func:`activation`'s functions, for inference, where the
#: activation's input is a temporary nobody reads again. Writing into it instead of a
#: new buffer of ``tokens x intermediate_size`` makes a SST-2 embedding pass 3-4 %
#: faster (2 threads, 4,096 sentences: 4.78 against 4.96 s median, same outputs).
_IN_PLACE = {
    F.gelu: lambda x: torch.ops.aten.gelu_(x),
    _gelu_tanh: lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
    F.relu: torch.relu_,
    F.silu: lambda x: F.silu(x, inplace=True),
    torch.tanh: torch.tanh_,
    F.mish: lambda x: F.mish(x, inplace=True),
}


#: Packed attention runs once per run of equal-length rows (see :meth:`Packing._runs`)
#: unless the batch has more runs than one per this many padded tokens; then it runs
#: once on the padded batch. Each run costs a few small kernel calls; the padded call
#: pays for padding in the scores and for scattering and gathering the tokens. On 2
#: CPU cores (all-MiniLM-L6-v2, one forward): 300 sorted SST-2 sentences (39 runs)
#: 622 ms by runs against 1,143 ms padded; 256 unsorted ones (248 runs, 54 tokens
#: at most) 780 against 957; 32 unsorted ones (30 runs, 30 at most) 109 against 89.
PADDED_TOKENS_PER_RUN = 48

#: CPU inference (no autograd) runs each feed-forward block over slices of the tokens
#: whose intermediate activations take at most this many bytes (1,365 tokens of the
#: default model), so that GELU, and the int8 layers' per-row scaling, read and write
#: cache instead of memory. 256 WikiText-2 paragraphs of 100-512 tokens, 2 cores:
#: int8 3.75 s whole against 2.79-2.84 s in slices of 512-2,048 tokens, fp32 4.56
#: against 3.94 s; SST-2 int8 2.82 against 2.60 s, fp32 unchanged.
FEED_FORWARD_SLICE_BYTES = 8 << 20


class Packing:
    """Where the real tokens of a padded batch sit, to run on them alone.

    The packed form keeps only the ``n`` real tokens of a ``(b, s)`` batch, ``(n, ...)``
    in row-major order. Every layer but attention works token by token, so it runs on
    the packed tokens and computes nothing for padding; attention scatters its
    queries, keys and values back to ``(b, s, ...)`` for one masked call per batch.

    Examples
    --------
    >>> import torch
    >>> from bertkit.modeling import Packing
    >>> packing = Packing(torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool))
    >>> x = torch.arange(6.0).view(2, 3, 1)
    >>> packing.pack(x).flatten().tolist()
    [0.0, 1.0, 3.0]
    >>> packing.pad(packing.pack(x)).flatten().tolist()
    [0.0, 1.0, 0.0, 3.0, 0.0, 0.0]
    """

    def __init__(self, keep: torch.Tensor, *, causal: bool = False, by_runs: bool = True):
        self.batch, self.seq = keep.shape
        self.index = keep.reshape(-1).nonzero().squeeze(1)  # (n,) positions in the flat (b * s)
        self.causal = causal
        self.runs = self._runs(keep) if by_runs else None

    def _runs(self, keep: torch.Tensor) -> list[tuple[int, int]] | None:
        """``(length, rows)`` for each run of consecutive rows with the same number of real
        tokens, in row order; None when there are too many runs for attention to pay
        per run (see :data:`PADDED_TOKENS_PER_RUN`).

        The packed tokens of such a run form one ``(rows, length, H)`` block, so its
        attention is one call on views, with no mask and no padding: rows sorted by
        length (as inference batches are) make few runs."""
        if keep.device.type != "cpu":
            return None  # one masked kernel launch beats many small ones on a GPU
        lengths, rows = torch.unique_consecutive(keep.sum(1), return_counts=True)
        if len(lengths) > max(1, self.batch * self.seq // PADDED_TOKENS_PER_RUN):
            return None
        return list(zip(lengths.tolist(), rows.tolist(), strict=True))

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, s, ...)`` -> ``(n, ...)``."""
        return x.reshape(self.batch * self.seq, *x.shape[2:]).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, ...)`` -> ``(b, s, ...)`` with zeros at the padding."""
        out = x.new_zeros((self.batch * self.seq, *x.shape[1:]))
        return out.index_copy_(0, self.index, x).view(self.batch, self.seq, *x.shape[1:])


# --------------------------------------------------------------------- embeddings
class Embeddings(nn.Module):
    """Word + (absolute) position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        # Checkpoints store a position table even for relative position types; it is
        # created always (so they load) and added only for "absolute".
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        #: Replaces the word lookup while gradients are on (the fit loop sets it; see
        #: :mod:`bertkit.training._rows`).
        self.word_lookup = None

    def forward(self, input_ids, token_type_ids, position_ids, inputs_embeds):
        if inputs_embeds is None:
            lookup = self.word_lookup if self.word_lookup is not None and torch.is_grad_enabled() else None
            inputs_embeds = (lookup or self.word_embeddings)(input_ids)  # (b, s, H)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.config.position_embedding_type == "absolute":
            x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


# --------------------------------------------------------------------- attention
class SelfAttention(nn.Module):
    """Query/key/value projections around one call to the attention backend."""

    def __init__(self, config: BertConfig, attention_fn, *, relative: str | None):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        #: Optional: query, key and value as one product, for inputs where all three read
        #: the same tokens (int8 copies set it: one input quantisation instead of three).
        self.qkv: nn.Module | None = None
        self.dropout_p = config.attention_probs_dropout_prob
        self.attention_fn = attention_fn
        self.relative = relative  # None, "relative_key" or "relative_key_query"
        if relative:
            self.max_positions = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * config.max_position_embeddings - 1, self.head_dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (b, s, H) -> (b, h, s, d)
        b, s, _ = x.shape
        return x.view(b, s, self.num_heads, self.head_dim).transpose(1, 2)

    def _project(self, hidden, source):
        """Queries from ``hidden``, keys and values from ``source``."""
        if self.qkv is not None and source is hidden:
            return self.qkv(hidden).chunk(3, dim=-1)
        return self.query(hidden), self.key(source), self.value(source)

    def forward(self, hidden, bias, head_mask, need_weights, past=None, kv_source=None, packing=None):
        """``kv_source``: where keys and values come from when not from ``hidden`` (the
        encoder output for cross-attention, or the whole sequence when ``hidden`` holds
        only the queries to compute). With ``packing``, the keys' source is packed
        ``(n, H)``, and so are ``hidden`` and the returned context unless ``kv_source``
        is given (then ``hidden`` holds ``(b, 1, H)`` first positions)."""
        queries_packed = packing is not None and kv_source is None
        if packing is not None and packing.runs is not None and not self.relative and not need_weights:
            return self._attend_runs(hidden, hidden if kv_source is None else kv_source, head_mask, packing)
        if kv_source is not None and past is not None:
            q = self.query(hidden)
            k, v = past  # cross-attention keys/values never change while decoding
        else:
            q, k, v = self._project(hidden, hidden if kv_source is None else kv_source)
            if packing is not None:
                k, v = packing.pad(k), packing.pad(v)
            k, v = self._split(k), self._split(v)
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        q = self._split(packing.pad(q) if queries_packed else q)  # (b, h, s, d)
        if self.relative:
            rel = self._relative_scores(q, k) * self.scale  # (b, h, s, k)
            bias = rel if bias is None else bias + rel
        context, probs = self.attention_fn(
            q, k, v,
            bias=bias,
            dropout_p=self.dropout_p if self.training else 0.0,
            scale=self.scale,
            head_mask=head_mask,
            need_weights=need_weights,
        )
        b, _, s, _ = context.shape
        context = context.transpose(1, 2).reshape(b, s, self.num_heads * self.head_dim)
        return (packing.pack(context) if queries_packed else context), probs, (k, v)

    def _attend_runs(self, hidden, source, head_mask, packing):
        """Packed attention one run of equal-length rows at a time (:meth:`Packing._runs`):
        each run's queries, keys and values are views of the packed projections, so
        nothing is padded, masked or gathered. ``hidden`` is ``(n, H)``, or ``(b, 1, H)``
        first positions when ``source`` holds the packed tokens (``first_only``)."""
        first_only = hidden is not source
        q, k, v = self._project(hidden, source)
        context = q.new_zeros(q.shape) if first_only else q.new_empty(q.shape)
        h, d = self.num_heads, self.head_dim
        dropout_p = self.dropout_p if self.training else 0.0
        token = row = 0
        for length, rows in packing.runs:
            span = slice(token, token + length * rows)
            token, first_row = token + length * rows, row
            row += rows
            if length == 0:
                continue  # rows without real tokens: nothing attends (first positions stay 0)
            keys, values = (x[span].view(rows, length, h, d).transpose(1, 2) for x in (k, v))
            queries = q[first_row:row] if first_only else q[span]
            queries = queries.reshape(rows, -1, h, d).transpose(1, 2)
            bias = None
            if packing.causal and not first_only:
                bias = torch.full((length, length), torch.finfo(q.dtype).min, dtype=q.dtype, device=q.device).triu_(1)
            mask = head_mask if head_mask is None or head_mask.shape[0] == 1 else head_mask[first_row:row]
            out, _ = self.attention_fn(queries, keys, values, bias=bias, dropout_p=dropout_p,
                                       scale=self.scale, head_mask=mask, need_weights=False)
            target = context[first_row:row] if first_only else context[span]
            target.view(rows, -1, h, d).copy_(out.transpose(1, 2))
        return context, None, None  # no key/value cache: Packing has no runs when one is kept

    def _relative_scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Shaw et al. / Huang et al. relative-position scores, before scaling."""
        s, k_len = q.shape[2], k.shape[2]
        q_pos = torch.arange(k_len - s, k_len, device=q.device)[:, None]  # past tokens come first
        k_pos = torch.arange(k_len, device=q.device)[None, :]
        table = self.distance_embedding(q_pos - k_pos + self.max_positions - 1).to(q.dtype)  # (s, k, d)
        scores = torch.einsum("bhsd,skd->bhsk", q, table)
        if self.relative == "relative_key_query":
            scores = scores + torch.einsum("bhkd,skd->bhsk", k, table)
        return scores


class AddNorm(nn.Module):
    """Dense projection, dropout, residual add, LayerNorm (BERT's "output" blocks)."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.dense(x))
        if not torch.is_grad_enabled() and y.dtype == residual.dtype and y.shape == residual.shape:
            return self.LayerNorm(y.add_(residual))  # y is a temporary: no new buffer
        return self.LayerNorm(y + residual)


class Attention(nn.Module):
    def __init__(self, config: BertConfig, attention_fn, *, relative: str | None):
        super().__init__()
        self.self = SelfAttention(config, attention_fn, relative=relative)
        self.output = AddNorm(config, config.hidden_size)

    def forward(self, hidden, bias, head_mask, need_weights, past=None, kv_source=None, packing=None):
        context, probs, present = self.self(hidden, bias, head_mask, need_weights, past, kv_source, packing)
        return self.output(context, hidden), probs, present


class Intermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dense(x)
        in_place = None if torch.is_grad_enabled() else _IN_PLACE.get(self.act)
        return self.act(y) if in_place is None else in_place(y)


class Layer(nn.Module):
    """Self-attention, optional cross-attention, feed-forward."""

    def __init__(self, config: BertConfig, attention_fn):
        super().__init__()
        relative = None if config.position_embedding_type == "absolute" else config.position_embedding_type
        self.attention = Attention(config, attention_fn, relative=relative)
        if config.add_cross_attention:
            self.crossattention = Attention(config, attention_fn, relative=None)
        self.intermediate = Intermediate(config)
        self.output = AddNorm(config, config.intermediate_size)
        self.intermediate_size = config.intermediate_size

    def forward(self, hidden, bias, head_mask, need_weights, past, encoder_hidden, encoder_bias,
                first_only=False, packing=None):
        """``first_only``: compute the output of the first position only (keys and values
        still come from every position). Callers use it for the last layer when only the
        pooler reads the result. ``packing``: ``hidden`` holds the packed real tokens
        ``(n, H)`` (see :class:`Packing`); the result too, or ``(b, 1, H)`` with ``first_only``."""
        if first_only:
            source = hidden
            hidden = packing.pad(hidden)[:, :1] if packing is not None else hidden[:, :1]  # (b, 1, H)
            if bias is not None and bias.shape[2] > 1:
                bias = bias[:, :, :1]
            hidden, probs, present = self.attention(hidden, bias, head_mask, need_weights,
                                                    kv_source=source, packing=packing)
        else:
            hidden, probs, present = self.attention(
                hidden, bias, head_mask, need_weights, past[:2] if past else None, packing=packing
            )
        cross_probs = None
        if encoder_hidden is not None and hasattr(self, "crossattention"):
            hidden, cross_probs, cross_present = self.crossattention(
                hidden, encoder_bias, head_mask, need_weights,
                past[2:] if past and len(past) == 4 else None, kv_source=encoder_hidden,
            )
            present = present + cross_present
        return self._feed_forward(hidden), probs, cross_probs, present

    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """The intermediate and output blocks; in CPU inference over slices of the tokens
        (see :data:`FEED_FORWARD_SLICE_BYTES`). In fp32 each token's result is the same
        either way; an int8 copy quantises each slice as its own call, which can move
        an embedding by a few 1e-3 (as a different batch would)."""
        width = hidden.shape[-1]
        step = max(1, FEED_FORWARD_SLICE_BYTES // (4 * self.intermediate_size))
        if torch.is_grad_enabled() or hidden.device.type != "cpu" or hidden.numel() <= step * width:
            return self.output(self.intermediate(hidden), hidden)
        tokens = hidden.reshape(-1, width)
        parts = [self.output(self.intermediate(part), part) for part in tokens.split(step)]
        return torch.cat(parts).view(hidden.shape)


class Encoder(nn.Module):
    def __init__(self, config: BertConfig, attention_fn):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config, attention_fn) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    """``tanh(dense(first token))``: the sentence vector BERT's NSP head was trained on."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


# --------------------------------------------------------------------- the model
class BertModel(nn.Module):
    """The BERT encoder (or decoder, with ``config.is_decoder``).

    Parameters
    ----------
    config : BertConfig
    attention : str, default="sdpa"
        Name of a registered attention backend (``"sdpa"``, ``"eager"``, or a plugin's).
    add_pooling_layer : bool, default=True
        Build the pooler (``pooler_output``); heads that never use it leave it out,
        as the public checkpoints do.

    Examples
    --------
    >>> import torch
    >>> from bertkit import BertConfig, BertModel
    >>> model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                              num_attention_heads=4, intermediate_size=64)).eval()
    >>> out = model(torch.tensor([[2, 5, 7, 3]]), attention_mask=torch.tensor([[1, 1, 1, 0]]))
    >>> tuple(out.last_hidden_state.shape), tuple(out.pooler_output.shape)
    ((1, 4, 32), (1, 32))
    """

    def __init__(self, config: BertConfig, *, attention: str = "sdpa", add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.attention_name = attention
        attention_fn = get_attention(attention)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config, attention_fn)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.apply(self._init_weights)

    # ----------------------------------------------------------------- setup
    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def set_attention(self, name: str) -> None:
        """Switch every layer to the attention backend registered as ``name``."""
        attention_fn = get_attention(name)
        for module in self.modules():
            if isinstance(module, SelfAttention):
                module.attention_fn = attention_fn
        self.attention_name = name

    def save_pretrained(self, folder: str | Path, **kwargs) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (Hugging Face ``BertModel`` layout)."""
        from .checkpoint import save_pretrained

        return save_pretrained(self, folder, **kwargs)

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        first_token_only: bool = False,
        packed: bool = False,
    ) -> Output:
        """Run the encoder.

        ``input_ids`` ``(b, s)`` or ``inputs_embeds`` ``(b, s, H)``; ``attention_mask``
        ``(b, k)`` or ``(b, s, k)`` with 1 for real tokens (``k`` counts cached tokens
        too); ``past_key_values`` from a previous decoder call continues it one or more
        tokens at a time. Returns an :class:`Output`.

        ``first_token_only=True`` returns ``last_hidden_state`` for the first position
        only, ``(b, 1, H)``: all a pooler-based head reads. The last layer then projects
        queries, attention output and feed-forward for that position alone (keys and
        values still see every token), about 1/7 less compute for a 6-layer model, with
        identical results. Relative-position and decoder models compute the full layer.

        ``packed=True`` computes nothing for padding: embeddings, projections, the
        feed-forward blocks and LayerNorms run on the real tokens of the batch alone
        (those ``attention_mask`` marks), attention per sequence: on the CPU once per
        run of consecutive rows with the same number of real tokens (views of the packed
        tokens, no mask), unless the batch has many short runs; then once on the padded
        batch (see :data:`PADDED_TOKENS_PER_RUN`). Real positions get
        the same values as without packing; padded positions of ``last_hidden_state``
        and ``hidden_states`` are 0. It needs a 2-D ``attention_mask`` and serves
        everything but cached decoding and cross-attention, which raise.
        """
        config = self.config
        batch, seq, device = self._check_inputs(input_ids, inputs_embeds)
        past_len = past_key_values[0][0].shape[2] if past_key_values else 0
        if past_key_values is not None and not config.is_decoder:
            raise InputError("past_key_values needs a decoder model (config.is_decoder=True).")
        use_cache = config.use_cache if use_cache is None else use_cache
        use_cache = bool(use_cache and config.is_decoder)

        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + seq, device=device).expand(batch, seq)
        if token_type_ids is None:
            token_type_ids = torch.zeros((batch, seq), dtype=torch.long, device=device)
        self._check_ids(input_ids, token_type_ids, position_ids, past_len + seq)

        packing = None
        if packed:  # (attention by runs of equal-length rows keeps no key/value cache)
            keep = self._real_tokens(attention_mask, past_key_values, encoder_hidden_states, device)
            packing = Packing(keep, causal=config.is_decoder, by_runs=not use_cache)
        if packing is not None:  # embed the real tokens alone: (1, n) ids -> (n, H)
            input_ids, token_type_ids, position_ids, inputs_embeds = (
                None if x is None else packing.pack(x)[None]
                for x in (input_ids, token_type_ids, position_ids.expand(batch, seq), inputs_embeds)
            )
            hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)[0]  # (n, H)
        else:
            hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # (b, s, H)
        bias = self._attention_bias(attention_mask, batch, seq, past_len, hidden.dtype, device)
        encoder_bias = None
        if encoder_hidden_states is not None and encoder_attention_mask is not None:
            encoder_bias = self._attention_bias(
                encoder_attention_mask, batch, seq, 0, hidden.dtype, device, causal=False
            )
        head_masks = self._head_masks(head_mask, hidden.dtype)

        unpack = packing.pad if packing is not None else (lambda x: x)
        all_hidden = [unpack(hidden)] if output_hidden_states else None
        all_attn = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        presents = [] if use_cache else None
        last = len(self.encoder.layer) - 1
        trim_last = first_token_only and self._can_trim(output_attentions, output_hidden_states,
                                                        encoder_hidden_states, past_key_values)
        for i, layer in enumerate(self.encoder.layer):
            past = past_key_values[i] if past_key_values else None
            hidden, probs, cross_probs, present = layer(
                hidden, bias, head_masks[i], output_attentions, past,
                encoder_hidden_states, encoder_bias, first_only=trim_last and i == last,
                packing=packing,
            )
            if output_hidden_states:
                all_hidden.append(unpack(hidden))
            if output_attentions:
                all_attn.append(probs)
                if all_cross is not None:
                    all_cross.append(cross_probs)
            if use_cache:
                presents.append(present)

        if packing is not None and not trim_last:
            hidden = packing.pad(hidden)  # (b, s, H)
        if first_token_only:
            hidden = hidden[:, :1]
        return Output(
            last_hidden_state=hidden,
            pooler_output=self.pooler(hidden) if self.pooler is not None else None,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attn) if output_attentions else None,
            cross_attentions=tuple(all_cross) if all_cross is not None else None,
            past_key_values=tuple(presents) if use_cache else None,
        )

    # ----------------------------------------------------------------- helpers
    def _can_trim(self, output_attentions, output_hidden_states, encoder_hidden, past) -> bool:
        """Whether the last layer may compute the first position alone (see ``forward``)."""
        config = self.config
        return (config.position_embedding_type == "absolute" and not config.is_decoder
                and not output_attentions and not output_hidden_states
                and encoder_hidden is None and past is None)

    @staticmethod
    def _real_tokens(mask, past, encoder_hidden, device) -> torch.Tensor:
        """The real-token mask that packs the batch, for ``forward(packed=True)``."""
        if mask is None or mask.dim() != 2:
            got = "none" if mask is None else f"shape {tuple(mask.shape)}"
            raise InputError(
                f"packed=True needs a 2-D attention_mask (batch, sequence) that marks the real "
                f"tokens; got {got}. Pass the tokenizer's attention_mask, or packed=False."
            )
        if past is not None or encoder_hidden is not None:
            raise InputError(
                "packed=True does not serve cached decoding (past_key_values) or "
                "cross-attention (encoder_hidden_states); call with packed=False."
            )
        return mask.to(device=device, dtype=torch.bool)

    def _check_inputs(self, input_ids, inputs_embeds):
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("Pass exactly one of input_ids and inputs_embeds.")
        if input_ids is not None:
            if input_ids.dim() != 2:
                raise InputError(
                    f"input_ids must have shape (batch, sequence). Got shape {tuple(input_ids.shape)}."
                )
            return input_ids.shape[0], input_ids.shape[1], input_ids.device
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
            raise InputError(
                f"inputs_embeds must have shape (batch, sequence, {self.config.hidden_size}). "
                f"Got {tuple(inputs_embeds.shape)}."
            )
        return inputs_embeds.shape[0], inputs_embeds.shape[1], inputs_embeds.device

    def _check_ids(self, input_ids, token_type_ids, position_ids, total_len):
        config = self.config
        if total_len > config.max_position_embeddings:
            raise InputError(
                f"Sequence length {total_len} exceeds this model's max_position_embeddings "
                f"({config.max_position_embeddings}). Truncate the input (e.g. tokenizer "
                f"max_length={config.max_position_embeddings}) or split it into windows."
            )
        for name, ids, limit in (
            ("input_ids", input_ids, config.vocab_size),
            ("token_type_ids", token_type_ids, config.type_vocab_size),
            ("position_ids", position_ids, config.max_position_embeddings),
        ):
            if ids is None or ids.numel() == 0:
                continue
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= limit:
                bad = high if high >= limit else low
                raise InputError(
                    f"{name} contains {bad}, outside [0, {limit}) for this model "
                    f"({'vocab_size' if name == 'input_ids' else 'type_vocab_size' if name == 'token_type_ids' else 'max_position_embeddings'}"
                    f"={limit}). Was the input encoded with another model's tokenizer?"
                )

    def _attention_bias(self, mask, batch, seq, past_len, dtype, device, causal=None):
        """Additive bias ``(b, 1, s|1, k)``: 0 where allowed, dtype-min where masked."""
        causal = self.config.is_decoder if causal is None else causal
        k_len = past_len + seq
        if mask is None and not causal:
            return None
        if mask is None:
            keep = torch.ones((batch, 1, 1, k_len), dtype=torch.bool, device=device)
        elif mask.dim() == 2:
            keep = mask[:, None, None, :].to(device=device, dtype=torch.bool)  # (b, 1, 1, k)
        elif mask.dim() == 3:
            keep = mask[:, None, :, :].to(device=device, dtype=torch.bool)  # (b, 1, s, k)
        else:
            raise InputError(
                f"attention_mask must have shape (batch, keys) or (batch, queries, keys). "
                f"Got {tuple(mask.shape)}."
            )
        if causal:
            if keep.shape[-1] != k_len:
                raise InputError(
                    f"attention_mask covers {keep.shape[-1]} positions; with {past_len} cached "
                    f"tokens and {seq} new ones it must cover {k_len}."
                )
            q_pos = torch.arange(past_len, k_len, device=device)[:, None]
            keep = keep & (torch.arange(k_len, device=device)[None, :] <= q_pos)  # (b, 1, s, k)
        bias = torch.zeros(keep.shape, dtype=dtype, device=device)
        return bias.masked_fill_(~keep, torch.finfo(dtype).min)

    def _head_masks(self, head_mask, dtype) -> Sequence[torch.Tensor | None]:
        """Per-layer ``(1, heads, 1, 1)`` multipliers from a ``(heads,)`` or ``(layers, heads)`` mask."""
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask is None:
            return [None] * layers
        head_mask = torch.as_tensor(head_mask)
        if head_mask.dim() == 1 and head_mask.shape[0] == heads:
            head_mask = head_mask.expand(layers, heads)
        if head_mask.shape != (layers, heads):
            raise InputError(
                f"head_mask must have shape ({heads},) or ({layers}, {heads}). "
                f"Got {tuple(head_mask.shape)}."
            )
        head_mask = head_mask.to(dtype=dtype, device=self.embeddings.word_embeddings.weight.device)
        return [m[None, :, None, None] for m in head_mask]
