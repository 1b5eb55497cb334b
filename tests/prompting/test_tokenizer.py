import json

from pimpmyllama.prompting.tokenizer import Tokenizer, read_chat_template
from tiny import CHATML, write_tokenizer


def test_end_tokens_gather_generation_config_eos_and_turn_markers(tmp_path):
    write_tokenizer(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [1]}))
    tok = Tokenizer(tmp_path)
    ids = {tok.token_to_id(t) for t in ("<|im_end|>", "<|endoftext|>", "<|im_start|>")}
    # <|im_start|> is id 1 here: it counts only because generation_config names it.
    assert tok.end_token_ids == frozenset(ids)


def test_template_read_from_tokenizer_config_when_no_jinja_file(tmp_path):
    write_tokenizer(tmp_path, template=None)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "tool_use", "template": "X"}, {"name": "default", "template": CHATML}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert read_chat_template(tmp_path) == CHATML


def test_round_trip_and_special_tokens(tiny_model):
    tok = Tokenizer(tiny_model)
    text = "The post office opens at 9am."
    assert tok.decode(tok.encode(text)) == text
    assert tok.special_tokens == {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    assert tok.decode([1, *tok.encode("hi"), 2]) == "hi"
    assert tok.decode([1, *tok.encode("hi"), 2], skip_special_tokens=False) == "<|im_start|>hi<|im_end|>"
