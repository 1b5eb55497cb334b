import torch

from pimpmyllama.generation.sampling import (Sampler, SamplingParams, apply_presence_frequency, apply_repeat_penalty,
                                             filter_top_k_top_p)


def test_repeat_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([2.0, -2.0, 1.0, 0.5])
    out = apply_repeat_penalty(logits, [0, 1, 1], 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0, 0.5]
    assert logits.tolist() == [2.0, -2.0, 1.0, 0.5]  # the input is left alone


def test_repeat_penalty_is_the_float32_formula_to_the_bit_on_a_real_sized_row():
    logits = torch.randn(49152, generator=torch.Generator().manual_seed(0)) * 8
    recent = [5, 17, 17, 40000, 123, 49151]
    ids = torch.tensor(sorted(set(recent)))
    expected = logits.clone()
    expected[ids] = torch.where(logits[ids] > 0, logits[ids] / 1.1, logits[ids] * 1.1)
    assert torch.equal(apply_repeat_penalty(logits, recent, 1.1), expected)


def test_greedy_takes_the_first_of_tied_maxima():
    assert Sampler(SamplingParams(temperature=0, repeat_penalty=1.0))(torch.tensor([0.5, 2.0, 1.0, 2.0]), []) == 1


def test_greedy_with_a_repeat_penalty_picks_what_the_penalised_row_gives():
    """Greedy skips the penalised copy when the first maximum is no recent token: the
    same choice as penalising every recent logit and taking the first maximum, for
    penalties above, at and below 1, ties and a maximum among the recent tokens."""
    generator = torch.Generator().manual_seed(1)
    checked = 0
    for case in range(300):
        logits = torch.randint(-4, 5, (50,), generator=generator).float() / 2  # many ties
        recent = torch.randint(0, 50, (int(torch.randint(0, 20, (1,), generator=generator)),),
                               generator=generator).tolist()
        penalty = [0.5, 1.0, 1.1, 2.0][case % 4]
        expected = int(apply_repeat_penalty(logits, recent, penalty).numpy().argmax())
        got = Sampler(SamplingParams(temperature=0, repeat_penalty=penalty, repeat_last_n=-1))(logits, recent)
        assert got == expected, (logits.tolist(), recent, penalty)
        checked += int(penalty > 1 and int(logits.argmax()) in recent)
    assert checked > 20  # the cases where the penalty moves the maximum were met


def test_top_k_then_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.3, 0.15]))
    values, ids = filter_top_k_top_p(logits, top_k=3, top_p=0.75)
    # top-3: 0.5, 0.3, 0.15 -> renormalised 0.526, 0.316, 0.158; 0.526 < 0.75, 0.842 >= 0.75
    assert ids.tolist() == [1, 2]
    values, ids = filter_top_k_top_p(logits, top_k=0, top_p=1.0)
    assert ids.tolist() == [1, 2, 3, 0]


def test_temperature_zero_is_greedy_and_ignores_the_seed():
    logits = torch.tensor([0.1, 3.0, 2.9])
    assert Sampler(SamplingParams(temperature=0, seed=1))(logits, []) == 1
    assert Sampler(SamplingParams(temperature=0, seed=2))(logits, []) == 1


def test_penalty_looks_at_the_reply_only():
    logits = torch.tensor([3.0, 2.9])
    params = SamplingParams(temperature=0, repeat_penalty=2.0, repeat_last_n=1)
    assert Sampler(params)(logits, [1, 0]) == 1  # token 0 was the last one generated
    assert Sampler(params)(logits, [0, 1]) == 0  # only the last 1 token counts


def test_same_seed_same_samples_and_top_k_one_is_greedy():
    torch.manual_seed(0)
    logits = torch.randn(500)
    params = SamplingParams(temperature=1.5, top_k=0, top_p=1.0, repeat_penalty=1.0, seed=7)
    a = [Sampler(params)(logits, []) for _ in range(5)]
    s1, s2 = Sampler(params), Sampler(params)
    assert [s1(logits, []) for _ in range(20)] == [s2(logits, []) for _ in range(20)]
    assert len(set(a)) == 1  # each fresh sampler with the same seed draws the same first token
    draws = {Sampler(SamplingParams(temperature=1.5, top_k=0, top_p=1.0, seed=s))(logits, []) for s in range(30)}
    assert len(draws) > 5  # and different seeds really sample
    greedy = int(torch.argmax(logits))
    assert Sampler(SamplingParams(temperature=1.0, top_k=1, repeat_penalty=1.0, seed=3))(logits, []) == greedy


def test_the_engine_samples_with_a_builds_defaults():
    from dataclasses import asdict

    from pimpmyllama.chat.conversation import generation_params
    from pimpmyllama.prompting.build import Parameters

    assert generation_params(Parameters()).sampling == SamplingParams()
    assert asdict(SamplingParams()) == {"temperature": 0.8, "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1,
                                        "repeat_last_n": 64, "seed": None, "presence_penalty": 0.0,
                                        "frequency_penalty": 0.0}


def test_presence_and_frequency_penalties_follow_openai():
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = apply_presence_frequency(logits, [3, 3, 1, 3], presence=0.5, frequency=0.25)
    # token 3: 3 times -> 4 - 0.5 - 0.75; token 1: once -> 2 - 0.5 - 0.25; unseen tokens untouched
    assert out.tolist() == [1.0, 1.25, 3.0, 2.75]
    assert apply_presence_frequency(logits, [0], presence=-1.0, frequency=0.0).tolist() == [2.0, 2.0, 3.0, 4.0]
    assert apply_presence_frequency(logits, [], presence=2.0, frequency=2.0) is logits


def test_the_sampler_applies_presence_and_frequency_to_the_reply():
    logits = torch.tensor([3.0, 2.5])
    plain = SamplingParams(temperature=0, repeat_penalty=1.0)
    assert Sampler(plain)(logits, [0]) == 0
    presence = SamplingParams(temperature=0, repeat_penalty=1.0, presence_penalty=0.6)
    assert Sampler(presence)(logits, [0]) == 1  # 3.0 - 0.6 < 2.5
    frequency = SamplingParams(temperature=0, repeat_penalty=1.0, frequency_penalty=0.3)
    assert Sampler(frequency)(logits, [0]) == 0  # 2.7 > 2.5
    assert Sampler(frequency)(logits, [0, 0]) == 1  # 2.4 < 2.5
