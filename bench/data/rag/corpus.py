"""The labelled retrieval set of bench/rag.py, and distractors to grow the store to 10k chunks.

Five kinds of documents: a product catalogue, a town guide, a recipe book, incident reports
(each built from a fact table with seeded names and values, several paragraphs per item, so
many chunks look alike and differ in the entity and the facts), and an employee handbook
(policies.json, written by hand). Each chunk has an id; each of the 50 questions
(policy_questions.json plus 10 per generated kind, phrased differently from the text it asks
about) lists the ids of the chunks that answer it.

Distractors are more items of the generated kinds (other names, other values): they compete with
the labelled chunks for the same questions, the hard case for an approximate index.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ven",
    "tor",
    "sel",
    "dun",
    "bri",
    "ha",
    "zu",
    "pel",
    "or",
    "an",
    "qui",
    "mar",
    "ost",
    "ful",
    "wen",
    "dra",
]


@dataclass(frozen=True)
class Chunk:
    id: str
    document: str
    text: str


@dataclass(frozen=True)
class Question:
    question: str
    relevant: tuple[str, ...]


def name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def products(rng: random.Random, count: int, prefix: str) -> tuple[list[Chunk], list[dict]]:
    kinds = ["wireless headphones", "smartwatch", "portable speaker", "e-reader", "action camera", "robot vacuum"]
    chunks, facts = [], []
    for n in range(count):
        f = {
            "name": f"{name(rng)} {rng.choice('XSQZ')}{rng.randint(1, 9)}",
            "kind": rng.choice(kinds),
            "battery": rng.randint(6, 60),
            "weight": rng.randint(90, 900),
            "warranty": rng.choice([12, 18, 24, 36]),
            "price": rng.randint(39, 499),
            "water": rng.choice(["IPX4", "IP67", "IP68", "no"]),
            "support": rng.choice(["email", "phone", "chat"]),
        }
        doc = f"{prefix}-product-{n}"
        water = "is not water resistant" if f["water"] == "no" else f"is rated {f['water']} against water"
        chunks += [
            Chunk(
                f"{doc}-specs",
                doc,
                f"The {f['name']} is a {f['kind']}. Its battery lasts {f['battery']} hours on a "
                f"charge, it weighs {f['weight']} grams and it {water}.",
            ),
            Chunk(
                f"{doc}-warranty",
                doc,
                f"Warranty for the {f['name']}: {f['warranty']} months from the date of "
                f"purchase. Repairs are arranged through {f['support']} support.",
            ),
            Chunk(
                f"{doc}-price",
                doc,
                f"The {f['name']} {f['kind']} sells for {f['price']} euros and ships within "
                f"{rng.randint(1, 5)} working days.",
            ),
        ]
        facts.append({**f, "doc": doc})
    return chunks, facts


def towns(rng: random.Random, count: int, prefix: str) -> tuple[list[Chunk], list[dict]]:
    dishes = ["smoked trout", "chestnut soup", "plum dumplings", "lamb stew", "onion tart", "fried carp"]
    chunks, facts = [], []
    for n in range(count):
        f = {
            "name": name(rng, 3),
            "founded": rng.randint(900, 1800),
            "river": name(rng),
            "dish": rng.choice(dishes),
            "month": rng.choice(["May", "June", "July", "August", "September", "October"]),
            "people": rng.randint(2, 90) * 1000,
            "line": rng.randint(1, 40),
            "minutes": rng.randint(20, 180),
        }
        doc = f"{prefix}-town-{n}"
        chunks += [
            Chunk(
                f"{doc}-history",
                doc,
                f"{f['name']} was founded in {f['founded']} on the banks of the river "
                f"{f['river']}. Today about {f['people']} people live there.",
            ),
            Chunk(
                f"{doc}-food",
                doc,
                f"Visitors to {f['name']} should try the local {f['dish']}. The town's harvest "
                f"festival takes place every {f['month']}.",
            ),
            Chunk(
                f"{doc}-travel",
                doc,
                f"Regional train line {f['line']} reaches {f['name']} from the capital in {f['minutes']} minutes.",
            ),
        ]
        facts.append({**f, "doc": doc})
    return chunks, facts


def recipes(rng: random.Random, count: int, prefix: str) -> tuple[list[Chunk], list[dict]]:
    mains = ["pumpkin", "salmon", "chickpeas", "mushrooms", "chicken", "aubergine", "lentils", "tofu"]
    chunks, facts = [], []
    for n in range(count):
        f = {
            "name": f"{name(rng)} {rng.choice(['bake', 'pie', 'curry', 'gratin', 'stew'])}",
            "main": rng.choice(mains),
            "temp": rng.choice([160, 180, 200, 220]),
            "minutes": rng.randint(15, 90),
            "serves": rng.randint(2, 8),
        }
        doc = f"{prefix}-recipe-{n}"
        chunks += [
            Chunk(
                f"{doc}-ingredients",
                doc,
                f"{f['name']} (serves {f['serves']}): you need 600 grams of {f['main']}, "
                f"two onions, garlic, olive oil and a handful of fresh herbs.",
            ),
            Chunk(
                f"{doc}-method",
                doc,
                f"To cook the {f['name']}, heat the oven to {f['temp']} degrees and bake for "
                f"{f['minutes']} minutes until golden.",
            ),
        ]
        facts.append({**f, "doc": doc})
    return chunks, facts


def incidents(rng: random.Random, count: int, prefix: str) -> tuple[list[Chunk], list[dict]]:
    services = ["payments API", "search service", "login service", "image CDN", "mail relay", "billing database"]
    causes = [
        "an expired TLS certificate",
        "a full disk",
        "a bad configuration change",
        "a memory leak",
        "a failed database failover",
        "a DNS misconfiguration",
    ]
    chunks, facts = [], []
    for n in range(count):
        f = {
            "code": f"INC-{rng.randint(1000, 9999)}",
            "service": rng.choice(services),
            "cause": rng.choice(causes),
            "minutes": rng.randint(5, 300),
            "day": rng.randint(1, 28),
            "month": rng.choice(["January", "March", "April", "July", "November"]),
        }
        doc = f"{prefix}-incident-{n}"
        chunks += [
            Chunk(
                f"{doc}-summary",
                doc,
                f"Incident {f['code']}: on {f['month']} {f['day']} the {f['service']} was "
                f"unavailable for {f['minutes']} minutes.",
            ),
            Chunk(
                f"{doc}-cause",
                doc,
                f"Root cause of {f['code']}: {f['cause']}. The fix was rolled out and a monitoring alert was added.",
            ),
        ]
        facts.append({**f, "doc": doc})
    return chunks, facts


def labelled() -> tuple[list[Chunk], list[Question]]:
    """At least 200 chunks from varied documents, and 50 questions with their relevant chunks."""
    chunks, questions, _names = _labelled()
    return chunks, questions


def _labelled() -> tuple[list[Chunk], list[Question], set[str]]:
    rng = random.Random(20261130)
    names: set[str] = set()
    chunks: list[Chunk] = []
    questions: list[Question] = []
    policies = json.loads((HERE / "policies.json").read_text())
    chunks += [Chunk(p["id"], "handbook", p["text"]) for p in policies]
    questions += [
        Question(q["question"], tuple(q["relevant"])) for q in json.loads((HERE / "policy_questions.json").read_text())
    ]

    found, items = products(rng, 20, "cat")
    chunks += found
    names |= {f["name"] for f in items}
    for n, f in enumerate(items[:10]):
        asks = [
            (f"How long does the battery of the {f['name']} last?", "specs"),
            (f"What warranty comes with the {f['name']}?", "warranty"),
            (f"How much does the {f['name']} cost?", "price"),
        ]
        text, part = asks[n % 3]
        questions.append(Question(text, (f"{f['doc']}-{part}",)))

    found, items = towns(rng, 16, "guide")
    chunks += found
    names |= {f["name"] for f in items}
    for n, f in enumerate(items[:10]):
        asks = [
            (f"When was {f['name']} founded?", "history"),
            (f"What food is {f['name']} known for?", "food"),
            (f"Which train goes to {f['name']} and how long does it take?", "travel"),
        ]
        text, part = asks[n % 3]
        questions.append(Question(text, (f"{f['doc']}-{part}",)))

    found, items = recipes(rng, 15, "cookbook")
    chunks += found
    names |= {f["name"] for f in items}
    for n, f in enumerate(items[:10]):
        asks = [
            (f"What ingredients do I need for the {f['name']}?", "ingredients"),
            (f"At what temperature is the {f['name']} baked?", "method"),
        ]
        text, part = asks[n % 2]
        questions.append(Question(text, (f"{f['doc']}-{part}",)))

    found, items = incidents(rng, 20, "ops")
    chunks += found
    names |= {f["code"] for f in items}
    for n, f in enumerate(items[:10]):
        asks = [
            (f"How long was the outage in incident {f['code']}?", "summary"),
            (f"What caused incident {f['code']}?", "cause"),
        ]
        text, part = asks[n % 2]
        questions.append(Question(text, (f"{f['doc']}-{part}",)))
    return chunks, questions, names


def distractors(count: int) -> list[Chunk]:
    """`count` more chunks of the generated kinds, none of them an answer to a labelled question."""
    rng = random.Random(7)
    _chunks, _questions, taken = _labelled()
    chunks: list[Chunk] = []
    makers = [products, towns, recipes, incidents]
    n = 0
    while len(chunks) < count:
        made, items = makers[n % len(makers)](rng, 25, f"extra{n}")
        # an item named like a labelled one would be a second right answer: leave it out
        clashing = {f["doc"] for f in items if (f.get("name") or f.get("code")) in taken}
        chunks += [chunk for chunk in made if chunk.document not in clashing]
        n += 1
    return chunks[:count]
