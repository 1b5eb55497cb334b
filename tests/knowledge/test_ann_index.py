"""The approximate index beside SQLite: consistent with the database whatever stops a
writer, never trusted when it is another base's or damaged, filters before ranking."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pimpmyllama.knowledge.chunking import Chunk
from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.storage import ann_parts
from pimpmyllama.storage.ann_index import AnnIndex, load_index
from pimpmyllama.storage.db import open_database

DIM, DOCS, PER_DOC = 16, 8, 40


def vectors_for(doc: int) -> np.ndarray:
    v = np.random.default_rng(doc).standard_normal((PER_DOC, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def put(store, kb, doc: int, seed: int | None = None) -> None:
    chunks = [Chunk(i, f"doc {doc} chunk {i}", None, None, 3) for i in range(PER_DOC)]
    store.put_document(kb, f"doc{doc}.md", f"hash{doc}-{seed}", None, 10, chunks, vectors_for(seed or doc))


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setenv("PML_ANN_MIN_ROWS", "100")
    ann_parts._cache.clear()
    yield
    ann_parts._cache.clear()


@pytest.fixture
def base(tmp_path):
    db = open_database(tmp_path / "pml.db")
    store = KnowledgeStore(db)
    kb = store.create("kb", "fake", DIM, 200, 0)
    for doc in range(DOCS):
        put(store, kb, doc)
    store.save_index(kb)
    yield store, kb
    db.close()


def exact(store, kb, query, k, among=None) -> list[int]:
    rows = store.db.query("SELECT c.id FROM chunks c WHERE c.kb_id = ? ORDER BY c.id", (kb.id,))
    ids = [r["id"] for r in rows if among is None or r["id"] in among]
    vectors = store.vectors(kb, ids)
    scores = sorted(((-float(vectors[i] @ query), i) for i in ids))
    return [i for _, i in scores[:k]]


def dense(store, kb, query, k, among=None) -> list[int]:
    return [i for i, _ in store.dense_search(kb, query, k, among)]


def assert_ranked_as_exact(store, kb, query, hits, k, among=None) -> None:
    """`hits` are the k nearest rows (of `among`) in order, as exact search ranks them. Only
    rows whose similarities tie to float32 rounding (1e-5) may swap places: usearch and numpy
    round the same cosine differently. A missed neighbour changes a score by far more."""
    expected = exact(store, kb, query, k, among)
    vectors = store.vectors(kb, sorted(set(hits) | set(expected)))
    assert len(set(hits)) == len(hits) == len(expected), (hits, expected)
    assert among is None or set(hits) <= set(among)
    got = [float(vectors[i] @ query) for i in hits]
    assert got == pytest.approx([float(vectors[i] @ query) for i in expected], abs=1e-5), (hits, expected)


def assert_dense_is_exact(store, kb, query, k, among=None) -> list[int]:
    hits = dense(store, kb, query, k, among)
    assert_ranked_as_exact(store, kb, query, hits, k, among)
    return hits


def queries(n=20) -> np.ndarray:
    q = np.random.default_rng(99).standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def index_path(store, kb):
    return ann_parts.index_folder(store.db.path) / f"vec_chunks_{DIM}.{kb.id}.usearch"


def file_version(store, kb) -> int | None:
    state = store.db.query_one("SELECT uid FROM vector_indexes WHERE part = ?", (kb.id,))
    found = load_index(index_path(store, kb), {"table": f"vec_chunks_{DIM}", "part": kb.id, "uid": state["uid"]}, DIM)
    return None if found is None else found[1]


def db_version(store, kb) -> int:
    return store.db.query_one("SELECT version FROM vector_indexes WHERE part = ?", (kb.id,))["version"]


def test_a_large_base_is_searched_through_its_index_file_with_exact_results(base):
    store, kb = base
    assert file_version(store, kb) == db_version(store, kb) == DOCS
    ann_parts._cache.clear()  # a fresh process: the index comes from the file
    for q in queries():
        assert_dense_is_exact(store, kb, q, 10)
    assert ann_parts._cache, "the search went through the approximate index"


def test_the_same_rows_give_the_same_index_and_every_row_is_found_by_its_own_vector(tmp_path):
    # Inserting on several threads at once gave a different graph nearly every time at
    # 1,000 rows, and now and then a row that no search reaches.
    vectors = np.random.default_rng(7).standard_normal((1000, DIM)).astype(np.float32)
    ids = np.arange(1, 1001)
    files = [tmp_path / f"{n}.usearch" for n in range(3)]
    for path in files:
        index = AnnIndex(DIM)
        index.add(ids, vectors)
        index.save(path, {"part": 1}, 1)
    assert files[0].read_bytes() == files[1].read_bytes() == files[2].read_bytes()
    assert [index.search(v, 1)[0][0] for v in vectors] == list(ids)


def test_a_small_base_is_searched_exactly_and_has_no_index_file(tmp_path):
    db = open_database(tmp_path / "pml.db")
    store = KnowledgeStore(db)
    kb = store.create("small", "fake", DIM, 200, 0)
    put(store, kb, 0)
    put(store, kb, 1)  # 80 rows, under the threshold of 100
    store.save_index(kb)
    assert_dense_is_exact(store, kb, queries()[0], 5)
    assert not index_path(store, kb).exists() and not ann_parts._cache
    db.close()


CRASHING_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_ann_index import put
    from pimpmyllama.knowledge.store import KnowledgeStore
    from pimpmyllama.storage.db import open_database

    store = KnowledgeStore(open_database({db!r}))
    kb = store.get("kb")
    put(store, kb, 100)            # committed; the index file lags (not yet worth writing)
    store.remove_documents(kb, "doc5.md")  # committed, then killed before the index write
    print("not killed")
""")


