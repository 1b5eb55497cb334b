"""`pml export --format ollama`: the Modelfile carries the build, and its TEMPLATE renders
exactly what our chat template renders (checked with a small Go-template renderer)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from cli_run import assert_one_line_error, pml
from gguf import GGUFReader
from gotemplate import render
from tiny import CHATML, make_tiny_model

import pimpmyllama.api as api
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.gguf.ollama_template import to_ollama
from pimpmyllama.prompting.template import ChatTemplate

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
ALPACA = "{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] }}\n\n{% endfor %}### assistant:\n"

CONVERSATION = [
    {"role": "system", "content": "You answer in French.\n\nFacts to keep in mind:\n- The pool opens at 7."},
    {"role": "user", "content": "When does the pool open?"},
    {"role": "assistant", "content": "À 7 heures."},
    {"role": "user", "content": "And on Sunday? {{ not a template }}"},
    {"role": "assistant", "content": "Aussi à 7 heures."},
    {"role": "user", "content": "Merci !"},
]


def ollama_render(template: str, messages: list[dict]) -> str:
    """What Ollama's server renders: every system message joined into .System, the
    messages (system ones included) in .Messages."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return render(template, {"System": system,
                             "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]})


@pytest.mark.parametrize("source,bos,family", [(SMOLLM2, "<|im_start|>", "ChatML"), (CHATML, None, "ChatML"),
                                               (LLAMA3, "<|begin_of_text|>", "Llama 3")],
                         ids=["smollm2", "chatml", "llama3"])
@pytest.mark.parametrize("with_system", [True, False], ids=["system", "no-system"])
def test_template_renders_a_three_turn_conversation_as_our_chat_template(source, bos, family, with_system):
    template = ChatTemplate(source, bos_token=bos)
    ollama = to_ollama(template, bos)
    assert ollama.family.name == family
    messages = CONVERSATION if with_system else CONVERSATION[1:]
    ours = template.render(messages)
    # llama.cpp adds <|begin_of_text|> as the BOS token; Ollama's template does not write it.
    assert ollama.begin == ("<|begin_of_text|>" if family == "Llama 3" else "")
    assert ollama.begin + ollama_render(ollama.text, messages) == ours


def test_a_default_system_prompt_is_kept_when_the_conversation_has_none():
    ollama = to_ollama(ChatTemplate(SMOLLM2, bos_token="<|im_start|>"), "<|im_start|>")
    assert ollama.default_system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert ollama_render(ollama.text, CONVERSATION[1:2]).startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhen does the pool open?<|im_end|>\n")


def test_another_template_family_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="the chat template of odd .* is neither ChatML nor Llama 3"):
        to_ollama(ChatTemplate(ALPACA), None, name="the chat template of odd")


BUILD = """from: tiny
system: You answer in French.
styles: [brief]
pinned: [The pool opens at 7.]
messages:
  - {role: user, content: Hello}
  - {role: assistant, content: Bonjour !}
parameters: {temperature: 0.3, num_ctx: 256, seed: 7, stop: ["\\n\\n"]}
"""


def test_a_build_exports_to_a_modelfile_that_carries_it(stored_tiny, tmp_path):
    build = tmp_path / "fr.yml"
    build.write_text(BUILD)
    out = api.export(str(build), tmp_path / "fr-ollama", format="ollama", quant="q8_0")
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "model.gguf"]
    assert GGUFReader(out / "model.gguf").fields["general.file_type"].contents() == 7
    template = to_ollama(ChatTemplate(CHATML), None).text
    assert (out / "Modelfile").read_text() == "\n".join([
        f"# {build}, written by pml export",
        "FROM ./model.gguf",
        f'TEMPLATE """{template}"""',
        'SYSTEM """You answer in French.\n\nAnswer briefly, in one or two sentences.\n\nFacts to keep in mind:\n- The pool opens at 7."""',
        "PARAMETER temperature 0.3",
        "PARAMETER top_p 0.9",
        "PARAMETER top_k 40",
        "PARAMETER repeat_penalty 1.1",
        "PARAMETER repeat_last_n 64",
        "PARAMETER num_ctx 256",
        "PARAMETER num_predict 64",
        "PARAMETER seed 7",
        'PARAMETER stop "<|im_end|>"',
        'PARAMETER stop "\\n\\n"',
        'MESSAGE user """Hello"""',
        'MESSAGE assistant """Bonjour !"""',
    ]) + "\n"


def test_an_unsupported_template_is_one_line_exit_2_and_no_file(pml_home, tmp_path):
    api.import_model(make_tiny_model(tmp_path / "odd-src", template=ALPACA), "odd")
    result = pml("export", "odd", "-o", str(tmp_path / "odd-ollama"), "--format", "ollama", home=pml_home)
    assert_one_line_error(result, "the chat template of odd", "neither ChatML nor Llama 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd-src", "pml-home"]


KILLABLE = """
import sys, time
import pimpmyllama.merging.gguf.write as write
slow = write.encode
def encode(array, kind):
    print("writing", flush=True)
    time.sleep(0.5)
    return slow(array, kind)
write.encode = encode
import pimpmyllama.api as api
api.export("tiny", sys.argv[1], format=sys.argv[2])
"""


@pytest.mark.parametrize("fmt,name", [("gguf", "tiny.gguf"), ("ollama", "tiny-ollama")])
def test_a_kill_mid_write_leaves_nothing_and_the_next_export_sweeps_it(stored_tiny, tmp_path, fmt, name):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(out / name), fmt], stdout=subprocess.PIPE,
                            env={**os.environ})
    assert proc.stdout.readline() == b"writing\n"  # tensors are being written
    temps = [p.name for p in out.iterdir()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(temps) == 1 and temps[0].startswith(".tmp-") and temps[0].endswith(name)
    assert not (out / name).exists()
    time.sleep(0.1)
    api.export("tiny", out / name, format=fmt)
    assert [p.name for p in out.iterdir()] == [name]
