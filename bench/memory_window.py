"""Long-term memory at small windows: does letting the best recalled memory take the
place of the oldest history turns (`memory.replace_history: true`, ours) bring a fact
back into the answer, against the packing before it (`false`: a memory longer than
its share, `memory.share` x the room left, is dropped whole), in the same run.

For each fact: a session on the default model (greedy, a session-backed conversation
as `pml chat --session` opens it) whose turn 0 tells the fact with a short canned
reply; then canned filler exchanges, recorded through the conversation's own
bookkeeping (the packer moves the window's edge, evicted turns are embedded into
memory) without generating, until turn 0 has left the window, and `--extra` more;
then the question about the fact, answered by the model. Per num_ctx and setting:
how often the fact's memory (turn #0) is in the prompt, how often the reply contains
the expected answer (case-folded), the mean history turns kept, and the fact
memory's length beside the memory share. Sessions live in a temporary database.

    python bench/memory_window.py [--num-ctx 256,384,512] [--max-new-tokens 24] [--extra 2] [--system TEXT]
"""

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.chat.resolve import load_engine
from pimpmyllama.generation.engine import Completion, Usage
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.packer import pack_context
from pimpmyllama.storage.db import open_database

# (what the user tells, the canned reply, the question, the expected answer). The
# messages are as long as people write them (one or two sentences of context around
# the fact): memories of 33 to 63 tokens, most over the share at num_ctx 256 (about
# 38 tokens with the default memory.share), all under it at 512 (about 90).
FACTS = [
    (("I'm going shopping downtown this afternoon and the garage is huge. Remember this: my car is parked "
      "on level 3, spot B12, next to the elevators."),
     "Got it. Your car is parked on level 3, spot B12, next to the elevators.",
     "Where is my car parked?", "B12"),
    ("My locker code at the gym is 4417, please keep it for me.",
     "Noted: your gym locker code is 4417.",
     "What is my gym locker code?", "4417"),
    (("We are planning a family dinner next month. My sister's name is Ottilie and she lives in Lyon with "
      "her two boys."),
     "How nice! Your sister Ottilie lives in Lyon with her two boys.",
     "What is my sister's name?", "Ottilie"),
    (("We rented the cottage by the lake again this summer. The wifi password there is heron-58, don't let "
      "me forget it."),
     "I won't: the wifi password at the cottage is heron-58.",
     "What is the wifi password at the cottage?", "heron-58"),
    (("My flight to Oslo leaves from gate D7 tomorrow morning at seven, and I have to drop the rental car "
      "first."),
     "Okay: gate D7 for your flight to Oslo tomorrow at seven, after returning the rental car.",
     "Which gate does my flight leave from?", "D7"),
    ("I'm allergic to sesame, keep that in mind when you suggest food.",
     "Understood, I'll avoid sesame in anything I suggest.",
     "What am I allergic to?", "sesame"),
    (("Quick update for the project: our weekly team meeting moved to the room called Tulip, on the fourth "
      "floor of the north building."),
     "Got it: the weekly team meeting is now in room Tulip, fourth floor of the north building.",
     "In which room is the team meeting?", "Tulip"),
    ("My dentist appointment is on Thursday at 14:30, it's the check-up I postponed twice already.",
     "Noted, your dentist check-up is on Thursday at 14:30.",
     "What time is my dentist appointment?", "14:30"),
    (("I ordered a new lamp last week and it still hasn't arrived. The tracking number of my parcel is "
      "ZX4491, in case I need to call the shop."),
     "Thanks, I'll remember the tracking number ZX4491 for your parcel.",
     "What is the tracking number of my parcel?", "ZX4491"),
    ("My cat is called Pistache, she is three years old and she hates the vacuum cleaner.",
     "Pistache is a lovely name! A three-year-old cat who hates the vacuum cleaner.",
     "What is my cat called?", "Pistache"),
    (("For the trip to Porto: the hotel booking reference is Q7M2, and I'll need it at check-in on Friday "
      "evening."),
     "Noted: hotel booking reference Q7M2, for check-in on Friday evening.",
     "What is the hotel booking reference?", "Q7M2"),
    (("The neighbours will feed the fish while we're away. I left the spare key under the blue flowerpot by "
      "the back door."),
     "Okay, the spare key is under the blue flowerpot by the back door.",
     "Where did I leave the spare key?", "flowerpot"),
]

FILLER = [
    ("What's a good way to start running?",
     "Start slowly: run-walk intervals three times a week, adding a few minutes each week."),
    ("Can you suggest a quick dinner?",
     "A vegetable omelette with a green salad takes about fifteen minutes."),
    ("How do I keep basil alive indoors?",
     "Give it a sunny window, water it when the top of the soil is dry, and pinch off the flowers."),
    ("Recommend a classic novel.",
     "Try Pride and Prejudice by Jane Austen: witty, short chapters and a great story."),
    ("What is a good stretch for the back?",
     "The child's pose: kneel, sit back on your heels and reach your arms forward for thirty seconds."),
    ("How long should I boil an egg?",
     "About seven minutes for a firm white and a soft yolk, then cool it in cold water."),
    ("Any tips for sleeping better?",
     "Keep a regular bedtime, avoid screens for an hour before, and keep the room cool and dark."),
    ("What should I pack for a day hike?",
     "Water, a snack, a light jacket, sunscreen, a map and a charged phone."),
]


SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@dataclass
class Outcome:
    fact_recalled: bool
    answered: bool
    history_kept: int
    filler_turns: int
    memory_tokens: int  # the fact's memory, as the packer counts a recalled text
    share_tokens: int  # memory.share x the room the always-in parts leave
    reply: str


def canned(text: str) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage())


def run_fact(engine, sessions: SessionStore, name: str, fact, num_ctx: int, max_new_tokens: int,
             replace_history: bool, extra: int, system: str) -> Outcome:
    told, ack, question, expected = fact
    build = Build.model_validate({
        "system": system or None,
        "parameters": {"num_ctx": num_ctx, "max_new_tokens": max_new_tokens, "temperature": 0},
        "memory": {"replace_history": replace_history},
    })
    conv = Conversation(engine, build, sessions=sessions, session=sessions.create(name, None))
    # Canned exchanges go through the conversation's own recording: the packer's
    # window edge is stored and the evicted turns are embedded, as in a real chat.
    conv._record(told, conv.pack(told), canned(ack))
    fillers, until = 0, None
    while until is None or fillers < until:
        user, answer = FILLER[fillers % len(FILLER)]
        conv._record(user, conv.pack(user), canned(answer))
        fillers += 1
        if until is None and conv.session.window_start > 0:
            until = fillers + extra
        if fillers > 100:
            raise RuntimeError(f"turn 0 never left a {num_ctx}-token window")
    reply = conv.send(question)
    text = reply.text()
    context = reply.context
    fixed = pack_context(conv.format, message=question, num_ctx=num_ctx, max_new_tokens=max_new_tokens,
                         system=conv.system).total_tokens
    memory = next(m for m in conv.memories() if m.turn_idx == 0)
    return Outcome(
        fact_recalled=any(p.source == "turn #0" for p in context.recalled),
        answered=expected.casefold() in text.casefold(),
        history_kept=len(context.kept_turns),
        filler_turns=fillers,
        memory_tokens=conv.format.tokenizer.count(memory.text),
        share_tokens=int((num_ctx - max_new_tokens - fixed) * build.memory.share),
        reply=text,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--num-ctx", default="256,384,512")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--extra", type=int, default=2, help="filler exchanges after turn 0 has left the window")
    # Without a system prompt the model's template adds its own default one, which the
    # recalled block then replaces: a memory would cost less than its length.
    parser.add_argument("--system", default=SYSTEM, help="the build's system prompt ('' for none)")
    parser.add_argument("--facts", type=int, default=len(FACTS))
    parser.add_argument("--verbose", action="store_true", help="print every reply")
    args = parser.parse_args()
    sizes = [int(n) for n in args.num_ctx.split(",")]
    facts = FACTS[: args.facts]
    engine = load_engine(args.model)
    started = time.perf_counter()
    results: dict[tuple[int, bool], list[Outcome]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = SessionStore(open_database(Path(tmp) / "bench.db"))
        for num_ctx in sizes:
            for replace in (True, False):
                outcomes = results[num_ctx, replace] = []
                for i, fact in enumerate(facts):
                    name = f"c{num_ctx}-{'r' if replace else 'b'}-{i}"
                    outcomes.append(run_fact(engine, sessions, name, fact, num_ctx, args.max_new_tokens, replace,
                                             args.extra, args.system))
                    if args.verbose:
                        o = outcomes[-1]
                        print(f"{name}: recalled={o.fact_recalled} answered={o.answered} "
                              f"history={o.history_kept} {o.reply!r}", flush=True)
                print(f"num_ctx {num_ctx}, replace_history {str(replace).lower()}: done "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)

    n = len(facts)
    print(f"\nmodel {args.model} · greedy · max_new_tokens {args.max_new_tokens} · {n} facts · "
          f"{args.extra} filler exchanges after the fact left the window · system prompt {args.system!r}\n")
    print("| num_ctx | fact memory / share (tokens) | fact in context: true / false | answer in reply: "
          "true / false (diff) | history turns kept: true / false |")
    print("|---:|---:|---:|---:|---:|")
    for num_ctx in sizes:
        ours, base = results[num_ctx, True], results[num_ctx, False]
        rec = [sum(o.fact_recalled for o in r) for r in (ours, base)]
        ans = [sum(o.answered for o in r) for r in (ours, base)]
        hist = [statistics.mean(o.history_kept for o in r) for r in (ours, base)]
        memory = statistics.mean(o.memory_tokens for o in ours)
        share = statistics.mean(o.share_tokens for o in ours)
        print(f"| {num_ctx} | {memory:.0f} / {share:.0f} | {rec[0]}/{n} / {rec[1]}/{n} | "
              f"{ans[0]}/{n} / {ans[1]}/{n} ({ans[0] - ans[1]:+d}) | {hist[0]:.1f} / {hist[1]:.1f} |")
    total = [sum(o.answered for s in sizes for o in results[s, flag]) for flag in (True, False)]
    ratio = f"{total[0] / total[1]:.2f}x" if total[1] else "n/a (baseline 0)"
    print(f"\nanswered over all windows: true {total[0]}/{n * len(sizes)}, false {total[1]}/{n * len(sizes)} "
          f"(ratio {ratio}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