def test_a_writer_killed_between_commit_and_index_write_leaves_a_consistent_base(base, tmp_path):
    store, kb = base
    before = file_version(store, kb)
    script = CRASHING_WRITER.format(tests=str(Path(__file__).parent), db=str(store.db.path))
    env = {**os.environ, "PML_ANN_MIN_ROWS": "100", "PML_CRASH_BEFORE_INDEX_WRITE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    # The database holds both changes; the file was not written after them.
    assert {d.source for d in store.documents(kb)} == {f"doc{i}.md" for i in (0, 1, 2, 3, 4, 6, 7, 100)}
    assert file_version(store, kb) == before < db_version(store, kb)
    ann_parts._cache.clear()  # opened afresh, as the next process would
    for q in [*queries(), *vectors_for(5)[:5], *vectors_for(100)[:5]]:
        assert_dense_is_exact(store, kb, q, 10)
    store.save_index(kb)
    assert file_version(store, kb) == db_version(store, kb)


def test_a_removed_document_never_comes_back(base):
    store, kb = base
    doomed = [c.id for c in store.all_chunks(kb) if c.source == "doc2.md"]
    dense(store, kb, queries()[0], 10)  # the index is loaded in this process
    assert store.remove_documents(kb, "doc2.md") == ["doc2.md"]
    for fresh in (False, True):
        if fresh:
            ann_parts._cache.clear()
        for q in vectors_for(2):  # each removed chunk's own vector as the query
            assert not set(assert_dense_is_exact(store, kb, q, 10)) & set(doomed)


@pytest.mark.parametrize("sources", [["doc1.md"], ["doc0.md", "doc1.md", "doc2.md", "doc3.md"]])
def test_filters_apply_before_ranking_and_return_k_rows(base, sources):
    store, kb = base
    among = [c.id for c in store.all_chunks(kb) if c.source in sources]
    for q in queries():
        assert len(assert_dense_is_exact(store, kb, q, 10, among)) == 10
    assert len(assert_dense_is_exact(store, kb, queries()[0], 50, among[:7])) == 7


def test_a_filter_far_from_the_query_widens_the_search_or_falls_back_to_exact(base):
    store, kb = base
    q = queries()[0]
    far = exact(store, kb, -q, 120)  # the rows farthest from q: none among its first neighbours
    index = ann_parts.PartIndex(store.db, f"vec_chunks_{DIM}", DIM, kb.id).current()
    widened = ann_parts.approximate_search(index, q, 10, far)
    assert_ranked_as_exact(store, kb, q, [r["id"] for r in widened], 10, far)
    assert ann_parts.approximate_search(index, q, 10, [10**9 + i for i in range(120)]) is None
    assert_dense_is_exact(store, kb, q, 10, far)


def test_an_index_file_of_another_base_is_rebuilt_not_trusted(base):
    store, kb = base
    other = store.create("other", "fake", DIM, 200, 0)
    for doc in range(10, 10 + DOCS):
        put(store, other, doc)
    store.save_index(other)
    index_path(store, other).replace(index_path(store, kb))  # kb's file is now other's
    ann_parts._cache.clear()
    for q in queries():
        assert_dense_is_exact(store, kb, q, 10)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage"])
def test_a_damaged_index_file_is_rebuilt_not_trusted(base, damage):
    store, kb = base
    path = index_path(store, kb)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[-100] ^= 0xFF
    else:
        data = bytearray(b"not an index" * 10)
    path.write_bytes(bytes(data))
    ann_parts._cache.clear()
    assert file_version(store, kb) is None
    for q in queries():
        assert_dense_is_exact(store, kb, q, 10)
    assert file_version(store, kb) == db_version(store, kb)  # the rebuilt index was written by the search


def test_removing_a_base_removes_its_index_file(base):
    store, kb = base
    assert index_path(store, kb).exists()
    store.remove("kb")
    assert not index_path(store, kb).exists()
    assert store.db.query("SELECT * FROM vector_indexes") == []


def test_a_bad_threshold_is_one_line(monkeypatch, base):
    store, kb = base
    monkeypatch.setenv("PML_ANN_MIN_ROWS", "many")
    with pytest.raises(ann_parts.PmlError, match="PML_ANN_MIN_ROWS must be a whole number of rows, not 'many'"):
        dense(store, kb, queries()[0], 10)


def test_a_replaced_document_is_found_by_its_new_vectors_only(base):
    store, kb = base
    dense(store, kb, queries()[0], 10)  # the index is loaded in this process
    old = {c.id for c in store.all_chunks(kb) if c.source == "doc3.md"}
    put(store, kb, 3, seed=300)
    new = {c.id for c in store.all_chunks(kb) if c.source == "doc3.md"}
    for fresh in (False, True):
        if fresh:
            ann_parts._cache.clear()
        for q in [*vectors_for(3)[:5], *vectors_for(300)[:5]]:
            assert not set(assert_dense_is_exact(store, kb, q, 10)) & old
        assert dense(store, kb, vectors_for(300)[0], 1) == [min(new)]


def test_this_process_own_writes_are_caught_up_from_its_journal_without_a_scan(base, monkeypatch):
    """Adding, replacing and removing documents after the index is loaded: each sync applies
    the committed change itself (no comparison of every id with the database), and the
    results stay those of exact search."""
    store, kb = base
    dense(store, kb, queries()[0], 10)  # loaded in this process

    def no_scan(*args, **kwargs):
        raise AssertionError("the part was scanned")

    monkeypatch.setattr(ann_parts.PartIndex, "_compare", no_scan)
    put(store, kb, DOCS + 1)
    put(store, kb, 2, seed=200)  # replaced: its old rows removed, new ones added
    store.remove_documents(kb, "doc5.md")
    for q in [*queries(), *vectors_for(200)[:3], *vectors_for(DOCS + 1)[:3]]:
        assert_dense_is_exact(store, kb, q, 10)
    assert not ann_parts._journal.get(ann_parts.PartIndex(store.db, f"vec_chunks_{DIM}", DIM, kb.id)._key)


def test_a_rolled_back_write_leaves_nothing_in_the_journal(base):
    store, kb = base
    dense(store, kb, queries()[0], 10)
    key = ann_parts.PartIndex(store.db, f"vec_chunks_{DIM}", DIM, kb.id)._key
    with pytest.raises(RuntimeError), store.db.transaction():
        put(store, kb, DOCS + 2)
        raise RuntimeError("fails after the rows were written")
    assert not ann_parts._journal.get(key)
    existing = {c.id for c in store.all_chunks(kb)}
    for q in [*vectors_for(DOCS + 2)[:5], *queries(5)]:  # the rolled-back rows' own vectors: no phantom found
        assert set(assert_dense_is_exact(store, kb, q, 10)) <= existing
