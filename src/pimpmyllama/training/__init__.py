"""Fine-tuning: data formats, label masking, packing, the training recipe, LoRA, checkpoints."""
