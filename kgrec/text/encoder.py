r"""A Hugging Face transformer that turns texts into one vector each, by mean pooling.

For a text tokenized into :math:`T` positions with hidden states
:math:`\mathbf{h}_1, \dots, \mathbf{h}_T \in \mathbb{R}^d` (the transformer's last layer) and
attention mask :math:`m_t \in \{0, 1\}` (0 on padding), the text vector is

.. math::
    \mathbf{e} = \frac{\sum_{t=1}^{T} m_t \, \mathbf{h}_t}{\max\left(\sum_{t=1}^{T} m_t,\ \epsilon\right)},
    \qquad
    \hat{\mathbf{e}} = \frac{\mathbf{e}}{\max\left(\lVert \mathbf{e} \rVert_2,\ \epsilon\right)}

(the second step only with ``normalize=True``), as in Sentence-BERT (Reimers & Gurevych,
EMNLP 2019). Padding never enters the sum, so a text's vector does not depend on what else is
in its batch.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm  # terminal bars only (tqdm.auto warned in a Jupyter kernel without ipywidgets)

from kgrec.errors import ConfigError, KgrecError
from kgrec.text.config import DEFAULT_MODEL, TextConfig
from kgrec.text.resolve import model_fingerprint, resolve_model

POOLING = "mean"
EPS = 1e-9
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_texts(texts: Sequence[object]) -> None:
    """Refuse what no tokenizer can read: a non-string, or a lone UTF-16 surrogate (what
    ``errors="surrogateescape"`` makes of bytes that are not UTF-8, e.g. in ``sys.argv``).

    Raises:
        ConfigError: naming the first bad text by its position.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(f"texts must be strings; item {i} is {type(text).__name__}")
        bad = _SURROGATE.search(text)
        if bad:
            raise ConfigError(
                f"text {i} holds a lone surrogate {bad.group()!r}, which is not Unicode text (bytes that are not "
                "UTF-8?): decode the source as UTF-8, e.g. with errors='replace'"
            )


@contextmanager
def _no_hf_progress_bars() -> Iterator[None]:
    """transformers draws a bar per load ("Loading weights") and save ("Writing model shards"):
    noise next to kgrec's own bars."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    r"""Masked mean over positions: :math:`\sum_t m_t \mathbf{h}_t / \max(\sum_t m_t, \epsilon)`.

    Args:
        hidden: ``(B, T, d)`` last hidden states.
        attention_mask: ``(B, T)``, 1 on tokens and 0 on padding.

    Returns:
        ``(B, d)``.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    total = (hidden * mask).sum(dim=1)  # (B, d)
    count = mask.sum(dim=1).clamp_min(EPS)  # (B, 1)
    return total / count


class TextTruncatedWarning(UserWarning):
    """Some texts reached the encoder's token limit, where they are cut (their start kept)."""


