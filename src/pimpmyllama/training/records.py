"""Reading training data files: JSONL, JSON, CSV and Parquet, one record at a time,
each with where it came from (file and line) for error messages."""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError

TEXT_SUFFIXES = (".txt", ".md", ".text", ".markdown")
RECORD_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Record:
    data: dict
    origin: str  # "data.jsonl:12"


def read_records(path: Path) -> Iterator[Record]:
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl(path)
    elif suffix == ".json":
        yield from _json(path)
    elif suffix == ".csv":
        yield from _csv(path)
    elif suffix == ".parquet":
        yield from _parquet(path)
    elif suffix in TEXT_SUFFIXES:
        yield Record({"text": _read_text(path)}, f"{path}")
    else:
        raise InvalidInputError(f"{path}: unsupported data file (use {', '.join(RECORD_SUFFIXES + TEXT_SUFFIXES)})")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not UTF-8 text") from None


def _jsonl(path: Path) -> Iterator[Record]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"{path}:{number}: a record must be a JSON object")
        yield Record(data, f"{path}:{number}")


def _json(path: Path) -> Iterator[Record]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InvalidInputError(f"{path}: expected a list of records")
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise InvalidInputError(f"{path}: record {number} must be a JSON object")
        yield Record(item, f"{path}:record {number}")


def _csv(path: Path) -> Iterator[Record]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            # Cells holding JSON lists (e.g. a messages column) are decoded.
            data = {}
            for key, value in row.items():
                if isinstance(value, str) and value.strip().startswith(("[", "{")):
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError:
                        pass
                data[key] = value
            yield Record(data, f"{path}:{reader.line_num}")


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except Exception as exc:  # pyarrow raises several kinds
        raise InvalidInputError(f"{path}: not a readable Parquet file ({exc})") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield Record(row, f"{path}:row {number}")
