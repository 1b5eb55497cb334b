"""Reading config files (builds, merge recipes, training runs): YAML mappings
validated by a pydantic model. Every failure is one `InvalidInputError` line that
names the file and, where it can, the line or the key."""

from pathlib import Path

from pydantic import BaseModel, ValidationError

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.text import check_texts


def describe_validation_error(source: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{where}'")
        else:
            problems.append(f"'{where}': {err['msg'].rstrip('.')}")
    return f"{source}: " + "; ".join(problems)


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} cannot be read ({exc})") from None


def read_yaml_mapping(text: str, source: str, what: str, empty_ok: bool = False) -> dict:
    """The YAML document in `text`, which must be a mapping; `what` describes the
    expected mapping for the error when it is not one. An empty document is {} when
    `empty_ok`."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InvalidInputError(f"{source}: not valid YAML{where}") from None
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: {what}")
    check_texts(data, source)
    return data


def validate(model: type[BaseModel], data: dict, source: str):
    """`model` built from `data`; unknown keys, missing keys and bad values are one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(source, exc)) from None


def parse_yaml_mapping(text: str, source: str, what: str, model: type[BaseModel], empty_ok: bool = False):
    """Parse YAML text into `model` (a pydantic class)."""
    return validate(model, read_yaml_mapping(text, source, what, empty_ok), source)
