"""The context packer: exact cases, then properties over random conversations."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pimpmyllama.errors import ContextOverflowError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.packer import Passage, Section, Shares, Turn, pack_context
from pimpmyllama.prompting.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def fmt(tiny_model):
    return ChatFormat(Tokenizer(tiny_model))


def turns(n, size=3):
    return [Turn(i, f"question {i} " + "hello " * size, f"answer {i} " + "world " * size) for i in range(n)]


def test_everything_fits_when_there_is_room(fmt):
    history = turns(3)
    packed = pack_context(fmt, message="When does the post office open?", num_ctx=512, max_new_tokens=64,
                          system="Be brief.", pinned=["The post office opens at 9am."], history=history)
    assert packed.kept_turns == [0, 1, 2] and packed.dropped_turns == []
    assert [m["role"] for m in packed.messages] == ["system", "user", "assistant"] * 1 + ["user", "assistant"] * 2 + ["user"]
    assert packed.messages[0]["content"] == "Be brief.\n\nFacts to keep in mind:\n- The post office opens at 9am."
    assert packed.prompt_ids == fmt.encode(packed.messages)
    by_name = {s.name: s for s in packed.sections}
    assert by_name["history"].kept == 3 and by_name["pinned"].kept == 1
    assert sum(s.tokens for s in packed.sections) == packed.total_tokens


def test_oldest_turns_go_first_and_whole(fmt):
    history = turns(30)
    packed = pack_context(fmt, message="hi", num_ctx=256, max_new_tokens=56, system="Be brief.", history=history)
    assert packed.total_tokens <= 200
    kept = packed.kept_turns
    assert kept == list(range(30 - len(kept), 30)) and 0 < len(kept) < 30
    # One more turn would not have fitted.
    bigger = [{"role": "system", "content": "Be brief."}]
    for t in history[29 - len(kept):]:
        bigger += [{"role": "user", "content": t.user}, {"role": "assistant", "content": t.assistant}]
    bigger.append({"role": "user", "content": "hi"})
    assert fmt.count(bigger) > 200


def test_what_must_stay_is_never_cut_but_refused_with_the_numbers(fmt):
    with pytest.raises(ContextOverflowError) as err:
        pack_context(fmt, message="hello " * 300, num_ctx=256, max_new_tokens=56, system="Be brief.")
    text = str(err.value)
    assert "only 200 fit (num_ctx 256 - max_new_tokens 56)" in text
    assert f"message {fmt.tokenizer.count('hello ' * 300)}," in text
    assert f"system prompt {fmt.tokenizer.count('Be brief.')}," in text


def test_passages_fill_their_shares_in_rank_order(fmt):
    passages = [Passage("hello world " * 30, f"[{i}]", 1.0 - i / 10) for i in range(1, 9)]
    packed = pack_context(fmt, message="hi", num_ctx=1000, max_new_tokens=100, knowledge=passages,
                          history=turns(40), shares=Shares(recalled=0.0, knowledge=0.5))
    kept = [p.label for p in packed.knowledge]
    assert kept == [f"[{i}]" for i in range(1, len(kept) + 1)] and 0 < len(kept) < 8
    base = pack_context(fmt, message="hi", num_ctx=1000, max_new_tokens=100)
    everything = Shares(recalled=0.0, knowledge=1.0)  # to measure what passages cost

    def cost(items):
        return pack_context(fmt, message="hi", num_ctx=1000, max_new_tokens=100, knowledge=items,
                            shares=everything).total_tokens - base.total_tokens

    assert cost(packed.knowledge) <= (900 - base.total_tokens) * 0.5 < cost(passages[: len(kept) + 1])
    # the passages sit with the question, in rank order
    question = packed.messages[-1]["content"]
    assert question.startswith("Context information is below.") and question.endswith("Query: hi\nAnswer:")
    assert packed.kept_turns  # history used what the passages left
    assert packed.total_tokens <= 900


MEMORY = Passage("user: my locker code is 4417\nassistant: noted, your locker code is 4417", source="turn #0")


def test_a_memory_longer_than_its_share_replaces_the_oldest_turns_at_a_small_window(fmt):
    history = turns(12)[2:]  # turns 0 and 1 have left the window: turn #0 is the memory
    args = dict(message="What is my locker code?", num_ctx=256, max_new_tokens=56, system="Be brief.",
                pinned=["The pool requires a cap."], history=history)
    without = pack_context(fmt, **args)
    fixed = pack_context(fmt, **{**args, "history": []}).total_tokens
    share = int((200 - fixed) * Shares().recalled)
    alone = pack_context(fmt, **{**args, "history": [], "recalled": [MEMORY]})
    assert alone.total_tokens - fixed > share  # longer than its share: it used to be dropped whole
    packed = pack_context(fmt, **args, recalled=[MEMORY, Passage("user: hi\nassistant: hello", source="turn #1")])
    assert packed.recalled == [MEMORY]  # the best one is kept; the next stays within the (used) share
    assert next(s for s in packed.sections if s.name == "recalled") == Section(
        "recalled", fmt.tokenizer.count(MEMORY.text), kept=1, dropped=1)
    assert packed.messages[0]["content"] == (
        "Be brief.\n\nFacts to keep in mind:\n- The pool requires a cap.\n\n"
        f"From earlier in this conversation:\n- {MEMORY.text}")
    assert packed.messages[-1] == {"role": "user", "content": "What is my locker code?"}
    # the oldest turns made room, newest kept, and it all fits
    assert without.kept_turns == [9, 10, 11] and without.recalled == []
    assert packed.kept_turns == [11] and packed.dropped_turns == list(range(2, 11))
    assert packed.total_tokens == 194 <= 200
    one_more = pack_context(fmt, **{**args, "history": history[-2:]}, recalled=[MEMORY])
    assert one_more.kept_turns == [11]  # a second turn would not have fitted beside the memory


def test_with_replace_history_off_a_memory_longer_than_its_share_is_dropped(fmt):
    history = turns(12)[2:]
    args = dict(message="What is my locker code?", num_ctx=256, max_new_tokens=56, system="Be brief.",
                pinned=["The pool requires a cap."], history=history)
    recalled = [MEMORY, Passage("user: hi\nassistant: hello", source="turn #1")]
    packed = pack_context(fmt, **args, recalled=recalled, shares=Shares(replace_history=False))
    # the packing before the exception: nothing recalled, the history fills the window
    assert packed.recalled == []
    assert next(s for s in packed.sections if s.name == "recalled") == Section("recalled", 0, kept=0, dropped=2)
    assert packed.kept_turns == [9, 10, 11] and packed.dropped_turns == list(range(2, 9))
    assert packed.messages[0]["content"] == "Be brief.\n\nFacts to keep in mind:\n- The pool requires a cap."
    assert packed.total_tokens <= 200
    # within a larger share the same memory is kept, the setting notwithstanding
    wide = pack_context(fmt, **args, recalled=[MEMORY], shares=Shares(recalled=0.9, replace_history=False))
    assert wide.recalled == [MEMORY] and wide.kept_turns == [11]


def test_a_memory_that_cannot_fit_the_window_leaves_the_history_alone(fmt):
    huge = Passage("locker code 4417 " * 60, source="turn #0")
    args = dict(message="What is my locker code?", num_ctx=256, max_new_tokens=56, history=turns(12))
    packed = pack_context(fmt, **args, recalled=[huge])
    assert packed.recalled == [] and packed.kept_turns == pack_context(fmt, **args).kept_turns


# --- properties -------------------------------------------------------------------
words = st.lists(st.sampled_from(["hello", "world", "post", "office", "9am", "é", "日本", "!"]), max_size=40)
texts = words.map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    system=texts,
    message=texts.filter(bool),
    exchanges=st.lists(st.tuples(texts, texts), max_size=25),
    num_ctx=st.integers(64, 600),
    extra=texts,
)
def test_packing_properties(fmt, system, message, exchanges, num_ctx, extra):
    history = [Turn(i, u, a) for i, (u, a) in enumerate(exchanges)]
    max_new = 32
    try:
        packed = pack_context(fmt, message=message, num_ctx=num_ctx, max_new_tokens=max_new, system=system or None,
                              history=history)
    except ContextOverflowError:
        # Refused only when the parts that must stay really do not fit.
        fixed = [{"role": "system", "content": system}] if system else []
        assert fmt.count(fixed + [{"role": "user", "content": message}]) > num_ctx - max_new
        return
    # never over budget; the system prompt and the new message always present, whole
    assert packed.total_tokens <= num_ctx - max_new
    if system:
        assert packed.messages[0] == {"role": "system", "content": system}
    assert packed.messages[-1] == {"role": "user", "content": message}
    # the kept turns are a suffix of the history
    kept = packed.kept_turns
    assert kept == [t.index for t in history[len(history) - len(kept):]]
    assert packed.dropped_turns == [t.index for t in history[: len(history) - len(kept)]]
    # adding a turn never makes an older one reappear
    longer = history + [Turn(len(history), extra, extra)]
    after = pack_context(fmt, message=message, num_ctx=num_ctx, max_new_tokens=max_new, system=system or None,
                         history=longer)
    oldest_before = kept[0] if kept else len(history)
    oldest_after = after.kept_turns[0] if after.kept_turns else len(longer)
    assert oldest_after >= oldest_before
