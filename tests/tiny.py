"""Tiny random models for tests: a 2-layer Llama with hidden size 64 and a small
byte-level BPE tokenizer with ChatML markers, written the way a Hugging Face
checkpoint is (safetensors, tokenizer.json, tokenizer_config.json, template)."""

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CORPUS = [
    "The post office opens at 9am and closes at 5pm.",
    "The hairdresser on the square opens at 9:30am.",
    "A swimming cap is required at the municipal pool.",
    "Yesterday evening I ate ravioli with my friends.",
    "Question: what is the capital of France? Answer: Paris.",
    "user assistant system hello world the a an of to in is it",
    "0 1 2 3 4 5 6 7 8 9 { } [ ] : , \" ' . ! ? - _ é à ç ü ß 日本",
]


def write_tokenizer(folder: Path, vocab_size: int = 384, template: str | None = CHATML) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    if template is not None:
        (folder / "chat_template.jinja").write_text(template)


def make_tiny_model(folder: Path, *, seed: int = 0, model_type: str = "llama", tie: bool = True,
                    template: str | None = CHATML, tokenizer_size: int = 384, **overrides) -> Path:
    """Write a deterministic tiny random model into `folder` and return it."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM

    write_tokenizer(folder, tokenizer_size, template=template)
    vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size()
    eos = Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id("<|im_end|>")
    params = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tie,
        eos_token_id=eos,
        bos_token_id=None,
        pad_token_id=0,
    )
    params.update(overrides)
    config = AutoConfig.for_model(model_type, **params)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    # Random init at std 0.02 gives near-uniform logits; larger weights make greedy
    # decoding decisive, so tests that compare token sequences are meaningful.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.2)
    model.save_pretrained(str(folder))
    model.generation_config.save_pretrained(str(folder))
    return folder
