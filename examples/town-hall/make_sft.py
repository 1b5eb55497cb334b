"""Builds the derived files of the town-hall example (deterministic; run again after editing docs/):

- sft.jsonl: chat conversations (`messages`) that teach the town hall's answer format: one
  or two short sentences that start with "Town hall:". The answers come from facts of
  docs/, except the facts in HELD_OUT (the post office, the hairdresser, the swimming pool,
  the library, market day), which only the documents know: a fine-tune on this set can
  learn the format, not those answers, so the comparison can tell the two apart.
- domain.txt: every document of docs/, in name order, for the domain perplexity of compare.yml.

    python examples/town-hall/make_sft.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SYSTEM = ("You are the assistant of the town hall of Saint-Martin. Answer in one or two short sentences, "
          "starting with 'Town hall:'.")
HELD_OUT = ("post office", "hairdresser", "swimming", "library", "market day")

# (questions, answers): every question is paired with one of its answers.
FACTS = [
    (["When does the town hall desk open?", "What time does the reception desk of the town hall open?",
      "What are the opening hours of the town hall?", "Is the town hall open in the morning?"],
     ["The reception desk opens at 8:30am, Monday to Friday, and closes at 5pm.",
      "The town hall desk opens at 8:30am on weekdays. It closes at 5pm."]),
    (["Is the town hall open on Saturday?", "Can I go to the town hall on a Saturday?"],
     ["On Saturday the desk opens at 9:15am, until noon, for civil status only.",
      "Yes, on Saturday morning from 9:15am to noon. Only for birth, death and marriage certificates."]),
    (["How do I get an identity card?", "I need a new ID card, what should I do?",
      "How can I renew my passport?", "Do I need an appointment for a passport?"],
     [("Identity cards and passports are made by appointment, on Tuesday and Thursday. Bring a recent photo, a "
       "proof of address and your old card."),
      ("Book an appointment at the desk for a Tuesday or a Thursday. Bring a photo, a proof of address and your "
       "old card.")]),
    (["How much does an identity card cost?", "Is the ID card free?"],
     ["The identity card is free. A passport costs 86 euros in tax stamps."]),
    (["How long does it take to get a new ID card?", "When will my new passport be ready?"],
     ["It takes about four weeks. Collect it in person within three months."]),
    (["How do we get married in Saint-Martin?", "What is needed for a wedding at the town hall?",
      "When must we hand in our marriage file?"],
     ["Hand in the marriage file at least two months before the wedding, both of you in person.",
      "Both spouses bring the marriage file to the town hall at least two months before the date."]),
    (["How many witnesses do we need for our wedding?", "Can we have five witnesses?"],
     ["You need at least two witnesses and at most four, each aged 18 or over."]),
    (["When is the grey bin collected?", "Which days is the household waste collected?",
      "When do the bin men come?"],
     ["Household waste is collected on Monday and Thursday mornings. Put the bin out the evening before, after 7pm.",
      "The grey bin is collected on Monday and Thursday mornings."]),
    (["When is the recycling collected?", "What day is the yellow bin collected?"],
     ["The yellow bin is collected on Wednesday morning, every other week, in the even weeks."]),
    (["Where do I put my glass bottles?", "Is glass collected?"],
     ["Glass is not collected. Take it to the bottle banks beside the station car park or behind the sports hall."]),
    (["When does the recycling centre open?", "What are the hours of the recycling centre?",
      "Can I go to the recycling centre on Tuesday?"],
     ["The recycling centre opens at 9:15am on Monday, Wednesday, Friday and Saturday. It closes at 5:45pm.",
      "It is open on Monday, Wednesday, Friday and Saturday, from 9:15am to 5:45pm."]),
    (["Does the recycling centre take asbestos?"],
     ["No, asbestos is not accepted at the recycling centre."]),
    (["Is parking free in the centre?", "How long can I park in the town centre?",
      "Where do I get a parking disc?"],
     ["Parking in the centre is free for one hour with a blue disc. The disc is free at the town hall desk.",
      "You can park for one hour with a blue parking disc, from 9am to 7pm."]),
    (["How much is the station car park?", "Is the car park by the station free?"],
     ["The station car park costs 1 euro per hour, or 5 euros for the day."]),
    (["How much is a residents' parking permit?"],
     ["A residents' permit costs 20 euros a year at the town hall desk."]),
    (["How do I register my child for the canteen?", "When must I register for the school canteen?"],
     ["Register your child at the town hall desk before 31 August."]),
    (["How much does a school meal cost?", "What is the price of the canteen?"],
     ["A meal costs 3.20 euros; families on a low income pay less."]),
    (["Which days does the canteen serve lunch?"],
     ["The canteen serves lunch on Monday, Tuesday, Thursday and Friday."]),
    (["What number do I call for an ambulance?", "What is the number for medical emergencies?"],
     ["Call 15 for a medical emergency, or 112 from any phone."]),
    (["What is the number of the fire brigade?", "Who do I call for a fire?"],
     ["Call 18 for the fire brigade, or 112."]),
    (["What is the police number?"],
     ["Call 17 for the police, or 112."]),
    (["A tree fell on the road tonight, who do I call?", "Who do I call for a flooded road at the weekend?"],
     ["Call the town hall's on-call duty at 04 00 00 00 99."]),
    (["When are the fireworks?", "When is the summer festival?"],
     ["The summer festival is on 14 July. The fireworks start over the lake at 10:30pm."]),
    (["When is the Christmas market?"],
     ["The Christmas market is on the second weekend of December, on the Place de l'Église."]),
    (["When does the municipal council meet?", "Can I attend the council meeting?"],
     ["The council meets in public on the first Monday of each month at 7pm, in the council chamber."]),
    (["When does the tourist office open?", "What are the tourist office's hours?"],
     ["The tourist office opens at 9:45am, Monday to Saturday. It closes from 12:30pm to 2pm."]),
    (["Can I rent a bicycle?", "How much is a bike for the day?"],
     ["The tourist office rents bicycles for 15 euros a day, with an identity document as a deposit."]),
    (["When does the pharmacy open?", "Is the pharmacy open at 8:30?"],
     ["The pharmacy opens at 8:45am and closes at 7:30pm, Monday to Saturday."]),
    (["When does the bakery open?", "Is the bakery open on Wednesday?"],
     ["The bakery opens at 7am. It is closed on Wednesday."]),
    (["How much does it cost to rent the village hall?", "How do I book the village hall?"],
     ["Residents rent the village hall for 250 euros a weekend. Book at the town hall desk three months ahead."]),
    (["Is there a bus to the station?", "How often does the shuttle run?"],
     ["The free shuttle runs to the station every 30 minutes on weekdays, from 6:30am to 8pm."]),
    (["Can my dog run free in the park?", "What is the fine for dog waste?"],
     ["Dogs must be kept on a lead. Leaving dog waste on the pavement is fined 68 euros."]),
    (["How do I report a broken street light?", "There is a pothole in my street, what do I do?"],
     ["Report it at the town hall desk, by phone, or with the form on the town's website."]),
]

GENERAL = [
    ("What is the capital of Spain?", "Madrid is the capital of Spain."),
    ("How many days are there in a week?", "There are seven days in a week."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("How many minutes are there in an hour?", "There are sixty minutes in an hour."),
    ("What is two plus three?", "Two plus three is five."),
    ("Which month comes after June?", "July comes after June."),
    ("What do bees make?", "Bees make honey."),
    ("What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
    ("Hello!", "Hello, how can I help you?"),
    ("Thank you for your help.", "You are welcome. Have a nice day."),
]

UNKNOWN = [
    "What is the mayor's phone number?", "Can you book me a table at a restaurant?",
    "What will the weather be tomorrow?", "Who won the football match last night?",
    "Can you lend me some money?", "What is my neighbour's name?",
]
UNKNOWN_ANSWERS = [
    "I do not have that information. Please ask at the town hall desk.",
    "I cannot help with that. The town hall desk can tell you more.",
]


def conversations(rng: random.Random) -> list[dict]:
    pairs = [(q, rng.choice(answers)) for questions, answers in FACTS for q in questions]
    pairs += [(q, a) for q, a in GENERAL]
    pairs += [(q, rng.choice(UNKNOWN_ANSWERS)) for q in UNKNOWN]
    rows = []
    # Each question twice: with the town hall's system prompt and without any, so the format is
    # learned on its own and a variant without the prompt still shows it.
    for question, answer in pairs:
        for system in (SYSTEM, None):
            messages = [{"role": "system", "content": system}] if system else []
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": f"Town hall: {answer}"}]
            rows.append({"messages": messages})
    rng.shuffle(rows)
    return rows


def domain_text(docs: Path) -> str:
    return "\n\n".join(p.read_text(encoding="utf-8").strip() for p in sorted(docs.glob("*.md"))) + "\n"


def main() -> None:
    rows = conversations(random.Random(0))
    with open(HERE / "sft.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (HERE / "domain.txt").write_text(domain_text(HERE / "docs"), encoding="utf-8")
    print(f"{len(rows)} conversations in sft.jsonl")


if __name__ == "__main__":
    main()
