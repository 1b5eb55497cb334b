"""An OpenAI-compatible HTTP API over builds and models (`pml serve`).

    from pimpmyllama.serving.app import create_app
    app = create_app(api_key="secret")      # a FastAPI app: run it, mount it, or test it

See docs/serving.md for the endpoints and the fields honoured.
"""
