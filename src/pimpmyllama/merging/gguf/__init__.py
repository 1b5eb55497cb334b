"""Export to llama.cpp and Ollama: GGUF models and LoRA adapters, Ollama Modelfiles."""
