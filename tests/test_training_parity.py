"""Fine-tuning follows transformers step by step.

With dropout off, the same initial weights and the same batches, ``fit`` must give the
losses of a transformers model trained the way ``Trainer`` trains it (its AdamW
parameter groups and linear schedule, gradient clipping at 1.0): the forward pass,
the loss, the backward pass, weight decay, clipping and the schedule all take part.
bertkit starts the warm-up one step earlier than transformers (its first step has a
learning rate above 0), so these runs use no warm-up; ``test_training.py`` checks the
schedule itself.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from estimator_fixtures import TINY_CONFIG, VOCAB, one_torch_thread  # noqa: F401

import bertkit
import bertkit.dropout
import bertkit.training._loop as loop
from bertkit.estimators import _fitting

transformers = pytest.importorskip("transformers")

HYPER = dict(learning_rate=3e-3, batch_size=4, n_epochs=2, weight_decay=0.01, warmup_ratio=0.0,
             max_grad_norm=1.0, max_length=32, random_state=0, device="cpu")
SENTENCES = ["good film", "awful movie", "the plot was very dull", "great acting and a fun plot",
             "bad film", "not a good movie", "the cat sat on the mat", "a dog ran", "fun", "dull film"]
LABELS = ["pos", "neg", "neg", "pos", "neg", "neg", "pos", "pos", "pos", "neg"]


def _tiny_checkpoint(folder, dropout: float):
    """The tiny model (seed 0) with its tokenizer, every dropout probability ``dropout``."""
    torch.manual_seed(0)
    config = bertkit.BertConfig(**{**TINY_CONFIG, "hidden_dropout_prob": dropout,
                                   "attention_probs_dropout_prob": dropout})
    bertkit.BertModel(config).save_pretrained(folder)
    bertkit.BertTokenizer.from_vocab(VOCAB).save(folder)
    return folder


@pytest.fixture(scope="module")
def dropout_free_checkpoint(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("tiny-no-dropout"), 0.0)


def _record_fit(monkeypatch, est, X, y):
    """Fit ``est`` on batches in input order; return its initial weights, each step's
    model inputs and outputs (a dict of tensors), and the targets ``fit`` trained on."""
    monkeypatch.setattr(loop, "train_batches", lambda lengths, size, rng, **kw: [
        np.arange(i, min(i + size, len(lengths))) for i in range(0, len(lengths), size)])
    start: dict = {}
    freeze = loop.freeze

    def keep_initial_weights(model, **kwargs):
        start.update(copy.deepcopy(model.state_dict()))
        freeze(model, **kwargs)

    monkeypatch.setattr(loop, "freeze", keep_initial_weights)
    steps: list[tuple[dict, dict]] = []
    forward = bertkit.BertTaskModel.forward

    def recording_forward(self, **inputs):
        out = forward(self, **inputs)
        if self.training:
            steps.append(({k: v.clone() for k, v in inputs.items() if torch.is_tensor(v)},
                          {k: v.detach().clone() for k, v in out.items() if torch.is_tensor(v)}))
        return out

    monkeypatch.setattr(bertkit.BertTaskModel, "forward", recording_forward)
    targets = []
    train = _fitting.fit

    def keep_targets(model, data, batch_targets, *args, **kwargs):
        targets.append(batch_targets)
        return train(model, data, batch_targets, *args, **kwargs)

    monkeypatch.setattr(_fitting, "fit", keep_targets)
    est.fit(X, y)
    return start, steps, targets[0]


def _replay_in_transformers(model, start, steps, targets, hyper, loss_of=None):
    """Train ``model`` from ``start`` on the recorded inputs as Trainer does; its losses.
    ``loss_of(model, inputs, target)`` (default: the model's own loss for ``labels``)."""
    model.load_state_dict({k.removeprefix("head."): v for k, v in start.items()})
    args = transformers.TrainingArguments(
        output_dir="unused", per_device_train_batch_size=hyper["batch_size"],
        learning_rate=hyper["learning_rate"], weight_decay=hyper["weight_decay"],
        warmup_ratio=hyper["warmup_ratio"], max_grad_norm=hyper["max_grad_norm"],
        lr_scheduler_type="linear", report_to="none", use_cpu=True,
    )
    trainer = transformers.Trainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=len(steps))
    model.train()
    losses = []
    for (inputs, _), target in zip(steps, targets, strict=True):
        loss = model(**inputs, labels=target).loss if loss_of is None else loss_of(model, inputs, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hyper["max_grad_norm"])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def _bertkit_losses(steps, targets):
    return [float(torch.nn.functional.cross_entropy(out["logits"], target))
            for (_, out), target in zip(steps, targets, strict=True)]


