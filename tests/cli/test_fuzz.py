"""Hostile-but-ordinary input through the CLI, in-process: random Unicode (control
characters, lone surrogates, brackets, chat markers, path pieces) and random bytes as
messages, names, file names, file contents, YAML values and filter strings.

The invariant for every case: exit 0 or 2; on 2, one line on stderr and no traceback,
and the store (files under PML_HOME, rows of every table) is as it was. The number of
cases run is printed at the end of the module."""

import json
import os
import sqlite3
from collections import Counter

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MARKERS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "[/x]", "[bold]", "[", "]", "\\", "..", "/", "%zz",
           "*", "?", "=", "-", "--", "\x00", "\n", "\r", "\t", "\x1b[31m", "\u202e", "\udcff", "\ud800", "é", "日本"]
pieces = st.one_of(
    st.text(max_size=6),
    st.sampled_from(MARKERS),
    st.text(st.characters(categories=["Cc", "Cs", "Zs", "Cf"]), max_size=3),
)
hostile = st.lists(pieces, max_size=6).map("".join)
raw_bytes = st.one_of(st.binary(max_size=64), hostile.map(lambda s: s.encode("utf-8", "surrogatepass")))

BOOKKEEPING = {"schema_migrations", "sqlite_sequence", "chunks_fts_data", "chunks_fts_config"}
CASES: Counter = Counter()
SETTINGS = settings(max_examples=80, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def report_cases(request):
    yield
    line = f"fuzz cases run: {sum(CASES.values())} ({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + line)


def snapshot(home) -> tuple:
    """Files under PML_HOME (the database apart; empty store folders do not count) and
    the rows of every ordinary table."""
    files = sorted((str(p.relative_to(home)), p.stat().st_size)
                   for p in home.rglob("*") if p.is_file() and not p.name.startswith("pml.db"))
    rows = {}  # a fresh, empty database counts as no database
    if (home / "pml.db").exists():
        with sqlite3.connect(home / "pml.db") as con:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%'")]
            for table in tables:
                if table in BOOKKEEPING:
                    continue
                try:
                    count = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                except sqlite3.OperationalError:  # a shadow table of an extension this sqlite3 lacks
                    continue
                if count:
                    rows[table] = count
    return files, rows


def check(kind, result, home, before) -> None:
    CASES[kind] += 1
    assert result.exit_code in (0, 2), (result.exception, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit), result.exception
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert snapshot(home) == before


@pytest.fixture
def kb(run, pml_home, tmp_path):
    assert run("kb", "create", "b").exit_code == 0
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Hours\n\nThe post office opens at 9am.")
    assert run("kb", "add", "b", str(docs)).exit_code == 0
    return "b"


@given(message=hostile, session=st.booleans())
@SETTINGS
def test_messages_as_arguments(run, fake_engine, pml_home, message, session):
    before = snapshot(pml_home)
    args = ["ask", *(["--session", "s"] if session else []), "--", message]
    check("ask argument", run(*args), pml_home, before)


@given(data=raw_bytes, as_json=st.booleans())
@SETTINGS
def test_messages_on_stdin(run, fake_engine, pml_home, data, as_json):
    before = snapshot(pml_home)
    result = run("ask", "--session", "s", *(["--json"] if as_json else []), input=data)
    check("ask stdin", result, pml_home, before)


NAMED = [
    lambda n, f: ["create", "-f", str(f), "--", n],
    lambda n, f: ["builds", "show", "--", n],
    lambda n, f: ["sessions", "show", "--", n],
    lambda n, f: ["ask", "--session", n, "--", "hi"],
    lambda n, f: ["kb", "create", "--", n],
    lambda n, f: ["kb", "show", "--", n],
    lambda n, f: ["adapters", "show", "--", n],
    lambda n, f: ["models", "show", "--", n],
    lambda n, f: ["models", "rm", "--", n],
    lambda n, f: ["adapters", "rm", "--", n],
    lambda n, f: ["builds", "rm", "--", n],
    lambda n, f: ["chat", "--", n],
    lambda n, f: ["ask", "--", n, "hi"],
]


@given(name=hostile, command=st.sampled_from(range(len(NAMED))))
@SETTINGS
def test_names(run, fake_engine, stored_tiny, pml_home, tmp_path, name, command):
    build = tmp_path / "ok.yml"
    build.write_text("from: tiny\n")
    before = snapshot(pml_home)
    check("names", run(*NAMED[command](name, build)), pml_home, before)


@given(value=hostile, key=st.sampled_from(["system", "template", "from", "parameters"]), raw=raw_bytes)
@SETTINGS
def test_build_files(run, stored_tiny, pml_home, tmp_path, value, key, raw):
    build = tmp_path / "b.yml"
    before = snapshot(pml_home)
    # a YAML value of every kind (dumped safely, so the file itself parses), then raw bytes
    try:
        text = yaml.safe_dump({"from": "tiny", key: value}, allow_unicode=True)
    except yaml.YAMLError:
        text = f"from: tiny\n{key}: x\n"
    build.write_bytes(text.encode("utf-8", "surrogateescape"))
    check("build yaml", run("create", "b", "-f", str(build)), pml_home, before)
    before = snapshot(pml_home)
    build.write_bytes(raw)
    check("build bytes", run("create", "c", "-f", str(build)), pml_home, before)


@given(content=hostile, role=st.sampled_from(["user", "assistant", "system", "tool", ""]), raw=raw_bytes)
@SETTINGS
def test_training_data(run, stored_tiny, pml_home, tmp_path, content, role, raw):
    data = tmp_path / "d.jsonl"
    record = {"messages": [{"role": role, "content": content}, {"role": "assistant", "content": content}]}
    data.write_text(json.dumps(record) + "\n")
    before = snapshot(pml_home)
    check("data json", run("data", "check", str(data), "--model", "tiny"), pml_home, before)
    data.write_bytes(raw)
    check("data bytes", run("data", "check", str(data), "--model", "tiny"), pml_home, before)


@given(query=hostile, spec=hostile)
@SETTINGS
def test_searches_and_filters(run, kb, pml_home, query, spec):
    before = snapshot(pml_home)
    check("kb search", run("kb", "search", "b", "--mode", "keyword", "--", query), pml_home, before)
    check("kb filter", run("kb", "search", "b", "x", "--filter", spec), pml_home, before)


@given(name=raw_bytes, content=raw_bytes)
@settings(SETTINGS, max_examples=25)
def test_file_names_and_contents(run, kb, pml_home, tmp_path_factory, name, content):
    folder = tmp_path_factory.mktemp("drop")
    stem = name.replace(b"/", b"_").replace(b"\x00", b"_")[:100] or b"empty"
    for suffix in (b".txt", b".md"):
        with open(os.path.join(os.fsencode(folder), stem + suffix), "wb") as f:
            f.write(content)
    before = snapshot(pml_home)
    check("kb add", run("kb", "add", "b", str(folder)), pml_home, before)
