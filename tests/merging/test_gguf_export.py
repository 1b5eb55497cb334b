"""`pml export --format gguf | gguf-lora`: read back with gguf-py, tensor by tensor."""

import json

import numpy as np
import pytest
import torch
from cli_run import assert_one_line_error, pml
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.torch import load_file
from tiny import CHATML

import pimpmyllama.api as api
from pimpmyllama.merging.gguf.names import rope_permute

HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    **{f"model.layers.{i}.{hf}.weight": f"blk.{i}.{ours}.weight" for i in range(2) for hf, ours in [
        ("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down")]},
}


def field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def llama_cpp_layout(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tiny model (4 heads, 2 key/value heads) in llama.cpp's row order."""
    if "q_proj" in name:
        return rope_permute(tensor, 4)
    if "k_proj" in name:
        return rope_permute(tensor, 2)
    return tensor


def tensors_of(reader: GGUFReader) -> dict[str, np.ndarray]:
    """Every tensor dequantized to float32, in the Hugging Face (rows, columns) shape."""
    return {t.name: dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)])
            for t in reader.tensors}


@pytest.fixture
def weights(tiny_model):
    return load_file(str(tiny_model / "model.safetensors"))


def test_f16_gguf_holds_our_weights_exactly_with_converter_names_and_metadata(stored_tiny, tiny_model, weights,
                                                                              tmp_path):
    out = api.export("tiny", tmp_path / "tiny.gguf", format="gguf")
    reader = GGUFReader(out)
    types = {t.name: t.tensor_type for t in reader.tensors}
    # The tied output head is not stored: llama.cpp reads token_embd for it.
    assert set(types) == set(HF_TO_GGUF.values())
    assert {types[n] for n in types if "norm" in n} == {Q.F32}
    assert {types[n] for n in types if "norm" not in n} == {Q.F16}
    got = tensors_of(reader)
    for hf, ours in HF_TO_GGUF.items():
        expected = llama_cpp_layout(hf, weights[hf]).numpy()
        expected = expected if types[ours] == Q.F32 else expected.astype(np.float16).astype(np.float32)
        assert np.array_equal(got[ours], expected), ours

    tokenizer = json.loads((tiny_model / "tokenizer.json").read_text())
    vocab = {**tokenizer["model"]["vocab"], **{t["content"]: t["id"] for t in tokenizer["added_tokens"]}}
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert [vocab[t] for t in tokens] == list(range(len(vocab)))
    assert field(reader, "tokenizer.ggml.token_type")[:4] == [3, 3, 3, 1]  # the 3 special tokens are CONTROL
    assert field(reader, "tokenizer.ggml.merges") == [" ".join(m) for m in tokenizer["model"]["merges"]]
    assert field(reader, "tokenizer.ggml.eos_token_id") == vocab["<|im_end|>"]
    assert field(reader, "tokenizer.ggml.padding_token_id") == vocab["<|endoftext|>"]
    assert field(reader, "tokenizer.chat_template") == CHATML
    expected = {"general.architecture": "llama", "general.type": "model", "general.name": "tiny",
                "general.file_type": 1, "llama.block_count": 2, "llama.embedding_length": 64,
                "llama.feed_forward_length": 128, "llama.attention.head_count": 4,
                "llama.attention.head_count_kv": 2, "llama.context_length": 512, "llama.rope.dimension_count": 16,
                "llama.vocab_size": len(vocab), "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
                "tokenizer.ggml.add_bos_token": False, "tokenizer.ggml.add_space_prefix": False,
                "general.quantization_version": 2}
    assert {k: field(reader, k) for k in expected} == expected


def test_f32_gguf_holds_every_weight_exactly(stored_tiny, weights, tmp_path):
    reader = GGUFReader(api.export("tiny", tmp_path / "tiny-f32.gguf", format="gguf", quant="f32"))
    assert field(reader, "general.file_type") == 0  # LLAMA_FTYPE_ALL_F32
    assert {t.tensor_type for t in reader.tensors} == {Q.F32}
    got = tensors_of(reader)
    for hf, ours in HF_TO_GGUF.items():
        assert np.array_equal(got[ours], llama_cpp_layout(hf, weights[hf]).numpy()), ours


def _block_bound(x: np.ndarray, quant: str) -> np.ndarray:
    """The largest rounding error each value may have: half a step of its 32-value block
    (plus the fp16 rounding of the block's scale and offset)."""
    blocks = x.reshape(-1, 32)
    if quant == "q8_0":
        step = np.abs(blocks).max(axis=1) / 127
        bound = step * (0.5 + 127 * 2 ** -11)
    else:
        lo, hi = blocks.min(axis=1), blocks.max(axis=1)
        step = (hi - lo) / 15
        bound = step * (0.5 + 15 * 2 ** -11) + np.abs(lo) * 2 ** -11
    return np.repeat(bound, 32).reshape(x.shape) + 1e-7


@pytest.mark.parametrize("quant,matrix,embedding,file_type", [("q8_0", Q.Q8_0, Q.Q8_0, 7),
                                                             ("q4_1", Q.Q4_1, Q.Q8_0, 3)])