def test_classifier_fit_follows_transformers(dropout_free_checkpoint, monkeypatch):
    est = bertkit.BertClassifier(model=str(dropout_free_checkpoint), **HYPER)
    start, steps, _ = _record_fit(monkeypatch, est, SENTENCES, LABELS)
    codes = torch.as_tensor(np.searchsorted(est.classes_, LABELS))
    batches = [codes[i:i + HYPER["batch_size"]] for i in range(0, len(codes), HYPER["batch_size"])]
    targets = batches * HYPER["n_epochs"]
    assert len(steps) == len(targets) == 6
    model = transformers.BertForSequenceClassification.from_pretrained(
        dropout_free_checkpoint, num_labels=2, attn_implementation="eager")
    hf = _replay_in_transformers(model, start, steps, targets, HYPER)
    ours = _bertkit_losses(steps, targets)
    assert ours[-1] < ours[0] - 0.05  # it learns: the comparison is not between two flat lines
    np.testing.assert_allclose(ours, hf, rtol=0, atol=2e-5)
    trained = {k.removeprefix("head."): v for k, v in est.model_.state_dict().items()}
    for name, value in model.state_dict().items():
        # A key bias adds the same amount to all of a query's scores: its exact gradient
        # is 0, and Adam turns the rounding noise left in it into full-size steps.
        if not name.endswith("key.bias"):
            torch.testing.assert_close(trained[name], value, atol=1e-4, rtol=0, msg=name)


def test_multiple_choice_fit_follows_transformers(dropout_free_checkpoint, monkeypatch):
    prompts = ["the film was", "the movie was", "a cat", "the plot", "acting was", "a dog"]
    choices = [["good", "awful", "mat"], ["great", "dull", "ran"], ["sat", "film", "plot"],
               ["was dull", "sat", "ran"], ["great", "cat", "mat"], ["ran", "film", "acting"]]
    answers = [0, 1, 0, 0, 0, 0]
    X = list(zip(prompts, choices, strict=True))
    hyper = {**HYPER, "batch_size": 2}
    est = bertkit.BertMultipleChoice(model=str(dropout_free_checkpoint), **hyper)
    start, steps, _ = _record_fit(monkeypatch, est, X, answers)
    labels = torch.tensor(answers)
    targets = [labels[i:i + 2] for i in range(0, len(labels), 2)] * hyper["n_epochs"]
    assert len(steps) == len(targets) == 6
    assert steps[0][0]["input_ids"].shape[:2] == (2, 3)  # (questions, choices, tokens)
    model = transformers.BertForMultipleChoice.from_pretrained(dropout_free_checkpoint,
                                                              attn_implementation="eager")
    hf = _replay_in_transformers(model, start, steps, targets, hyper)
    ours = _bertkit_losses(steps, targets)
    assert ours[-1] < ours[0] - 0.05
    np.testing.assert_allclose(ours, hf, rtol=0, atol=2e-5)


def _span_loss(start_logits, end_logits, mask, target):
    """bertkit's question-answering loss: the mean of the start and end cross-entropies
    over each window's real tokens (transformers' own loss keeps padding in the softmax)."""
    pad = mask == 0
    return (torch.nn.functional.cross_entropy(start_logits.masked_fill(pad, -1e4), target[:, 0])
            + torch.nn.functional.cross_entropy(end_logits.masked_fill(pad, -1e4), target[:, 1])) / 2


