"""The labelled faithfulness set: the hand-written items' shape and provenance, and the corruptions made from them."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.claims import split_claims
from eval.faithfulness_set import CORRUPTIONS, SUITE, corrupt, labelled_set, load_items, split_of
from rag.errors import InputError

CORPUS = Path(__file__).resolve().parents[2] / "samples" / "corpus"
ITEMS = load_items()
FAITHFUL = {"id": "t.f", "question": "How long do I have to return a headlamp?",
            "contexts": ["You can return most items within 45 days of delivery. The Aurora X2 is a headlamp."],
            "answer": "You can return the Aurora X2 within 45 days of delivery [1].",
            "label": "faithful", "kind": "faithful"}
POOL = ["The Tidal BT5 speaker floats and is rated IP67 for 30 minutes.",
        "Gift cards are issued in US dollars and never expire at all."]


def test_the_set_is_large_and_balanced_as_asked() -> None:
    kinds = Counter(i["kind"] for i in ITEMS)
    faithful = kinds["faithful"] + kinds["paraphrase"]
    assert len(ITEMS) >= 100
    assert faithful >= 40 and kinds["paraphrase"] >= 0.4 * faithful  # about half of the faithful answers reworded
    assert min(kinds[k] for k in ("number", "entity", "negation", "added-claim", "subtle")) >= 8
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", i["answer"])) for i in ITEMS) >= 15  # Chinese items


def test_items_are_well_formed() -> None:
    assert len({i["id"] for i in ITEMS}) == len(ITEMS)
    for item in ITEMS:
        assert 1 <= len(item["contexts"]) <= 4 and item["answer"].strip()
        wrong = item.get("unsupported_claims", [])
        assert (item["label"] == "unfaithful") == bool(wrong), item["id"]
        assert set(wrong) <= set(split_claims(item["answer"])), item["id"]  # as split_claims gives them


def test_loading_names_the_line_of_a_broken_item(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q", "contexts": ["c"], "answer": "A claim here.", "label": "faithful", '
                   '"kind": "number"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: kind 'number' goes with label unfaithful"):
        load_items(bad)


@pytest.mark.slow
def test_every_context_is_copied_from_the_sample_corpus() -> None:
    """Each line of each context is a run of words of one corpus document (Markdown and text files as they are,
    the others as ingestion reads them: tickets through the ticket loader, pdf/docx/html/eml through unstructured)."""
    from ingest.tickets import TicketLoader
    from ingest.unstructured_loader import UnstructuredLoader, use_packaged_spacy_model

    use_packaged_spacy_model()
    documents = []
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".yaml"):
        if path.suffix in (".md", ".txt"):
            documents.append(path.read_text(encoding="utf-8"))
            continue
        loader = TicketLoader() if path.suffix in (".csv", ".jsonl") else UnstructuredLoader()
        loaded = loader.load(path, source=path.name, doc_type="ticket")
        documents += ["\n".join(e.text for e in d.elements) for d in loaded.documents]
    corpus = [f" {' '.join(_words(d))} " for d in documents]
    lines = {line for item in ITEMS for context in item["contexts"] for line in context.splitlines() if _words(line)}
    stray = [line for line in lines if not any(f" {' '.join(_words(line))} " in doc for doc in corpus)]
    assert stray == []


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+|[\u4e00-\u9fff]", text.casefold())


def test_a_number_corruption_changes_one_quantity_and_names_its_claim() -> None:
    made = corrupt(FAITHFUL, "number", random.Random(0))
    assert made is not None and made["label"] == "unfaithful" and made["kind"] == "number"
    assert "45 days" not in made["answer"] and made["answer"].endswith("days of delivery [1].")  # the marker is kept
    assert made["unsupported_claims"] == split_claims(made["answer"])


def test_an_entity_corruption_swaps_in_a_name_no_passage_mentions() -> None:
    made = corrupt(FAITHFUL, "entity", random.Random(0))
    assert made is not None and "Aurora X2" not in made["answer"]
    swapped = made["answer"].split("return the ")[1].split(" within")[0]
    assert swapped not in FAITHFUL["contexts"][0]


def test_a_negation_corruption_flips_the_statement() -> None:
    made = corrupt(FAITHFUL, "negation", random.Random(0))
    assert made is not None and made["answer"] == "You cannot return the Aurora X2 within 45 days of delivery [1]."
    chinese = {**FAITHFUL, "answer": "退货期为 45 天，可以退货 [1]。"}
    flipped = corrupt(chinese, "negation", random.Random(0))
    assert flipped is not None and "不可以" in flipped["answer"]


def test_an_added_claim_comes_from_an_unrelated_passage() -> None:
    made = corrupt(FAITHFUL, "added-claim", random.Random(0), pool=[*POOL, FAITHFUL["contexts"][0]])
    assert made is not None and made["answer"].startswith(FAITHFUL["answer"])
    added = made["answer"][len(FAITHFUL["answer"]) :].strip()
    assert added in POOL  # never a sentence of the item's own passages
    assert made["unsupported_claims"] == split_claims(added)


def test_nothing_to_corrupt_gives_none_and_an_unknown_kind_is_an_error() -> None:
    plain = {**FAITHFUL, "answer": "Yes, you can return it [1]."}
    assert corrupt(plain, "number", random.Random(0)) is None
    assert corrupt(plain, "entity", random.Random(0)) is None
    assert corrupt(FAITHFUL, "added-claim", random.Random(0)) is None  # no pool
    with pytest.raises(InputError, match="no corruption 'typo'"):
        corrupt(FAITHFUL, "typo", random.Random(0))


def test_the_labelled_set_is_deterministic_by_seed() -> None:
    first, again, other = labelled_set(SUITE, 0), labelled_set(SUITE, 0), labelled_set(SUITE, 1)
    assert first == again and first != other
    generated = [i for i in first if i["origin"] == "generated"]
    assert {i["kind"] for i in generated} == set(CORRUPTIONS)
    assert len(first) == len(ITEMS) + len(generated) and len(generated) >= len(ITEMS)
    for item in generated:
        source = next(i for i in ITEMS if i["id"] == item["source_id"])
        assert source["label"] == "faithful" and item["contexts"] == source["contexts"]


def test_splits_keep_groups_together_and_both_are_used() -> None:
    splits = Counter(split_of(i["id"]) for i in ITEMS)
    assert splits["train"] >= 40 and splits["held-out"] >= 40
    assert split_of("ret-fee.num") == split_of("ret-fee.f") == split_of("ret-fee.f~negation")
