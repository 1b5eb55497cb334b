"""A model's chat format: its chat template rendered and counted with its tokenizer."""

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.template import ChatTemplate, Message
from pimpmyllama.prompting.tokenizer import Tokenizer


class ChatFormat:
    counted_by = "the model's own tokenizer"  # what the packer's report says it counted with

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
        """The ids the engine is sent: the template's markers as special tokens, every
        message content as plain text (it cannot open or close a turn)."""
        return self.encode_with_offsets(messages, add_generation_prompt)[1]

    def encode_with_offsets(self, messages: list[Message], add_generation_prompt: bool = True
                            ) -> tuple[str, list[int], list[tuple[int, int]]]:
        """The rendering, its token ids (as `encode`) and each token's character span."""
        text, contents = self.template.render_marked(messages, add_generation_prompt)
        if contents is None:
            # The template rewrites contents, so they cannot be told apart from its
            # own text: safe only when no content holds a marker.
            for m in messages:
                marker = next((t for t in self.tokenizer.special_tokens if t in str(m.get("content"))), None)
                if marker is not None:
                    raise InvalidInputError(
                        f"a {m.get('role')} message holds the special token {marker!r}, and this chat template "
                        "rewrites message text, so it cannot be kept as plain text; remove the marker"
                    )
            contents = []
        ids, offsets = self.tokenizer.encode_rendered(text, contents)
        return text, ids, offsets

    def count(self, messages: list[Message], add_generation_prompt: bool = True) -> int:
        return len(self.encode(messages, add_generation_prompt))
