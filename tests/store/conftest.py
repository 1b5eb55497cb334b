import pytest


@pytest.fixture
def store_world(stored_tiny, tiny_model, tmp_path):
    """A store with a model 'tiny', a second model 'tuned', an adapter 'form' (tuned's
    difference from tiny), a build 'b1' of tiny and a build file."""
    from tiny import make_tiny_model

    from pimpmyllama.merging.lora import extract_lora
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.prompting.build import Build
    from pimpmyllama.prompting.builds import BuildStore

    ModelStore().import_model(make_tiny_model(tmp_path / "tuned-src", seed=7), "tuned")
    extract_lora("tuned", "tiny", 2, "form")
    BuildStore().save("b1", Build.model_validate({"from": "tiny", "system": "Be brief."}))
    build_file = tmp_path / "b2.yml"
    build_file.write_text(f"from: {tiny_model}\nsystem: Hi\n")
    return {"tiny_folder": tiny_model, "build_file": build_file}
