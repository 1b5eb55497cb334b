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
