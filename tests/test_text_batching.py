"""sklearn_gpt2.text.batching: length-grouped training batches and sorted prediction batches."""

import numpy as np

from sklearn_gpt2.text.batching import LengthGroupedBatchSampler, SortedBatchSampler

LENGTHS = np.array([5, 1, 9, 3, 3, 7, 2, 8, 4, 6, 1])


def test_sorted_batches_go_longest_first_and_cover_every_text_once():
    batches = list(SortedBatchSampler(LENGTHS, batch_size=4))
    assert len(batches) == len(SortedBatchSampler(LENGTHS, 4)) == 3
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(LENGTHS)))
    assert [LENGTHS[i] for i in flat] == sorted(LENGTHS, reverse=True)


def test_grouped_batches_cover_every_text_once_per_epoch_and_differ_between_epochs():
    sampler = LengthGroupedBatchSampler(LENGTHS, 3, np.random.default_rng(0), group_factor=2)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(len(LENGTHS)))
        assert len(epoch) == len(sampler) == 4
    assert first != second


def test_grouped_batches_hold_similar_lengths():
    lengths = np.random.default_rng(1).integers(1, 200, size=400)
    sampler = LengthGroupedBatchSampler(lengths, 8, np.random.default_rng(0))
    grouped = np.mean([np.ptp(lengths[b]) for b in sampler])
    rng = np.random.default_rng(0)
    shuffled = np.mean([np.ptp(lengths[rng.permutation(400)[:8]]) for _ in range(50)])
    assert grouped < shuffled / 4


def test_same_seed_same_batches():
    def batches():
        return list(LengthGroupedBatchSampler(LENGTHS, 3, np.random.default_rng(7)))

    assert batches() == batches()