def test_quantized_gguf_dequantizes_within_the_formats_step(stored_tiny, weights, tmp_path, quant, matrix,
                                                            embedding, file_type):
    reader = GGUFReader(api.export("tiny", tmp_path / f"tiny-{quant}.gguf", format="gguf", quant=quant))
    assert field(reader, "general.file_type") == file_type
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["token_embd.weight"] == embedding and types["blk.0.ffn_down.weight"] == matrix
    got = tensors_of(reader)
    for hf, ours in HF_TO_GGUF.items():
        if "norm" in ours:
            continue
        expected = llama_cpp_layout(hf, weights[hf]).numpy()
        kind = "q8_0" if types[ours] == Q.Q8_0 else "q4_1"
        error = np.abs(got[ours] - expected)
        assert (error <= _block_bound(expected, kind)).all(), (ours, float(error.max()))
        assert error.max() > 0  # really quantized


def test_fine_tune_gguf_holds_the_merged_weights(store_world, tmp_path):
    """MODEL+ADAPTER: the adapter merged, as the Hugging Face export merges it."""
    hf = load_file(str(api.export("tiny+form", tmp_path / "merged") / "model.safetensors"))
    got = tensors_of(GGUFReader(api.export("tiny+form", tmp_path / "merged.gguf", format="gguf")))
    name = "model.layers.1.self_attn.q_proj.weight"
    expected = llama_cpp_layout(name, hf[name]).numpy().astype(np.float16).astype(np.float32)
    assert np.array_equal(got["blk.1.attn_q.weight"], expected)


def test_gguf_lora_applied_as_llama_cpp_applies_it_gives_the_merged_weights(trio, lora_adapter, pml_home, tmp_path):
    ref = f"{trio[0]}+{lora_adapter}"
    reader = GGUFReader(api.export(ref, tmp_path / "lora.gguf", format="gguf-lora"))
    assert field(reader, "general.type") == "adapter"
    assert field(reader, "adapter.type") == "lora"
    got = tensors_of(reader)
    assert sorted(got) == sorted(f"blk.{i}.attn_{m}.weight.lora_{ab}" for i in range(2) for m in "qv" for ab in "ab")
    rank = got["blk.0.attn_q.weight.lora_a"].shape[0]
    # The adapter's scale 16/4 is folded into lora_b, so llama.cpp's alpha/rank must be 1.
    assert rank == 4 and field(reader, "adapter.lora.alpha") == rank
    base = load_file(str(trio[0] / "model.safetensors"))
    merged = load_file(str(api.export(ref, tmp_path / "merged") / "model.safetensors"))
    for layer in range(2):
        for module, ours in (("q_proj", "attn_q"), ("v_proj", "attn_v")):
            hf, name = f"model.layers.{layer}.self_attn.{module}.weight", f"blk.{layer}.{ours}.weight"
            # What llama.cpp computes: W + (alpha/rank) B A, with W and B in its row order.
            applied = llama_cpp_layout(hf, base[hf]).numpy() + got[name + ".lora_b"] @ got[name + ".lora_a"]
            assert np.allclose(applied, llama_cpp_layout(hf, merged[hf]).numpy(), atol=1e-6), name
            assert not np.allclose(applied, llama_cpp_layout(hf, base[hf]).numpy(), atol=1e-3)


def test_an_adapter_that_replaces_whole_weights_is_not_a_gguf_lora(store_world, tmp_path):
    """The extracted adapter 'form' carries a whole embedding; llama.cpp's LoRA cannot."""
    result = pml("export", "tiny+form", "-o", str(tmp_path / "form.gguf"), "--format", "gguf-lora",
                 home=stored_tiny_home())
    assert_one_line_error(result, "replaces the whole weight model.embed_tokens.weight", "--format gguf")
    assert not (tmp_path / "form.gguf").exists()


def test_a_model_without_adapter_has_no_gguf_lora(stored_tiny, tmp_path):
    result = pml("export", "tiny", "-o", str(tmp_path / "x.gguf"), "--format", "gguf-lora", home=stored_tiny_home())
    assert_one_line_error(result, "has no adapter")
    assert not (tmp_path / "x.gguf").exists()


def stored_tiny_home():
    import os

    return os.environ["PML_HOME"]


@pytest.mark.parametrize("args,fragment", [
    (["--format", "gguff"], "unknown export format 'gguff' (known: hf, gguf, ollama, gguf-lora)"),
    (["--format", "gguf", "--quant", "q3"], "unknown quantization 'q3' (known: f16, f32, q8_0, q4_1)"),
    (["--quant", "q8_0"], "--quant is for --format gguf or ollama"),
])
def test_bad_format_or_quant_is_one_line_and_writes_nothing(stored_tiny, tmp_path, args, fragment):
    result = pml("export", "tiny", "-o", str(tmp_path / "out"), *args, home=stored_tiny_home())
    assert_one_line_error(result, fragment)
    assert list(tmp_path.iterdir()) == [tmp_path / "pml-home"]


def test_gguf_over_an_existing_file_is_refused(stored_tiny, tmp_path):
    (tmp_path / "taken.gguf").write_text("mine")
    result = pml("export", "tiny", "-o", str(tmp_path / "taken.gguf"), "--format", "gguf", home=stored_tiny_home())
    assert_one_line_error(result, "exists")
    assert (tmp_path / "taken.gguf").read_text() == "mine"


def test_the_cli_help_names_every_format_and_quantization():
    from typer.testing import CliRunner

    from pimpmyllama.cli.main import app
    from pimpmyllama.merging.export import FORMATS
    from pimpmyllama.merging.gguf.quants import QUANTS

    help_text = " ".join(CliRunner().invoke(app, ["export", "--help"], terminal_width=200).output.split())
    assert all(f"{name}:" in help_text for name in FORMATS)
    assert f"{', '.join(list(QUANTS)[:-1])} or {list(QUANTS)[-1]}".replace("f16,", "f16 (default),") in help_text
