"""Word-level tokenizer: vocabulary, encoding, <unk>, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.errors import InputError
from vla_kit.policy.tokenizer import PAD, PAD_ID, UNK, UNK_ID, Tokenizer, split_words

INSTRUCTIONS = ("pick up the red cube", "push the blue cube to the left", "touch the green cube")


def test_pad_and_unk_are_ids_zero_and_one():
    tok = Tokenizer.build(INSTRUCTIONS)
    assert tok.vocab[PAD_ID] == PAD and tok.vocab[UNK_ID] == UNK


def test_text_is_lowercased_and_punctuation_split_off():
    assert split_words("Pick up the RED cube, please!") == ["pick", "up", "the", "red", "cube", ",", "please", "!"]


def test_vocabulary_does_not_depend_on_instruction_order():
    assert Tokenizer.build(INSTRUCTIONS) == Tokenizer.build(reversed(INSTRUCTIONS))


def test_min_count_leaves_rare_words_out():
    tok = Tokenizer.build(["red cube", "red cube", "blue cube"], min_count=2)
    assert tok.vocab == (PAD, UNK, "cube", "red")


def test_encode_pads_to_max_len_and_masks_only_padding():
    tok = Tokenizer.build(INSTRUCTIONS)
    ids, mask, unknown = tok.encode("pick up the red cube", 8)
    assert ids.dtype == np.int64 and ids.shape == (8,)
    assert mask.dtype == np.bool_ and mask.tolist() == [True] * 5 + [False] * 3
    assert (ids[5:] == PAD_ID).all() and (ids[:5] > UNK_ID).all()
    assert unknown == []


def test_unknown_words_become_unk_and_are_reported_once_in_order():
    tok = Tokenizer.build(INSTRUCTIONS)
    ids, mask, unknown = tok.encode("pick up the purple wobbly purple cube", 10)
    assert unknown == ["purple", "wobbly"]
    assert ids[3] == UNK_ID and ids[4] == UNK_ID and ids[5] == UNK_ID
    assert mask[:7].all()


def test_instruction_of_only_unknown_words_encodes_without_error():
    tok = Tokenizer.build(INSTRUCTIONS)
    ids, mask, unknown = tok.encode("Fly Away", 4)
    assert ids.tolist() == [UNK_ID, UNK_ID, PAD_ID, PAD_ID]
    assert unknown == ["fly", "away"]


def test_long_instruction_keeps_its_first_tokens_and_reports_unknown_words_anywhere():
    tok = Tokenizer.build(INSTRUCTIONS)
    ids, mask, unknown = tok.encode("pick up the red cube now", 3)
    assert tok.decode(ids, mask) == "pick up the"
    assert mask.all()
    assert unknown == ["now"]


def test_empty_instruction_is_all_padding():
    ids, mask, unknown = Tokenizer.build(INSTRUCTIONS).encode("", 4)
    assert not mask.any() and (ids == PAD_ID).all() and unknown == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted({w for s in INSTRUCTIONS for w in split_words(s)})), min_size=0, max_size=12))
def test_decode_of_encode_gives_back_known_words(words):
    tok = Tokenizer.build(INSTRUCTIONS)
    text = " ".join(w.upper() if i % 2 else w for i, w in enumerate(words))
    ids, mask, unknown = tok.encode(text, 12)
    assert tok.decode(ids, mask) == " ".join(words)
    assert unknown == []


def test_dict_round_trip_through_json_gives_an_equal_tokenizer():
    tok = Tokenizer.build(INSTRUCTIONS)
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again == tok
    assert again.encode("push the red cube", 6)[0].tolist() == tok.encode("push the red cube", 6)[0].tolist()


@pytest.mark.parametrize(
    "vocab, problem",
    [([UNK, PAD, "a"], "must start with"), ([PAD, UNK, "a", "a"], "duplicate"), ([PAD, UNK, ""], "non-empty")],
)
def test_malformed_vocabulary_is_rejected(vocab, problem):
    with pytest.raises(InputError, match=problem):
        Tokenizer(vocab)


def test_dict_of_another_kind_is_rejected():
    with pytest.raises(InputError, match="tokenizer"):
        Tokenizer.from_dict({"kind": "bpe", "vocab": [PAD, UNK]})


def test_decode_rejects_ids_outside_the_vocabulary():
    tok = Tokenizer.build(INSTRUCTIONS)
    with pytest.raises(InputError, match="outside the vocabulary"):
        tok.decode([2, tok.vocab_size])


def test_non_positive_max_len_is_rejected():
    with pytest.raises(InputError, match="max_len"):
        Tokenizer.build(INSTRUCTIONS).encode("pick", 0)
