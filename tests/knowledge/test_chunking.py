"""The chunker: exact cases with a word counter, then properties with a real tokenizer."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pimpmyllama.knowledge.chunking import chunk_blocks, split_sentences
from pimpmyllama.knowledge.documents import Block


def words(text: str) -> int:
    return len(text.split())


def test_paragraphs_stay_whole_and_pack_together():
    blocks = [Block("one two three"), Block("four five"), Block("six seven eight nine")]
    chunks = chunk_blocks(blocks, words, chunk_size=6, overlap=0)
    assert [c.text for c in chunks] == ["one two three\n\nfour five", "six seven eight nine"]
    assert [c.tokens for c in chunks] == [5, 4] and [c.position for c in chunks] == [0, 1]


def test_long_paragraphs_are_cut_at_sentence_ends_with_sentence_overlap():
    text = "A b c. D e f. G h i. J k l."
    chunks = chunk_blocks([Block(text)], words, chunk_size=7, overlap=3)
    assert [c.text for c in chunks] == ["A b c. D e f.", "D e f. G h i.", "G h i. J k l."]


def test_headings_start_new_chunks_and_travel_with_them():
    blocks = [Block("a b", "Hours"), Block("c d", "Hours"), Block("e f", "Hours > Pool", page=2)]
    chunks = chunk_blocks(blocks, words, chunk_size=50, overlap=10)
    assert [(c.text, c.heading, c.page) for c in chunks] == [
        ("a b\n\nc d", "Hours", None),
        ("e f", "Hours > Pool", 2),
    ]
    assert chunks[1].embedding_text() == "Hours > Pool\ne f"


def test_a_sentence_longer_than_a_chunk_is_cut_between_words():
    chunks = chunk_blocks([Block(" ".join(f"w{i}" for i in range(10)))], words, chunk_size=4, overlap=0)
    assert [c.text for c in chunks] == ["w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9"]


def test_sentence_splitting():
    assert split_sentences("Hello there. How are you?\nFine! Thanks… ok") == [
        "Hello there.", "How are you?", "Fine!", "Thanks…", "ok"]


@pytest.mark.parametrize("size, overlap", [(4, 4), (4, 5), (4, -1), (1, 0)])
def test_bad_sizes_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_blocks([Block("x")], words, chunk_size=size, overlap=overlap)


@pytest.fixture(scope="module")
def count():
    from tokenizers import Tokenizer

    from pimpmyllama.models.defaults import bundled_default_embedder

    tok = Tokenizer.from_file(str(bundled_default_embedder() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


vocabulary = ["post", "office", "opens", "at", "9am", "the", "pool", "needs", "a", "cap", "bonnet", "de", "bain",
              "raviolis", "hier", "soir", "日本", "x" * 30]
sentence = st.lists(st.sampled_from(vocabulary), min_size=1, max_size=30).map(lambda w: " ".join(w) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    paras=st.lists(st.tuples(paragraph, st.sampled_from([None, "A", "A > B"]), st.sampled_from([None, 1, 2])),
                   min_size=1, max_size=8),
    chunk_size=st.integers(12, 80),
    overlap_share=st.floats(0, 0.5),
)
def test_chunking_properties(count, paras, chunk_size, overlap_share):
    blocks = [Block(t, h, p) for t, h, p in paras]
    overlap = int(chunk_size * overlap_share)
    chunks = chunk_blocks(blocks, count, chunk_size, overlap)
    # no chunk exceeds the size, as the embedder's tokenizer counts it
    assert all(count(c.text) == c.tokens <= chunk_size for c in chunks)
    # nothing is lost: every word of every block is in a chunk of the same heading, in order
    for block in blocks:
        joined = " ".join(c.text for c in chunks if c.heading == block.heading)
        for word in re.findall(r"\S+", block.text):
            # (a word longer than a whole chunk is cut in pieces: look for it without spaces)
            assert word.rstrip(".") in joined or word.rstrip(".") in joined.replace(" ", "")
    assert [c.position for c in chunks] == list(range(len(chunks)))
