"""Prompt engineering: chat templates, token counting, the context packer and builds."""