def test_question_answerer_fit_follows_transformers(dropout_free_checkpoint, monkeypatch):
    contexts = ["the cat sat on the mat", "a dog ran", "the plot was very dull", "great acting and a fun plot",
                "the film was good", "not a good movie"]
    questions = ["who sat", "what ran", "how was the plot", "what was great", "what was good", "what was not"]
    answers = ["the cat", "a dog", "very dull", "acting", "the film", "a good movie"]
    X = list(zip(questions, contexts, strict=True))
    y = [{"text": a, "answer_start": c.index(a)} for a, c in zip(answers, contexts, strict=True)]
    hyper = {**HYPER, "batch_size": 2}
    est = bertkit.BertQuestionAnswerer(model=str(dropout_free_checkpoint), **hyper)
    start, steps, positions = _record_fit(monkeypatch, est, X, y)
    assert est.n_windows_ == len(X)  # one window each: batches of questions are batches of windows
    targets = [positions[i:i + 2] for i in range(0, len(X), 2)] * hyper["n_epochs"]
    assert len(steps) == len(targets) == 6
    assert all((target > 0).all() for target in targets)  # every answer is in its window, not at [CLS]
    ours = [float(_span_loss(out["start_logits"], out["end_logits"], inputs["attention_mask"], target))
            for (inputs, out), target in zip(steps, targets, strict=True)]
    model = transformers.BertForQuestionAnswering.from_pretrained(dropout_free_checkpoint,
                                                                  attn_implementation="eager")

    def loss_of(model, inputs, target):
        out = model(**inputs)
        return _span_loss(out.start_logits, out.end_logits, inputs["attention_mask"], target)

    hf = _replay_in_transformers(model, start, steps, targets, hyper, loss_of)
    assert ours[-1] < ours[0] - 0.05
    np.testing.assert_allclose(ours, hf, rtol=0, atol=2e-5)
    # and the answers it trained on are the tokens transformers' offsets give
    tok = transformers.BertTokenizerFast(vocab_file=None, tokenizer_file=str(dropout_free_checkpoint / "tokenizer.json"))
    enc = tok(questions, contexts, return_offsets_mapping=True)
    for i, answer in enumerate(y):
        first, last = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        sequence, offsets = enc.sequence_ids(i), enc["offset_mapping"][i]
        want = (next(j for j, s in enumerate(sequence) if s == 1 and offsets[j][1] > first),
                max(j for j, s in enumerate(sequence) if s == 1 and offsets[j][0] < last))
        assert tuple(positions[i].tolist()) == want, (i, answer)


@pytest.fixture(scope="module")
def dropout_checkpoint(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("tiny-dropout"), 0.1)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_multiple_choice_training_draws_the_dropout_masks_transformers_draws(dropout_checkpoint,
                                                                             attn_implementation,
                                                                             monkeypatch):
    """Dropout on, the same seed, PyTorch's masks (``bertkit.dropout.TORCH_MASKS``):
    bertkit's multiple-choice model gives transformers'
    training-mode logits and gradients. Both draw the same random numbers in the same
    order for the same places, so the model computes transformers' function in training
    mode too; with bertkit's own masks only the random numbers differ."""
    monkeypatch.setattr(bertkit.dropout, "TORCH_MASKS", True)
    hf = transformers.BertForMultipleChoice.from_pretrained(
        dropout_checkpoint, attn_implementation=attn_implementation)
    with pytest.warns(UserWarning, match="newly initialised"):  # the head: copied below
        ours = bertkit.load_pretrained(dropout_checkpoint, head="multiple_choice")
    ours.load_state_dict({(k if k.startswith("bert.") else "head." + k): v
                          for k, v in hf.state_dict().items()})
    hf.train()
    ours.train()
    torch.manual_seed(0)
    ids = torch.randint(5, TINY_CONFIG["vocab_size"], (3, 4, 12))
    mask = torch.ones_like(ids)
    mask[:, :, 9:] = 0
    mask[0, 1, 5:] = 0
    types = torch.zeros_like(ids)
    types[..., 6:] = 1
    # The full last layer: fit computes its first positions only, which draws fewer
    # random numbers there (the same noise: test_fast_paths.py checks it).
    fit_kwargs = {}
    runs = {}
    for name, call in (("hf", lambda: hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits),
                       ("ours", lambda: ours(input_ids=ids, attention_mask=mask, token_type_ids=types,
                                             **fit_kwargs)["logits"])):
        torch.manual_seed(7)
        logits = call()
        logits.sum().backward()
        runs[name] = logits.detach()
    torch.testing.assert_close(runs["ours"], runs["hf"], rtol=0, atol=1e-5)
    grads = {n: p.grad for n, p in hf.named_parameters()}
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, grads[name.removeprefix("head.")], rtol=0, atol=1e-5,
                                   msg=name)
    torch.manual_seed(8)
    again = ours(input_ids=ids, attention_mask=mask, token_type_ids=types, **fit_kwargs)["logits"]
    assert not torch.allclose(again, runs["ours"], atol=1e-3)  # dropout really is on
