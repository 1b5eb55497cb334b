"""pimpmyllama: customize an open Llama-family model locally, and see what each customization does."""

__version__ = "0.1.0"
