"""``from_pretrained``: a fine-tuned checkpoint as a ready estimator, without training.

A folder saved from ``BertForSequenceClassification``, ``BertForTokenClassification``,
``BertForQuestionAnswering`` or ``BertForMultipleChoice`` (by transformers, or by a
bertkit estimator's ``save``) already holds a trained task head. The estimator class
loads it and reads what ``fit`` would have learned from the labels out of
``config.json`` (``id2label``, ``problem_type``); see each class's ``_adopt_config``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .._errors import InputError
from ..checkpoint import missing_head_weights, read_state_dict
from ..config import BertConfig
from ._base import saved_fitted
from ._fitting import start_fit

__all__ = ["FromPretrained", "head_problem"]

#: The fine-tuned task architectures a checkpoint's config may name, and the estimator
#: for each. Their heads share tensor names (``classifier.*``), so the name is what tells
#: them apart. (Pretraining architectures are not listed: a BertForMaskedLM checkpoint
#: such as bert-base-uncased also carries NSP weights, and its name settles nothing.)
ESTIMATOR_OF = {
    "BertForSequenceClassification": "BertClassifier (or BertRegressor for a regression head)",
    "BertForTokenClassification": "BertTokenClassifier",
    "BertForQuestionAnswering": "BertQuestionAnswerer",
    "BertForMultipleChoice": "BertMultipleChoice",
}


def head_problem(config: BertConfig) -> str:
    """What a sequence head computes, as transformers reads its config: ``problem_type``
    when set, else ``"regression"`` for one output and single-label classification."""
    problem = config.extras.get("problem_type")
    if problem:
        return str(problem)
    return "regression" if config.num_labels == 1 else "single_label_classification"


class FromPretrained:
    """Mixin of the estimators that can predict with a checkpoint's own trained head."""

    #: How this class's fit is called, for messages.
    _fit_call = "fit(X, y)"
    #: Architectures whose checkpoints carry this head, for messages (default: the head's own).
    _trained_by: tuple[str, ...] = ()

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike = "default", **params: Any):
        """An estimator ready to predict with a fine-tuned checkpoint's task head (no fit).

        Parameters
        ----------
        model : str or path, default="default"
            A local Hugging Face-format folder saved from the matching ``BertFor*`` model
            (by transformers' ``save_pretrained`` or by a bertkit estimator's ``save``).
        **params
            Other parameters of the estimator (``max_length``, ``batch_size``, ``device``...).

        Returns
        -------
        estimator
            Fitted: ``model_`` and ``tokenizer_`` loaded, ``history_`` empty and
            ``best_epoch_`` None; the label attributes are read from ``config.json``
            (from ``bertkit.json`` too in a folder this estimator class saved, so label
            types, target scaling and thresholds come back as they were).
            ``fit`` on it starts again from the checkpoint, as for any estimator.

        Raises
        ------
        bertkit.InputError
            If the checkpoint has no trained head of this task (a plain encoder such as
            the default model, whose head would be random: call ``fit`` instead), or its
            ``config.json`` names the architecture of another task.
        """
        est = cls(model=model, **params)
        est._validate_params()
        start = start_fit(est)
        config = BertConfig.from_json_file(start.folder)
        name = cls.__name__
        expected = est._architecture()
        saved = [a for a in config.extras.get("architectures") or [] if a in ESTIMATOR_OF]
        if saved and expected not in saved:
            raise InputError(
                f"{name}.from_pretrained: {start.folder} holds a {saved[0]} checkpoint (its "
                f"config.json says so), not a {expected}. Load it with "
                f"{ESTIMATOR_OF[saved[0]]}, or fine-tune a {name} on it with "
                f"{name}(model=...).fit(X, y)."
            )
        with warnings.catch_warnings(record=True) as caught:  # said again below, unless refused
            warnings.simplefilter("always")
            network = est._new_model(start.folder)
        missing = missing_head_weights(network, read_state_dict(start.folder))
        if missing:
            raise InputError(
                f"{name}.from_pretrained: the checkpoint in {start.folder} has no trained "
                f"{expected} head ({', '.join(missing)} missing), so its predictions would be "
                f"random. Fine-tune one with {name}(model=...).{est._fit_call}, or pass a folder "
                f"saved from {' or '.join(cls._trained_by or (expected,))}."
            )
        est.tokenizer_ = start.tokenizer
        est._adopt_config(config)
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        # A folder this class saved also holds what config.json cannot: label types,
        # target scaling, thresholds. Take those as save wrote them.
        for key, value in saved_fitted(start.folder, name).items():
            if key not in ("history_", "best_epoch_"):
                setattr(est, key, value)
        est.model_ = network.eval()
        est.history_ = []
        est.best_epoch_ = None
        return est

    def _architecture(self) -> str:
        from .. import plugins

        return plugins.get("head", self._head).architecture

    def _adopt_config(self, config: BertConfig) -> None:  # pragma: no cover - every user overrides
        """Set the fitted attributes ``fit`` learns from labels, from the checkpoint's config
        (``tokenizer_`` is set already); raise InputError for a checkpoint of another kind."""
        raise NotImplementedError
