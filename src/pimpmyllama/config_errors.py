"""Turning pydantic validation errors into one line that names the key."""

from pydantic import ValidationError


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


def parse_yaml_mapping(text: str, source: str, what: str, model, empty_ok: bool = False):
    """Parse YAML text into `model` (a pydantic class); every failure is one line
    naming the file and, where it can, the line or key. `what` describes the
    expected mapping for the error when the document is not one."""
    import yaml

    from pimpmyllama.errors import InvalidInputError
    from pimpmyllama.text import check_texts

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
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(source, exc)) from None

