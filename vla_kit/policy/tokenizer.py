"""A word-level tokenizer for task instructions.

The reference policy's instructions come from a small, closed set of templates ("pick up the red
cube", "push the blue cube to the left"), so whole words are the right unit: the vocabulary is a
few dozen entries, every id means something a person can read, and a word the policy never saw is
reported by name instead of being split into sub-words that hide it.

Text is lowercased and split into runs of word characters, with every punctuation mark a token of
its own. Id 0 is ``<pad>`` and id 1 is ``<unk>``; the remaining words follow in sorted order, so
the same instructions always give the same ids, whatever order they arrive in. The vocabulary is
stored as a plain dict inside ``policy.json`` (:meth:`Tokenizer.to_dict`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vla_kit.errors import InputError

__all__ = ["Tokenizer", "PAD", "UNK", "PAD_ID", "UNK_ID", "split_words"]

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1
_KIND = "word"
# A word is a run of letters/digits/underscores; anything else that is not space stands alone.
_TOKEN = re.compile(r"\w+|[^\w\s]")


def split_words(text: str) -> list[str]:
    """Lowercase ``text`` and split it into words and single punctuation marks.

    >>> split_words("Pick up the RED cube, please.")
    ['pick', 'up', 'the', 'red', 'cube', ',', 'please', '.']
    """
    return _TOKEN.findall(text.lower())


class Tokenizer:
    """Maps words to ids and back.

    Args:
        vocab: every token, by id; must start with ``<pad>``, ``<unk>`` and hold no duplicates.

    Raises:
        InputError: the vocabulary is malformed.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        vocab = list(vocab)
        if vocab[:2] != [PAD, UNK]:
            raise InputError("tokenizer.vocab", f"must start with {PAD!r}, {UNK!r}; got {vocab[:2]}")
        if not all(isinstance(w, str) and w for w in vocab):
            raise InputError("tokenizer.vocab", "every entry must be a non-empty string")
        duplicates = sorted(w for w, n in Counter(vocab).items() if n > 1)
        if duplicates:
            raise InputError("tokenizer.vocab", f"duplicate entries: {duplicates}")
        self.vocab: tuple[str, ...] = tuple(vocab)
        self._ids = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def build(cls, instructions: Iterable[str], *, min_count: int = 1) -> "Tokenizer":
        """A vocabulary of every word seen at least ``min_count`` times in ``instructions``.

        Args:
            instructions: the training instructions (repeats count towards ``min_count``).
            min_count: rarer words are left out and will encode as ``<unk>``.

        Returns:
            The tokenizer; words after the two special tokens are sorted, so the ids do not
            depend on the order of ``instructions``.
        """
        counts = Counter(w for text in instructions for w in split_words(text))
        words = sorted(w for w, n in counts.items() if n >= min_count and w not in (PAD, UNK))
        return cls([PAD, UNK, *words])

    @property
    def vocab_size(self) -> int:
        """Number of ids, the two special tokens included."""
        return len(self.vocab)

    def encode(self, text: str, max_len: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Encode one instruction to a fixed length.

        Args:
            text: the instruction.
            max_len: output length; longer instructions keep their first ``max_len`` tokens.

        Returns:
            ``(ids, mask, unknown_words)``: ``int64[max_len]`` ids padded with ``<pad>``;
            ``bool[max_len]``, True where a real token (known or ``<unk>``) sits; the words (in
            order, repeats kept once) that were not in the vocabulary, truncated ones included.

        Raises:
            InputError: ``max_len`` < 1 or ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise InputError("instruction", f"expected str, got {type(text).__name__}")
        if not isinstance(max_len, (int, np.integer)) or max_len < 1:
            raise InputError("max_len", f"expected an int >= 1, got {max_len!r}")
        words = split_words(text)
        unknown = list(dict.fromkeys(w for w in words if w not in self._ids))
        kept = [self._ids.get(w, UNK_ID) for w in words[:max_len]]
        ids = np.full(max_len, PAD_ID, dtype=np.int64)
        ids[: len(kept)] = kept
        mask = np.zeros(max_len, dtype=bool)
        mask[: len(kept)] = True
        return ids, mask, unknown

    def decode(self, ids: Iterable[int], mask: Iterable[bool] | None = None) -> str:
        """Words for ``ids`` joined by single spaces, padding dropped (for logs and debugging).

        Args:
            ids: token ids.
            mask: where real tokens sit; ``None`` drops every ``<pad>`` id instead.

        Raises:
            InputError: an id is outside the vocabulary.
        """
        ids = [int(i) for i in ids]
        keep = [bool(m) for m in mask] if mask is not None else [i != PAD_ID for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise InputError("ids", f"ids {bad} are outside the vocabulary of {self.vocab_size}")
        return " ".join(self.vocab[i] for i, k in zip(ids, keep) if k)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description that :meth:`from_dict` turns back into an equal tokenizer."""
        return {"kind": _KIND, "lowercase": True, "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Tokenizer":
        """Rebuild a tokenizer written by :meth:`to_dict`.

        Raises:
            InputError: the dict is not a word tokenizer description.
        """
        if not isinstance(data, Mapping) or data.get("kind") != _KIND or data.get("lowercase") is not True:
            raise InputError("tokenizer", f"expected {{'kind': {_KIND!r}, 'lowercase': true, 'vocab': [...]}}")
        vocab = data.get("vocab")
        if not isinstance(vocab, list):
            raise InputError("tokenizer.vocab", f"expected a list of words, got {type(vocab).__name__}")
        return cls(vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.vocab == other.vocab

    def __hash__(self) -> int:
        return hash(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"