class TextEncoder(nn.Module):
    r"""Tokenizer + transformer + mean pooling (see the module docstring for the formula).

    Frozen and in eval mode after construction: :meth:`encode` is inference only. For joint
    fine-tuning, :meth:`unfreeze_top_layers` makes the top layers trainable and
    :meth:`forward` is the differentiable path.

    Args:
        model: a Hugging Face model id or a local folder; the default model is verified and
            loaded offline (:func:`~kgrec.text.resolve_model`). Weights are read from
            safetensors only.
        max_length: longest token sequence (also capped by the model's own limit).
        normalize: unit-L2-normalize the pooled vectors.
        device: ``None`` picks CUDA when available, else CPU.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        max_length: int = 256,
        normalize: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        from safetensors import SafetensorError
        from transformers import AutoModel, AutoTokenizer

        source = resolve_model(model)
        local = isinstance(source, Path)  # a folder: never ask the hub
        if local and not (source / "config.json").is_file():
            raise KgrecError(
                f"text model {model!r}: {source} is not a model folder (no config.json): give a folder written by "
                "save_pretrained, e.g. a run's text-encoder/, or a Hugging Face model id"
            )
        try:
            with _no_hf_progress_bars():
                self.tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local)
                transformer = AutoModel.from_pretrained(str(source), use_safetensors=True, local_files_only=local)
        except (OSError, ValueError, SafetensorError) as error:
            reason = " ".join(str(error).split())  # transformers' messages span lines; the CLI prints one
            raise KgrecError(f"could not load text model {model!r} from {source}: {reason}") from error
        if len(self.tokenizer) <= len(self.tokenizer.all_special_tokens):
            # transformers falls back to a tokenizer of special tokens only: every word would be [UNK]
            raise KgrecError(
                f"text model {model!r}: {source} has no tokenizer (no tokenizer.json or vocab.txt): copy the "
                "tokenizer files of the model it was trained from into it"
            )
        self.transformer = transformer.float()
        self.model_name = model
        self.source = source.absolute() if local else source  # a relative folder stays this one after a chdir
        limits = [max_length, getattr(self.transformer.config, "max_position_embeddings", None)]
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and tokenizer_limit < 1_000_000:
            limits.append(tokenizer_limit)
        self.max_length = min(v for v in limits if isinstance(v, int))
        self.normalize = normalize
        self._fingerprint: str | None = None
        self.weights_changed = False  # set once trained or loaded: the weights may differ from the files
        self.requires_grad_(False)
        self.eval()
        self.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    @classmethod
    def from_config(cls, config: TextConfig) -> TextEncoder:
        """An encoder for ``config.model`` / ``max_length`` / ``normalize`` / ``device``."""
        return cls(
            config.model, max_length=config.max_length, normalize=config.normalize, device=config.device
        )

    @property
    def dim(self) -> int:
        """Size of a text vector (384 for the default model)."""
        return int(self.transformer.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def fingerprint(self) -> str:
        """Identifies the weights and tokenizer (see :func:`~kgrec.text.model_fingerprint`) of
        the folder the encoder was loaded from (a relative ``model`` named another folder, or
        none, once the working folder changed)."""
        if self._fingerprint is None:
            local = isinstance(self.source, Path) and self.model_name != DEFAULT_MODEL
            self._fingerprint = model_fingerprint(str(self.source) if local else self.model_name)
        return self._fingerprint

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask``, ``(B, T)`` on the encoder's device, padded to
        the longest text of the batch and truncated at ``max_length``."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text vectors ``(B, dim)`` from token ids ``(B, T)``; differentiable (training path)."""
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # (B, T, d)
        pooled = mean_pool(hidden, attention_mask)  # (B, d)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1, eps=EPS)
        return pooled

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> torch.Tensor:
        """Vectors ``(N, dim)`` float32 on the CPU for ``texts``, in their order.

        Runs under :func:`torch.inference_mode` in eval mode (the previous mode is restored).
        Texts are batched longest first so that each batch pads little. Texts that reach
        ``max_length`` tokens are cut there, their start kept, and a :class:`TextTruncatedWarning`
        says how many (it was silent: a long description put first in the template pushed the
        columns after it out of the text).
        """
        texts = list(texts)
        check_texts(texts)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)  # a normal tensor, usable by autograd
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        was_training = self.training
        self.eval()
        try:
            with (
                torch.inference_mode(),
                tqdm(total=len(texts), desc="encoding texts", unit="text", disable=None if progress else True) as bar,  # a terminal only
            ):
                cut = 0
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch = self.tokenize([texts[i] for i in rows])
                    cut += int((batch["attention_mask"].sum(1) >= self.max_length).sum())
                    out[rows] = self(**batch).float().cpu()
                    bar.update(len(rows))
        finally:
            self.train(was_training)
        if cut:
            warnings.warn(
                f"{cut:,} of {len(texts):,} texts reach the limit of {self.max_length} tokens and are cut there, their "
                "start kept: put the columns that matter first in text.template, or raise text.max_length (up to the "
                "model's own limit)", TextTruncatedWarning, stacklevel=2,
            )  # fmt: skip
        return out

    def save(self, folder: str | Path) -> None:
        """Write the transformer (safetensors) and its tokenizer to ``folder``, which can then be
        loaded as ``TextEncoder(str(folder))``."""
        with _no_hf_progress_bars():
            self.transformer.save_pretrained(folder, safe_serialization=True)
            self.tokenizer.save_pretrained(folder)

    def unfreeze_top_layers(self, n: int) -> list[nn.Parameter]:
        """Make the top ``n`` transformer layers trainable (the rest frozen); return them.

        Final norms that follow the layer stack in some architectures (``ln_f`` ...) are
        unfrozen with the top layer. BERT's pooler is left frozen: mean pooling does not use
        it, so it would get no gradient (and trip DDP's unused-parameter check).
        ``n = 0`` freezes everything again. Meant for joint fine-tuning on a GPU.

        Raises:
            ConfigError: ``n`` is negative or larger than the number of layers.
        """
        prefix, layers = self._layer_stack()
        if not isinstance(n, int) or not 0 <= n <= len(layers):
            raise ConfigError(
                f"finetune_layers must be between 0 and {len(layers)} for {self.model_name}, got {n!r}"
            )
        self.requires_grad_(False)
        if n == 0:
            return []
        self.weights_changed = True
        for layer in layers[len(layers) - n :]:
            layer.requires_grad_(True)
        for name, parameter in self.transformer.named_parameters():
            top = name.split(".")[0]
            after_stack = (
                not name.startswith(prefix + ".") and "embed" not in top and top not in ("wte", "wpe")
            )
            if after_stack and top != "pooler" and ("norm" in name or name.startswith("ln_f")):
                parameter.requires_grad_(True)
        return self.trainable_parameters()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        """Loading a state dict (directly or through a parent module) marks the weights changed."""
        self.weights_changed = True
        super()._load_from_state_dict(*args, **kwargs)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that currently require a gradient."""
        return [p for p in self.parameters() if p.requires_grad]

    def _layer_stack(self) -> tuple[str, nn.ModuleList]:
        """The transformer's list of layers (``encoder.layer`` in BERT) and its name."""
        return layer_stack(self.transformer, self.model_name)

    def extra_repr(self) -> str:
        return (
            f"model={self.model_name!r}, dim={self.dim}, max_length={self.max_length}, "
            f"pooling={POOLING}, normalize={self.normalize}"
        )


