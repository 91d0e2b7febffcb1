"""sklearn_gpt2.base.dataset: rows with text indices; padding with class or sequence targets."""

import numpy as np
import torch

from sklearn_gpt2.base.dataset import IGNORE_INDEX, PaddedBatchCollator, TextDataset

IDS = [np.array([5, 6, 7], dtype=np.int32), np.array([8], dtype=np.int32)]


def test_rows_carry_their_text_index_through_subsets():
    dataset = TextDataset(IDS, np.array([1, 0]))
    sub = dataset.subset(np.array([1]))
    assert sub[0] == (IDS[1], 0, 1)
    assert dataset.lengths.tolist() == [3, 1]


def test_left_padding_for_decoders_with_class_targets():
    x, y = PaddedBatchCollator(pad_token_id=0, left=True)([(IDS[0], 1, 4), (IDS[1], 0, 2)])
    assert x["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert x["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert x["text_index"].tolist() == [4, 2]
    assert y.tolist() == [1, 0] and y.dtype == torch.long


def test_right_padding_for_encoders():
    x, _ = PaddedBatchCollator(pad_token_id=9, left=False)([(IDS[0], 0, 0), (IDS[1], 0, 1)])
    assert x["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]


def test_sequence_targets_are_padded_with_ignore_index_on_the_same_side():
    targets = [np.array([IGNORE_INDEX, IGNORE_INDEX, 7]), np.array([3])]
    dataset = TextDataset(IDS, targets)
    _, y = PaddedBatchCollator(pad_token_id=0, left=True)([dataset[0], dataset[1]])
    assert y.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7], [IGNORE_INDEX, IGNORE_INDEX, 3]]
    assert dataset.subset(np.array([1])).targets[0].tolist() == [3]
