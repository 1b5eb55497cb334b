"""Data formats and file types are recognised; a bad record names file, line and field."""

import json

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.training.dataset import load_examples
from pimpmyllama.training.formats import ChatExample, CompletionExample, TextExample


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_every_format_is_normalised(tmp_path):
    cases = {
        "messages": ({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
                                   {"role": "assistant", "content": "A"}]},
                     ChatExample((("system", "S"), ("user", "Q"), ("assistant", "A")), "")),
        "sharegpt": ({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
                      "system": "S"},
                     ChatExample((("system", "S"), ("user", "Q"), ("assistant", "A")), "")),
        "alpaca": ({"instruction": "Do", "input": "this", "output": "Done", "system": "S", "history": [["q0", "a0"]]},
                   ChatExample((("system", "S"), ("user", "q0"), ("assistant", "a0"), ("user", "Do\n\nthis"),
                                ("assistant", "Done")), "")),
        "completion": ({"prompt": "Question: Q\nAnswer:", "completion": " A"},
                       CompletionExample("Question: Q\nAnswer:", " A", "")),
        "text": ({"text": "Some text."}, TextExample("Some text.", "")),
    }
    for name, (record, expected) in cases.items():
        path = write_jsonl(tmp_path / f"{name}.jsonl", [record])
        fmt, [example] = load_examples([path])
        assert fmt == name
        assert example.__class__ is expected.__class__
        assert example.origin == f"{path}:1"
        assert {k: v for k, v in example.__dict__.items() if k != "origin"} == \
            {k: v for k, v in expected.__dict__.items() if k != "origin"}


def test_file_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"prompt": "p1", "completion": "c1"}, {"prompt": "p2", "completion": "c2"}]
    (tmp_path / "d.json").write_text(json.dumps(records))
    (tmp_path / "d.csv").write_text("prompt,completion\np1,c1\np2,c2\n")
    pq.write_table(pa.Table.from_pylist(records), str(tmp_path / "d.parquet"))
    (tmp_path / "m.csv").write_text('messages\n"[{""role"": ""user"", ""content"": ""hi""}, '
                                    '{""role"": ""assistant"", ""content"": ""yo""}]"\n')
    (tmp_path / "notes.txt").write_text("plain text for pre-training")
    for name in ("d.json", "d.csv", "d.parquet"):
        fmt, examples = load_examples([tmp_path / name])
        assert fmt == "completion" and [(e.prompt, e.completion) for e in examples] == [("p1", "c1"), ("p2", "c2")]
    assert load_examples([tmp_path / "d.csv"])[1][1].origin == f"{tmp_path / 'd.csv'}:3"
    assert load_examples([tmp_path / "m.csv"])[1][0].messages == (("user", "hi"), ("assistant", "yo"))
    assert load_examples([tmp_path / "notes.txt"]) == ("text", [TextExample("plain text for pre-training",
                                                                             str(tmp_path / "notes.txt"))])


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"messages": [{"role": "user", "content": "q"}]}', '{"messages": [{"role": "robot", "content": "x"}]}'],
         "d.jsonl:2: field 'messages[0].role': unknown role 'robot'"),
        (['{"messages": [{"role": "user"}]}'], "d.jsonl:1: field 'messages[0].content' must be a string"),
        (['{"conversations": [{"from": "alien", "value": "x"}]}'],
         "d.jsonl:1: field 'conversations[0].from': unknown role 'alien'"),
        (['{"prompt": "p", "completion": "c"}', '{"prompt": "p"}'], "d.jsonl:2: field 'completion' must be a string"),
        (['{"prompt": "p", "completion": "c"}', "{not json"], "d.jsonl:2: not valid JSON"),
        (['{"question": "q", "answer": "a"}'], "d.jsonl:1: unknown data format (fields: answer, question)"),
        (['{"instruction": "i", "output": "o", "history": [["only one"]]}'],
         "d.jsonl:1: field 'history[0]' must be a [question, answer] pair"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, lines, message):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError) as err:
        load_examples([path])
    assert message in str(err.value)


def test_empty_and_mixed_datasets(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InvalidInputError, match="the dataset is empty"):
        load_examples([tmp_path / "empty.jsonl"])
    a = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "c"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(InvalidInputError, match="format messages, but earlier files are completion"):
        load_examples([a, b])
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(InvalidInputError, match="unsupported data file"):
        load_examples([tmp_path / "x.xlsx"])
