"""An Ollama Modelfile that carries a build: the model, its chat TEMPLATE, the system
prompt as our packer composes it (styles and pinned facts included), the few-shot
messages and the generation parameters, under Ollama's names."""

import json

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.gguf.ollama_template import OllamaTemplate
from pimpmyllama.prompting.build import Build, Parameters
from pimpmyllama.prompting.packer import compose_system
from pimpmyllama.prompting.styles import resolve_styles


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise InvalidInputError(f'{what} holds """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def build_system(build: Build) -> str | None:
    """The system message a chat with `build` starts with (before any recalled memory)."""
    styles = [style.instruction for style in resolve_styles(build.styles)]
    return compose_system(build.system, styles, build.pinned, ())


def parameter_lines(params: Parameters, stops: tuple[str, ...]) -> list[str]:
    lines = [f"PARAMETER {name} {getattr(params, name)}"
             for name in ("temperature", "top_p", "top_k", "repeat_penalty", "repeat_last_n", "num_ctx")]
    lines.append(f"PARAMETER num_predict {params.max_new_tokens}")
    if params.seed is not None:
        lines.append(f"PARAMETER seed {params.seed}")
    lines.extend(f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}" for stop in dict.fromkeys([*stops, *params.stop]))
    return lines


def render_modelfile(build: Build, params: Parameters, template: OllamaTemplate, gguf_file: str,
                     source: str) -> str:
    """The Modelfile text; `params` are the build's parameters fitted to the model."""
    lines = [f"# {source}, written by pml export"]
    if build.knowledge:
        lines.append(f"# not carried (Ollama has no equivalent): knowledge {', '.join(build.knowledge)}")
    lines += [f"FROM ./{gguf_file}", f"TEMPLATE {_quoted(template.text, 'the template')}"]
    system = build_system(build)
    if system:
        lines.append(f"SYSTEM {_quoted(system, 'the system prompt')}")
    lines += parameter_lines(params, template.family.stops)
    for message in build.messages:
        lines.append(f"MESSAGE {message.role} {_quoted(message.content, 'a few-shot message')}")
    return "\n".join(lines) + "\n"
