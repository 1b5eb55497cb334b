"""Label masks token by token, on SmolLM2's real ChatML template and tokenizer."""

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer
from pimpmyllama.training.formats import ChatExample, CompletionExample, TextExample
from pimpmyllama.training.tokenize import IGNORE, ExampleEncoder, text_blocks


@pytest.fixture(scope="module")
def smollm(default_model_home):
    from pimpmyllama.models.defaults import DEFAULT_MODEL

    return ExampleEncoder(ChatFormat(Tokenizer(default_model_home / "models" / DEFAULT_MODEL)))


def pieces(encoder, example):
    """(token text, trained?) for every token."""
    t = encoder.tokenizer
    encoded = encoder.encode(example)
    return [(t.decode([i], skip_special_tokens=False), label != IGNORE)
            for i, label in zip(encoded.input_ids, encoded.labels)], encoded


def trained_text(encoder, encoded):
    return encoder.tokenizer.decode([i for i in encoded.labels if i != IGNORE], skip_special_tokens=False)


def test_multi_turn_chatml_mask(smollm):
    example = ChatExample((("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"),
                           ("user", "When?"), ("assistant", "At 9am.")), "t:1")
    tokens, encoded = pieces(smollm, example)
    text = "".join(t for t, _ in tokens)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhen?<|im_end|>\n"
                    "<|im_start|>assistant\nAt 9am.<|im_end|>\n")
    # exactly the assistant contents and their <|im_end|> are trained, token by token
    trained = [t for t, keep in tokens if keep]
    assert "".join(trained) == "Hello!<|im_end|>At 9am.<|im_end|>"
    assert trained.count("<|im_end|>") == 2
    masked = "".join(t for t, keep in tokens if not keep)
    assert masked == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                      "<|im_start|>assistant\n\n<|im_start|>user\nWhen?<|im_end|>\n<|im_start|>assistant\n\n")
    # the newline after each <|im_end|> is template, not answer
    for i, (t, keep) in enumerate(tokens):
        if t == "<|im_end|>" and keep:
            assert tokens[i + 1] == ("\n", False)


def test_the_template_default_system_prompt_is_masked_too(smollm):
    tokens, encoded = pieces(smollm, ChatExample((("user", "Hi"), ("assistant", "Hello!")), "t:2"))
    assert "".join(t for t, keep in tokens if not keep) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n\n")
    assert trained_text(smollm, encoded) == "Hello!<|im_end|>"


def test_completion_data_trains_the_completion_and_an_end_token(smollm):
    tokens, encoded = pieces(smollm, CompletionExample("Question: capital of France?\nAnswer:", " Paris.", "t:3"))
    assert trained_text(smollm, encoded) == " Paris.<|im_end|>"
    assert "".join(t for t, keep in tokens if not keep) == "Question: capital of France?\nAnswer:"


def test_text_is_trained_whole_and_blocks_are_cut(smollm):
    a = smollm.encode(TextExample("one two three", "a"))
    b = smollm.encode(TextExample("four five", "b"))
    assert a.labels == a.input_ids and a.input_ids[-1] == smollm.tokenizer.token_to_id("<|endoftext|>")
    blocks = text_blocks([a, b], 3)
    stream = a.input_ids + b.input_ids
    assert [blk.input_ids for blk in blocks] == [stream[i : i + 3] for i in range(0, len(stream), 3)
                                                  if len(stream[i : i + 3]) > 1]


def test_no_assistant_turn_is_an_error(smollm):
    with pytest.raises(InvalidInputError, match="t:9: no assistant turn to learn from"):
        smollm.encode(ChatExample((("user", "Hi"),), "t:9"))


def test_tiny_model_mask_is_exact(tiny_model):
    encoder = ExampleEncoder(ChatFormat(Tokenizer(tiny_model)))
    encoded = encoder.encode(ChatExample((("user", "hello"), ("assistant", "world")), "t:4"))
    t = encoder.tokenizer
    expected_trained = t.encode("world") + [t.token_to_id("<|im_end|>")]
    assert [i for i in encoded.labels if i != IGNORE] == expected_trained
    # labels align with inputs: where trained, the label is the input token itself
    assert all(lab in (IGNORE, tok) for tok, lab in zip(encoded.input_ids, encoded.labels))
