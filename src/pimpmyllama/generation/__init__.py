"""The engine: load a model, generate and stream, sampling and stop conditions."""
