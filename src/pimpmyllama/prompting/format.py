"""A model's chat format: its chat template rendered and counted with its tokenizer."""

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.template import ChatTemplate, Message
from pimpmyllama.prompting.tokenizer import Tokenizer


class ChatFormat:
    def __init__(self, tokenizer: Tokenizer, template_source: str | None = None, *, model_name: str = "the model"):
        source = template_source or tokenizer.chat_template
        if not source:
            raise InvalidInputError(
                f"{model_name} has no chat template; give one with `template:` in a build"
            )
        self.tokenizer = tokenizer
        self.template = ChatTemplate(source, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token)

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        return self.template.render(messages, add_generation_prompt=add_generation_prompt)

    def encode(self, messages: list[Message], add_generation_prompt: bool = True) -> list[int]:
        return self.tokenizer.encode(self.render(messages, add_generation_prompt))

    def count(self, messages: list[Message], add_generation_prompt: bool = True) -> int:
        return len(self.encode(messages, add_generation_prompt))
