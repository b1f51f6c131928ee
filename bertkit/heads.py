"""Task heads on the encoder, and :class:`BertTaskModel` that joins the two.

Each head is a small ``nn.Module`` whose parameter names are those the public
BERT checkpoints store outside the ``bert.`` prefix (``cls.predictions...``,
``classifier``, ``qa_outputs``), so ``BertFor*`` weights load as they are. Heads
import the encoder; they never copy it. bertkit registers them by name through the
``bertkit_register_heads`` hook (see :mod:`bertkit.default_plugins.heads`); a
plugin adds its own by subclassing :class:`Head`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ._errors import ConfigError, InputError
from .config import BertConfig
from .dropout import Dropout
from .modeling import BertModel, Output, activation

__all__ = [
    "Head",
    "BertTaskModel",
    "PreTrainingHead",
    "MaskedLMHead",
    "NextSentenceHead",
    "SequenceClassificationHead",
    "MultipleChoiceHead",
    "TokenClassificationHead",
    "QuestionAnsweringHead",
    "CausalLMHead",
]


class Head(nn.Module):
    """Base class of task heads.

    Subclasses set the class attributes and implement :meth:`forward`.

    Attributes
    ----------
    architecture : str
        Hugging Face class name written to ``config.json`` ``architectures``
        (so ``AutoModelFor...`` picks the right class).
    uses_pooler : bool
        Whether the encoder needs its pooler for this head.
    head_inputs : tuple of str
        Names of extra model inputs this head reads (the encoder never sees them).
    """

    architecture: ClassVar[str] = "BertModel"
    uses_pooler: ClassVar[bool] = True
    #: Inputs the head reads itself; :class:`BertTaskModel` keeps them from the encoder.
    head_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    @classmethod
    def configure(cls, config: BertConfig, **options: Any) -> BertConfig:
        """Adjust the config for this head before the model is built (default: no options)."""
        if options:
            raise ConfigError(
                f"Head {cls.__name__} takes no options. Got {sorted(options)}."
            )
        return config

    def prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Reshape model inputs before the encoder runs (default: unchanged)."""
        return inputs

    def tie_weights(self, bert: BertModel) -> None:
        """Share parameters with the encoder (the masked-LM decoder does)."""

    def forward(self, outputs: Output, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Return the head's outputs (``{"logits": ...}``) from the encoder's ``outputs``."""
        raise NotImplementedError


# --------------------------------------------------------------------- building blocks
class PredictionTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class LMPrediction(nn.Module):
    """Transform, then a decoder onto the vocabulary (weight tied to the word embeddings)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = PredictionTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))  # (b, s, vocab)


class _MLMHeads(nn.Module):
    """The ``cls`` block of the checkpoints: ``predictions`` and/or ``seq_relationship``."""

    def __init__(self, config: BertConfig, *, mlm: bool, nsp: bool):
        super().__init__()
        if mlm:
            self.predictions = LMPrediction(config)
        if nsp:
            self.seq_relationship = nn.Linear(config.hidden_size, 2)


def _lm_logits(predictions: nn.Module, hidden: torch.Tensor, inputs: dict) -> torch.Tensor:
    """Vocabulary logits at every position ``(b, s, V)``, or only where the optional
    ``masked_positions`` input ``(b, s)`` is true ``(n_true, V)``: the vocabulary
    projection dominates an MLM step, and the loss needs only the masked positions."""
    positions = inputs.get("masked_positions")
    if positions is not None:
        hidden = hidden[positions.to(device=hidden.device, dtype=torch.bool)]  # (n, H)
    return predictions(hidden)


class _LMHead(Head):
    """Shared by the heads that predict tokens: ties the decoder to the word embeddings."""

    def tie_weights(self, bert: BertModel) -> None:
        if self.config.tie_word_embeddings:
            self.cls.predictions.decoder.weight = bert.embeddings.word_embeddings.weight


def _dropout(config: BertConfig) -> Dropout:
    p = config.classifier_dropout
    return Dropout(config.hidden_dropout_prob if p is None else p)


def _configure_labels(cls, config: BertConfig, num_labels=None, labels=None) -> BertConfig:
    if labels is not None:
        labels = list(labels)
        if num_labels is not None and num_labels != len(labels):
            raise ConfigError(
                f"Head {cls.__name__}: num_labels={num_labels} disagrees with the "
                f"{len(labels)} names in labels={labels!r}. Pass one or make them agree."
            )
        config.set_labels(labels)
    elif num_labels is not None:
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
            raise ConfigError(
                f"Head {cls.__name__}: num_labels must be a positive integer. Got {num_labels!r}."
            )
        if num_labels != config.num_labels:
            config.set_labels(num_labels)
    return config


