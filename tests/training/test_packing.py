"""Packing: exact rows, masks and targets; packed loss equals the examples' own."""

import torch
from transformers import AutoModelForCausalLM

from pimpmyllama.training.loss import CausalLMLoss, batch_loss
from pimpmyllama.training.packing import collate, one_per_row, pack
from pimpmyllama.training.tokenize import IGNORE, TokenizedExample


def ex(ids, trained_from, name):
    return TokenizedExample(list(ids), [IGNORE] * trained_from + list(ids[trained_from:]), name)


def test_best_fit_decreasing_rows():
    examples = [ex(range(n), 0, f"e{n}") for n in (6, 3, 5, 2, 4)]
    rows = pack(examples, 8)
    assert [[e.origin for e in r.examples] for r in rows] == [["e6", "e2"], ["e5", "e3"], ["e4"]]


def test_mask_positions_and_targets_exactly():
    a, b = ex([10, 11, 12], 1, "a"), ex([20, 21], 0, "b")
    batch = collate(pack([a, b], 8), pad_id=0)
    assert batch.input_ids.tolist() == [[10, 11, 12, 20, 21]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert batch.attention_mask[0, 0].int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 1],
    ]
    # 10 predicts 11, 11 predicts 12; 12 must not predict 20 (another example); 20 predicts 21
    assert batch.targets.tolist() == [[11, 12, IGNORE, 21, IGNORE]]
    assert (batch.tokens, batch.trained_tokens) == (5, 3)
    assert sum(r.trained_tokens for r in pack([a, b], 8)) == 3


def test_padding_rows_attend_to_themselves_only():
    batch = collate(one_per_row([ex([1, 2, 3], 0, "x"), ex([4], 0, "y")]), pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch.attention_mask[1, 0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert batch.targets.tolist() == [[2, 3, IGNORE], [IGNORE, IGNORE, IGNORE]]


def test_packed_loss_equals_the_sum_of_single_losses(tiny_model):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    loss = CausalLMLoss(model)
    examples = [ex(torch.randint(3, 300, (n,)).tolist(), t, f"e{n}") for n, t in ((17, 5), (9, 0), (30, 12), (4, 1))]
    with torch.no_grad():
        packed = collate(pack(examples, 64), pad_id=0)
        assert packed.input_ids.shape[0] == 1  # all four share one row
        together = batch_loss(loss, packed)
        alone = sum(batch_loss(loss, collate(one_per_row([e]), 0)) for e in examples)
        padded = batch_loss(loss, collate(one_per_row(examples), 0))
        # and against transformers' own loss, one example at a time
        reference = 0.0
        for e in examples:
            out = model(torch.tensor([e.input_ids]), labels=torch.tensor([e.labels]))
            reference += out.loss * (sum(1 for x in e.labels[1:] if x != IGNORE))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(together, reference, rtol=1e-5, atol=1e-4)
