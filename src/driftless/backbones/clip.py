"""A :class:`~driftless.backbones.base.Backbone` on ``transformers.CLIPModel``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer, PreTrainedTokenizerBase

from driftless.backbones.preprocess import ImagePreprocess
from driftless.errors import DataError, MissingModelError


class CLIPBackbone:
    """CLIP through Hugging Face ``transformers``: image and text towers, their projections and the
    learned logit scale. ``model`` is the ``CLIPModel``; ``vision`` and ``text`` its towers, for
    methods that adapt blocks or drive the text transformer with their own token embeddings."""

    def __init__(
        self,
        model: CLIPModel,
        tokenizer: PreTrainedTokenizerBase,
        preprocess: ImagePreprocess,
        name: str,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.name = name
        self.precision = "32-true"
        self._fingerprint: str | None = None

    # -- the model's parts -------------------------------------------------------------------
    @property
    def vision(self) -> nn.Module:
        """The vision tower (``CLIPVisionTransformer``)."""
        return self.model.vision_model

    @property
    def text(self) -> nn.Module:
        """The text tower (``CLIPTextTransformer``)."""
        return self.model.text_model

    @property
    def embed_dim(self) -> int:
        """Size of the shared embedding space (the projections' output)."""
        return int(self.model.config.projection_dim)

    @property
    def logit_scale(self) -> float:
        """``exp`` of the learned logit scale (100 for OpenAI CLIP)."""
        return float(self.model.logit_scale.detach().exp())

    @property
    def max_text_length(self) -> int:
        """Longest token sequence the text tower accepts."""
        return int(self.model.config.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> CLIPBackbone:
        """Move the model; returns self."""
        self.model.to(device)
        return self

    def set_precision(self, precision: str) -> CLIPBackbone:
        """Compute in a Lightning precision: ``bf16-true`` casts the weights to bfloat16;
        ``bf16-mixed``/``16-mixed`` keep fp32 weights and encode under autocast. Part of the
        fingerprint (other than ``32-true``), so features of different precisions never mix."""
        if precision not in _AUTOCAST and precision not in _WEIGHT_DTYPE and precision != "32-true":
            raise ValueError(f"unknown precision {precision!r}")
        if precision in _WEIGHT_DTYPE:
            self.model.to(_WEIGHT_DTYPE[precision])
        self.precision = precision
        self._fingerprint = None
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _AUTOCAST.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def fingerprint(self) -> str:
        """sha256 of the architecture (config), the preprocessing, the compute precision (unless
        fp32) and every weight, computed once."""
        if self._fingerprint is None:
            architecture = _architecture(self.model.config.to_dict())
            digest = hashlib.sha256(json.dumps(architecture, sort_keys=True, default=str).encode())
            digest.update(repr(self.preprocess).encode())
            if self.precision != "32-true":
                digest.update(f"precision={self.precision}".encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                digest.update(key.encode())
                tensor = tensor.detach().cpu().contiguous()
                if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: its exact fp32 values
                    tensor = tensor.float()
                digest.update(tensor.numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- encoding ----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Texts → padded, truncated token ids and attention mask on the model's device."""
        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in tokens.items()}

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels (B, 3, H, W) → unnormalized image embeddings (B, embed_dim)."""
        with self._autocast():
            pooled = self.model.vision_model(pixel_values=pixels.to(self.device)).pooler_output
            return self.model.visual_projection(pooled)

    def encode_token_ids(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Token ids → unnormalized text embeddings (N, embed_dim)."""
        with self._autocast():
            pooled = self.model.text_model(
                input_ids=input_ids, attention_mask=attention_mask
            ).pooler_output
            return self.model.text_projection(pooled)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Texts → unnormalized text embeddings (N, embed_dim), in batches."""
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start : start + batch_size])
            out.append(self.encode_token_ids(tokens["input_ids"], tokens["attention_mask"]))
        if not out:
            return torch.empty(0, self.embed_dim, device=self.device)
        return torch.cat(out)

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write model, tokenizer and preprocessing so that :func:`load_backbone` reads them back."""
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        self.preprocess.save_pretrained(path)


# Lightning precisions: autocast dtype of the mixed ones, weight dtype of the "-true" ones
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
_WEIGHT_DTYPE = {"bf16-true": torch.bfloat16}

# config keys that record where or how a model was saved, not what it computes
_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "dtype",
    "torch_dtype",
    "architectures",
    "transformers_version",
    "_commit_hash",
    "_attn_implementation_autoset",
}


def _architecture(config: dict) -> dict:
    return {
        k: _architecture(v) if isinstance(v, dict) else v
        for k, v in config.items()
        if k not in _VOLATILE_CONFIG_KEYS
    }


CHAR_TOKENIZER_DIR = Path(__file__).parent / "assets" / "char-tokenizer"
#: the image processor config of the random test models (CLIP's, at 32 px)
TINY_RANDOM_DIR = Path(__file__).parent / "assets" / "tiny-random"


def char_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer (printable ASCII, lower-cased) for random test models."""
    return CLIPTokenizer(
        str(CHAR_TOKENIZER_DIR / "vocab.json"), str(CHAR_TOKENIZER_DIR / "merges.txt")
    )


def tiny_random_clip(seed: int = 0, image_size: int = 32, embed_dim: int = 32) -> CLIPBackbone:
    """A randomly initialised small CLIP (2+2 layers, width 64, patch 8) with the character
    tokenizer: the model tests run on. Deterministic in ``seed``."""
    tokenizer = char_tokenizer()
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=embed_dim,
    )
    generator_state = torch.random.get_rng_state()
    try:  # weight init draws from the global generator: seed it, then put it back
        torch.manual_seed(seed)
        model = CLIPModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    preprocess = ImagePreprocess.from_pretrained_dir(TINY_RANDOM_DIR, image_size)
    if (
        preprocess.crop != image_size
    ):  # the shipped processor is for 32 px; another size gets CLIP's
        preprocess = ImagePreprocess(image_size, image_size)
    return CLIPBackbone(model, tokenizer, preprocess, f"tiny-random-{seed}")


#: weight files ``from_pretrained`` reads from a directory (any one of them will do)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(source: str) -> bool:
    """Whether ``source`` reads as a Hugging Face id (``org/name``) rather than a path."""
    return bool(_HUB_ID.match(source)) and not source.startswith((".", "~"))


def check_model_directory(path: Path) -> None:
    """MissingModelError unless ``path`` is a directory holding a config and weights."""
    if not path.is_dir():
        raise MissingModelError(
            f"backbone: {path} is a file, not a model directory; pass the directory written by "
            "CLIPModel.save_pretrained (config.json, model.safetensors, tokenizer files)"
        )
    if not (path / "config.json").is_file():
        raise MissingModelError(
            f"backbone: {path} exists but holds no config.json; expected a directory written by "
            "CLIPModel.save_pretrained (config.json, model.safetensors, tokenizer files)"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise MissingModelError(
            f"backbone: {path} holds config.json but no weights (model.safetensors); copy the "
            "weights file there, or save the model again with CLIPModel.save_pretrained"
        )


def missing_model_message(source: str) -> str:
    """What to say when ``source`` is neither a local directory nor in the Hugging Face cache."""
    if not looks_like_hub_id(source):
        return (
            f"backbone: directory {Path(source).expanduser()} does not exist; pass a directory "
            "written by CLIPModel.save_pretrained, or a Hugging Face id such as "
            "openai/clip-vit-base-patch16"
        )
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    return (
        f"backbone {source!r} not found: no local directory of that name and no copy in the "
        f"Hugging Face cache ({cache}). Get it with `hf download {source}` on a machine with "
        "network access (and copy the cache here), or save it with "
        "CLIPModel.save_pretrained(DIR) and pass --backbone DIR; or pass --download to fetch it now."
    )


def local_model_directory(source: str) -> Path | None:
    """The model directory ``source`` names (checked to hold a config and weights), or None when
    it names a Hugging Face id instead; MissingModelError when it is neither."""
    path = Path(source).expanduser()
    if path.exists():
        check_model_directory(path)
        return path
    if not looks_like_hub_id(source):
        raise MissingModelError(missing_model_message(source))
    return None


def load_clip_pretrained(source: str, allow_download: bool = False) -> CLIPBackbone:
    """Load a ``save_pretrained`` directory, or a Hugging Face id from the local cache (or the Hub
    when ``allow_download``). A missing model raises :class:`MissingModelError` saying where it
    was looked for and how to get it; an unreadable weights file says which file and why."""
    path = Path(source).expanduser()
    directory = local_model_directory(source)
    location = source if directory is None else str(directory)
    local_only = directory is not None or not allow_download
    try:
        model = CLIPModel.from_pretrained(location, local_files_only=local_only)
        tokenizer = CLIPTokenizer.from_pretrained(location, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        if path.exists():
            raise MissingModelError(
                f"backbone: cannot load {path} ({type(exc).__name__}: {_first_line(exc)}); check "
                "that it was written by CLIPModel.save_pretrained with its tokenizer files"
            ) from exc
        raise MissingModelError(
            f"{missing_model_message(source)} ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    except Exception as exc:  # safetensors' SafetensorError and kin: a damaged weights file
        where = path if path.exists() else source
        raise DataError(
            f"backbone {where}: its weights file cannot be read ({type(exc).__name__}: "
            f"{_first_line(exc)}); it is truncated or corrupt: download it again (`hf download "
            "<id> --local-dir DIR`) or save the model again with CLIPModel.save_pretrained"
        ) from exc
    preprocess = ImagePreprocess.from_pretrained_dir(
        location, model.config.vision_config.image_size, local_files_only=local_only
    )
    return CLIPBackbone(model, tokenizer, preprocess, source)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