# --------------------------------------------------------------------- heads
class PreTrainingHead(_LMHead):
    """Masked LM plus next-sentence prediction (BERT's pretraining objective)."""

    architecture = "BertForPreTraining"
    uses_pooler = True
    head_inputs = ("masked_positions",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.cls = _MLMHeads(config, mlm=True, nsp=True)

    def forward(self, outputs, inputs):
        return {
            "prediction_logits": _lm_logits(self.cls.predictions, outputs.last_hidden_state, inputs),
            "seq_relationship_logits": self.cls.seq_relationship(outputs.pooler_output),
        }


class MaskedLMHead(_LMHead):
    """Vocabulary logits at every position (fill-mask), or at ``masked_positions`` only."""

    architecture = "BertForMaskedLM"
    uses_pooler = False
    head_inputs = ("masked_positions",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.cls = _MLMHeads(config, mlm=True, nsp=False)

    def forward(self, outputs, inputs):
        return {"logits": _lm_logits(self.cls.predictions, outputs.last_hidden_state, inputs)}


class CausalLMHead(MaskedLMHead):
    """Next-token logits from a decoder BERT (causal self-attention)."""

    architecture = "BertLMHeadModel"

    @classmethod
    def configure(cls, config: BertConfig, **options) -> BertConfig:
        config = super().configure(config, **options)
        config.is_decoder = True  # a causal LM attends to earlier tokens only
        return config


class NextSentenceHead(Head):
    """Two logits on the pooled output: 0 = B follows A, 1 = B is random."""

    architecture = "BertForNextSentencePrediction"

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.cls = _MLMHeads(config, mlm=False, nsp=True)

    def forward(self, outputs, inputs):
        return {"logits": self.cls.seq_relationship(outputs.pooler_output)}


class SequenceClassificationHead(Head):
    """Dropout and a linear layer on the pooled output (``num_labels`` = 1 for regression).

    Options: ``num_labels`` (int) or ``labels`` (list of names); default: from the config.
    """

    architecture = "BertForSequenceClassification"

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.dropout = _dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    @classmethod
    def configure(cls, config, num_labels=None, labels=None):
        return _configure_labels(cls, config, num_labels, labels)

    def forward(self, outputs, inputs):
        return {"logits": self.classifier(self.dropout(outputs.pooler_output))}


class TokenClassificationHead(SequenceClassificationHead):
    """Dropout and a linear layer on every token (NER tags)."""

    architecture = "BertForTokenClassification"
    uses_pooler = False

    def forward(self, outputs, inputs):
        return {"logits": self.classifier(self.dropout(outputs.last_hidden_state))}


class MultipleChoiceHead(Head):
    """One score per choice: inputs ``(batch, choices, seq)`` are run as ``batch*choices`` rows."""

    architecture = "BertForMultipleChoice"

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.dropout = _dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def prepare_inputs(self, inputs):
        reference = inputs.get("input_ids")
        if reference is None:
            reference = inputs.get("inputs_embeds")
        rank = 3 if inputs.get("input_ids") is not None else 4
        if reference is None or reference.dim() != rank:
            raise InputError(
                "The multiple_choice head takes inputs shaped (batch, choices, sequence"
                + (")." if rank == 3 else ", hidden).")
                + (f" Got {tuple(reference.shape)}." if reference is not None else "")
            )
        flat = dict(inputs)
        for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds"):
            value = inputs.get(name)
            if value is not None:
                flat[name] = value.reshape(-1, *value.shape[2:])
        return flat

    def forward(self, outputs, inputs):
        reference = inputs["input_ids"] if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
        num_choices = reference.shape[1]
        scores = self.classifier(self.dropout(outputs.pooler_output))  # (b*c, 1)
        return {"logits": scores.view(-1, num_choices)}


class QuestionAnsweringHead(Head):
    """Start and end logits of the answer span at every token."""

    architecture = "BertForQuestionAnswering"
    uses_pooler = False

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def forward(self, outputs, inputs):
        start, end = self.qa_outputs(outputs.last_hidden_state).unbind(dim=-1)  # (b, s) each
        return {"start_logits": start.contiguous(), "end_logits": end.contiguous()}


#: bertkit's own heads, by the names ``load_pretrained(head=...)`` accepts.
BUILTIN_HEADS: dict[str, type[Head]] = {
    "pretraining": PreTrainingHead,
    "masked_lm": MaskedLMHead,
    "next_sentence": NextSentenceHead,
    "sequence_classification": SequenceClassificationHead,
    "multiple_choice": MultipleChoiceHead,
    "token_classification": TokenClassificationHead,
    "question_answering": QuestionAnsweringHead,
    "causal_lm": CausalLMHead,
}


# --------------------------------------------------------------------- the task model
class BertTaskModel(nn.Module):
    """An encoder (``bert``) and a task head (``head``) as one module.

    ``forward`` takes the encoder's arguments and returns the encoder's
    :class:`~bertkit.modeling.Output` with the head's outputs added. The state
    dict keys are the Hugging Face ``BertFor*`` ones once the ``head.`` prefix is
    dropped (which :func:`bertkit.save_pretrained` does).

    Examples
    --------
    >>> import torch
    >>> from bertkit import BertConfig, BertTaskModel
    >>> from bertkit.heads import SequenceClassificationHead
    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> model = BertTaskModel(config, SequenceClassificationHead, "sequence_classification",
    ...                       num_labels=3).eval()
    >>> tuple(model(torch.tensor([[2, 5, 3]])).logits.shape)
    (1, 3)
    """

    def __init__(
        self,
        config: BertConfig,
        head_class: type[Head],
        head_name: str,
        *,
        attention: str = "sdpa",
        **head_options: Any,
    ):
        super().__init__()
        config = head_class.configure(config, **head_options)
        self.config = config
        self.head_name = head_name
        self.bert = BertModel(config, attention=attention, add_pooling_layer=head_class.uses_pooler)
        self.head = head_class(config)
        self.head.apply(self.bert._init_weights)
        for module in self.head.modules():  # zero the LM output bias, as BERT does
            if isinstance(module, LMPrediction):
                nn.init.zeros_(module.bias)
        self.head.tie_weights(self.bert)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs) -> Output:
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
        encoder_inputs = {name: value for name, value in self.head.prepare_inputs(inputs).items()
                          if name not in self.head.head_inputs}
        outputs = self.bert(**encoder_inputs)
        outputs.update(self.head(outputs, inputs))
        return outputs

    def set_attention(self, name: str) -> None:
        """Switch every layer to the attention backend registered as ``name``."""
        self.bert.set_attention(name)

    def save_pretrained(self, folder: str | Path, **kwargs) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (Hugging Face ``BertFor*`` layout)."""
        from .checkpoint import save_pretrained

        return save_pretrained(self, folder, **kwargs)
