"""Our chat-template renderer against transformers' apply_chat_template."""

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.template import ChatTemplate
from pimpmyllama.prompting.tokenizer import Tokenizer
from tiny import CHATML

LLAMA3 = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
TOOLS_STYLE = (
    "{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}"
    "{{ raise_exception('system must come first') }}{% endif %}"
    "{{ m['role'] }}: {{ m['content'] | tojson }}\n{% endfor %}"
)

MESSAGES = [
    {"role": "system", "content": "You are terse. «Ça va?»"},
    {"role": "user", "content": "When does the post office open?"},
    {"role": "assistant", "content": "At 9am."},
    {"role": "user", "content": "  And the hairdresser?  "},
]


@pytest.mark.parametrize("template", [CHATML, LLAMA3, TOOLS_STYLE], ids=["chatml", "llama3", "tojson"])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_rendering_matches_transformers(tiny_model, template, add_generation_prompt):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tiny_model))
    hf.bos_token = "<|endoftext|>"
    expected = hf.apply_chat_template(MESSAGES, chat_template=template, tokenize=False,
                                      add_generation_prompt=add_generation_prompt)
    ours = ChatTemplate(template, bos_token="<|endoftext|>").render(MESSAGES, add_generation_prompt)
    assert ours == expected


def test_template_errors_are_one_line_user_errors():
    with pytest.raises(InvalidInputError, match="refused these messages: system must come first"):
        ChatTemplate(TOOLS_STYLE).render([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])
    with pytest.raises(InvalidInputError, match="does not parse"):
        ChatTemplate("{% for m in messages %}")


def test_a_model_without_a_template_needs_one_from_the_build(tmp_path):
    from tiny import write_tokenizer

    write_tokenizer(tmp_path, template=None)
    tok = Tokenizer(tmp_path)
    with pytest.raises(InvalidInputError, match="has no chat template; give one with `template:` in a build"):
        ChatFormat(tok, model_name="bare")
    fmt = ChatFormat(tok, CHATML)
    assert fmt.render([{"role": "user", "content": "hi"}]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_rendered_prompts_are_encoded_without_a_second_bos(tiny_model):
    tok = Tokenizer(tiny_model)
    tok.bos_token = "<|endoftext|>"
    fmt = ChatFormat(tok, LLAMA3)
    ids = fmt.encode([{"role": "user", "content": "hi"}])
    assert ids.count(tok.token_to_id("<|endoftext|>")) == 1
    assert ids[0] == tok.token_to_id("<|endoftext|>")