def layer_stack(transformer: nn.Module, name: str) -> tuple[str, nn.ModuleList]:
    """The list of layers of a Hugging Face ``transformer`` (``encoder.layer`` in BERT and MPNet,
    ``transformer.layer`` in DistilBERT, ``layers`` in ModernBERT) and its dotted name: the
    largest ``ModuleList`` of ``config.num_hidden_layers`` modules. ``name``: the model, for the
    error.

    Raises:
        KgrecError: there is none (ALBERT shares one layer across its depth).
    """
    count = getattr(transformer.config, "num_hidden_layers", None)
    stacks = [
        (path, module)
        for path, module in transformer.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) > 0 and (count is None or len(module) == count)
    ]
    if not stacks:
        raise KgrecError(f"cannot find the layer stack of {name} to unfreeze")
    return max(stacks, key=lambda s: sum(p.numel() for p in s[1].parameters()))


def finetunable_layers(model: str) -> int | None:
    """How many layers :meth:`TextEncoder.unfreeze_top_layers` can train in ``model`` (a model
    id or folder, as ``text.model``), read from its config alone: the transformer is built on
    the meta device, without reading its weights. ``None`` when it cannot be built so (its
    loading then says why, or :meth:`~TextEncoder.unfreeze_top_layers` checks the count).

    Raises:
        KgrecError: the model has no layer stack, or is a folder that does not exist.
    """
    from transformers import AutoConfig, AutoModel

    source = resolve_model(model)
    try:
        config = AutoConfig.from_pretrained(str(source), local_files_only=isinstance(source, Path))
        with torch.device("meta"):
            transformer = AutoModel.from_config(config)
    except Exception:  # an unreadable config, a model that needs its weights to be built: loading it says why
        return None
    return len(layer_stack(transformer, model)[1])
