"""sklearn_gpt2.training.dataset: rows with text indices and weights; padding in numpy."""

import numpy as np
import torch

from sklearn_gpt2.text.rows import IGNORE_INDEX, Rows, pad_batch, position_ids
from sklearn_gpt2.text.runner import combine_rows, run_rows
from sklearn_gpt2.training.dataset import FeatureCollator, PaddedBatchCollator, TextDataset

IDS = [np.array([5, 6, 7], dtype=np.int32), np.array([8], dtype=np.int32)]


def test_rows_carry_their_text_index_and_weight_through_subsets():
    dataset = TextDataset(IDS, np.array([1, 0]), text_index=np.array([3, 1]))
    dataset.weighted(np.array([0.0, 2.0, 0.0, 5.0]))
    sub = dataset.subset(np.array([1]))
    assert sub[0] == (IDS[1], 0, 1, 2.0)
    assert dataset[0][3] == 5.0
    assert dataset.lengths.tolist() == [3, 1]


def test_left_padding_for_decoders_with_class_targets():
    rows = [(IDS[0], 1, 4, 1.0), (IDS[1], 0, 2, 1.0)]
    x, y = PaddedBatchCollator(pad_token_id=0, left=True)(rows)
    assert x["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert x["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert x["text_index"].tolist() == [4, 2]
    assert "sample_weight" not in x
    assert y.tolist() == [1, 0] and y.dtype == torch.long


def test_weights_travel_in_the_batch():
    rows = [(IDS[0], 1, 4, 0.5), (IDS[1], 0, 2, 3.0)]
    x, _ = PaddedBatchCollator(pad_token_id=0, left=True, weighted=True)(rows)
    assert x["sample_weight"].tolist() == [0.5, 3.0]
    features = [(np.ones(2, np.float32), 1, 0, 2.0), (np.zeros(2, np.float32), 0, 1, 4.0)]
    x, y = FeatureCollator(weighted=True)(features)
    assert x["sample_weight"].tolist() == [2.0, 4.0] and y.tolist() == [1, 0]


def test_right_padding_for_encoders():
    x, _ = PaddedBatchCollator(pad_token_id=9, left=False)(
        [(IDS[0], 0, 0, 1.0), (IDS[1], 0, 1, 1.0)]
    )
    assert x["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]


def test_sequence_targets_are_padded_with_ignore_index_on_the_same_side():
    targets = [np.array([IGNORE_INDEX, IGNORE_INDEX, 7]), np.array([3])]
    dataset = TextDataset(IDS, targets)
    _, y = PaddedBatchCollator(pad_token_id=0, left=True)([dataset[0], dataset[1]])
    assert y.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7], [IGNORE_INDEX, IGNORE_INDEX, 3]]
    assert dataset.subset(np.array([1])).targets[0].tolist() == [3]


def test_numpy_padding_and_positions_count_real_tokens_only():
    input_ids, mask = pad_batch(IDS, pad_token_id=0, left=True)
    assert input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def test_the_runner_scatters_rows_back_in_order_and_pads_each_batch_to_its_own_longest():
    token_ids = [np.arange(n, dtype=np.int32) + 1 for n in (2, 5, 1, 4)]
    widths = []

    def engine(input_ids, attention_mask):
        widths.append(input_ids.shape[1])
        return attention_mask.sum(axis=1, keepdims=True).astype(float)

    out = run_rows(
        Rows.one_per_text(token_ids), engine, batch_size=2, pad_token_id=0, pad_left=True
    )
    assert out[:, 0].tolist() == [2, 5, 1, 4]
    assert widths == [5, 2]


def test_rows_of_one_text_are_combined_by_their_mean_log_probability():
    rows = Rows([IDS[0], IDS[1], IDS[0]], np.array([0, 1, 1]), 2)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    combined = combine_rows(proba, rows)
    np.testing.assert_array_equal(combined[0], proba[0])
    expected = np.sqrt(proba[1] * proba[2])
    np.testing.assert_allclose(combined[1], expected / expected.sum())
