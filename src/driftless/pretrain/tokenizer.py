"""A byte-pair-encoding tokenizer for the tiny CLIP, trained with Hugging Face ``tokenizers`` on the
world's captions and class names, and written in the ``CLIPTokenizer`` format (vocab.json +
merges.txt, words ending in ``</w>``), so it loads like any CLIP tokenizer.

The vocabulary is built as CLIP's is: every printable ASCII character, alone and as a word ending,
then one token per learned merge, then the two special tokens. Any text therefore tokenizes (rare
words fall back to characters); nothing maps to the unknown token.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import CLIPTokenizer

# CLIPTokenizer's own pre-tokenization (letters runs, single digits, punctuation runs), lower-cased
_CLIP_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_PRINTABLE = [chr(c) for c in range(33, 127)]


def train_clip_tokenizer(
    texts: Iterable[str], vocab_size: int = 1024, max_length: int = 32
) -> CLIPTokenizer:
    """Learn BPE merges on ``texts`` and return a ``CLIPTokenizer`` using them."""
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="isolated", invert=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, initial_alphabet=_PRINTABLE,
        end_of_word_suffix="</w>", show_progress=False, special_tokens=[],
    )  # fmt: skip
    bpe.train_from_iterator(texts, trainer)
    merges = json.loads(bpe.to_str())["model"]["merges"]
    pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    vocab: dict[str, int] = {}
    for token in [*_PRINTABLE, *(c + "</w>" for c in _PRINTABLE)]:
        vocab.setdefault(token, len(vocab))
    kept = []
    for a, b in pairs:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            kept.append((a, b))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in kept) + "\n")
        return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=max_length)


def write_vocab_files(directory: Path) -> None:
    """Write ``vocab.json`` and ``merges.txt`` next to the ``tokenizer.json`` in ``directory``, so that
    every transformers version (the older slow ``CLIPTokenizer`` reads only these) loads it."""
    directory = Path(directory)
    model = json.loads((directory / "tokenizer.json").read_text())["model"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    (directory / "vocab.json").write_text(json.dumps(model["vocab"]))
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n"
    )
