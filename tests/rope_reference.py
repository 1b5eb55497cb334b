"""transformers' LlamaForCausalLM with a build's rope_scaling: the reference the
engine's scaled logits and long-window perplexities are checked against."""

import torch


def hf_scaled_logits(folder, scaling: dict | None, ids: list[int]) -> torch.Tensor:
    """Logits [len(ids), vocab] in one pass, no cache (transformers' dynamic base is
    then that of len(ids)); `scaling` as in a build ({"type": ..., "factor": ...})."""
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(str(folder))
    if scaling:
        config.rope_parameters = {"rope_type": scaling["type"], "rope_theta": config.rope_parameters["rope_theta"],
                                  **{k: v for k, v in scaling.items() if k != "type"}}
    model = LlamaForCausalLM.from_pretrained(str(folder), config=config, dtype=torch.float32)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def hf_token_losses(folder, scaling: dict | None, ids: list[int]) -> torch.Tensor:
    """-log p(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1."""
    logits = hf_scaled_logits(folder, scaling, ids)[:-1]
    return -torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
