from pimpmyllama.generation.stopping import TextStream
from pimpmyllama.prompting.tokenizer import Tokenizer


def feed(stream, tokenizer, text):
    out = []
    for token in tokenizer.encode(text):
        out.append(stream.push(token))
        if stream.stopped:
            break
    out.append(stream.finish())
    return out


def test_text_is_released_as_it_comes_without_stops(tiny_model):
    tok = Tokenizer(tiny_model)
    stream = TextStream(tok)
    pieces = feed(stream, tok, "The post office opens at 9am.")
    assert "".join(pieces) == "The post office opens at 9am."
    assert sum(1 for p in pieces if p) > 3  # streamed, not released at the end


def test_stop_string_spanning_tokens_cuts_the_reply_and_is_not_shown(tiny_model):
    tok = Tokenizer(tiny_model)
    stream = TextStream(tok, ["closes at"])
    pieces = feed(stream, tok, "The post office opens at 9am and closes at 5pm.")
    assert stream.stopped
    assert "".join(pieces) == "The post office opens at 9am and "
    assert stream.text == "The post office opens at 9am and "


def test_a_possible_stop_prefix_is_held_back_then_released(tiny_model):
    tok = Tokenizer(tiny_model)
    stream = TextStream(tok, ["Question:"])
    released = []
    for token in tok.encode("Paris. Que"):
        released.append(stream.push(token))
    assert "".join(released) == "Paris. "  # "Que" could begin "Question:"
    assert stream.finish() == "Que"  # the reply ended: nothing is lost


def test_half_a_multibyte_character_is_never_released(tiny_model):
    tok = Tokenizer(tiny_model)
    stream = TextStream(tok)
    pieces = [stream.push(t) for t in tok.encode("日本")]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + stream.finish() == "日本"
