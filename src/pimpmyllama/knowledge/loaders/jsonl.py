"""JSON and JSON Lines: the text fields of each record."""

import json
from pathlib import Path

from pimpmyllama.knowledge.documents import Block, LoadedDocument, SkippedFile
from pimpmyllama.knowledge.loaders.text import read_text_file

TEXT_FIELDS = ("text", "content", "body", "page_content", "answer", "question", "description", "summary")
TITLE_FIELDS = ("title", "name", "heading")


def _record_blocks(record) -> list[Block]:
    if isinstance(record, str):
        return [Block(record)]
    if not isinstance(record, dict):
        return []
    title = next((str(record[f]) for f in TITLE_FIELDS if isinstance(record.get(f), str)), None)
    texts = [record[f] for f in TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()]
    if not texts:  # no known field: every string value but the title
        texts = [v for k, v in record.items() if isinstance(v, str) and k not in TITLE_FIELDS and v.strip()]
    return [Block(t.strip(), title) for t in texts]


def load_json(path: Path) -> LoadedDocument:
    try:
        data = json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise SkippedFile(f"{path}: invalid JSON (line {exc.lineno})") from None
    records = data if isinstance(data, list) else [data]
    return LoadedDocument(str(path), [b for r in records for b in _record_blocks(r)])


def load_jsonl(path: Path) -> LoadedDocument:
    blocks = []
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise SkippedFile(f"{path}: line {number} is not valid JSON") from None
        blocks.extend(_record_blocks(record))
    return LoadedDocument(str(path), blocks)
