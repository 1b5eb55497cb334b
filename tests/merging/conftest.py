import pytest

from tiny import make_tiny_model


@pytest.fixture(scope="session")
def trio(tmp_path_factory):
    """Three tiny Llamas of the same shape and vocabulary: a base and two "fine-tunes"
    (base + a small random change, so their task vectors are meaningful)."""
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("trio")
    base = make_tiny_model(root / "base", seed=0)
    out = [base]
    for seed in (1, 2):
        folder = make_tiny_model(root / f"tuned{seed}", seed=0)
        path = folder / "model.safetensors"
        tensors = load_file(str(path))
        g = torch.Generator().manual_seed(seed)
        tensors = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in tensors.items()}
        save_file(tensors, str(path), metadata={"format": "pt"})
        out.append(folder)
    return out


@pytest.fixture(scope="session")
def lora_adapter(trio, tmp_path_factory):
    """A PEFT LoRA adapter (r 4, alpha 16, q_proj and v_proj) of the trio's base, with
    non-zero B so that it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(trio[0]))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(str(folder))
    return folder
