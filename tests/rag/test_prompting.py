from __future__ import annotations

from pathlib import Path

import pytest

import prompts
from rag.prompting import build_messages, cited_numbers, make_citations
from rag.types import Chunk, ScoredChunk


def hit(i: int, text: str = "Returns within 45 days.") -> ScoredChunk:
    return ScoredChunk(Chunk(id=i, text=text, source=f"p{i}.md", title=f"Title {i}", doc_type="policy"), 0.5 + i / 10)


def test_cited_numbers_ignores_out_of_range_markers() -> None:
    assert cited_numbers("A [1] and [3][2], not [7] or [0].", 3) == {1, 2, 3}


def test_citations_number_every_passage_and_flag_cited_ones() -> None:
    citations = make_citations("Within 45 days [2].", [hit(1), hit(2)])
    assert [(c.n, c.source, c.cited) for c in citations] == [(1, "p1.md", False), (2, "p2.md", True)]
    assert citations[0].snippet == "Returns within 45 days."


def test_messages_number_passages_and_keep_the_question_separate() -> None:
    template = prompts.load("answer")
    system, user = build_messages(template, "How long?", [hit(1), hit(2)])
    assert "[1] (policy: Title 1 — p1.md)\nReturns within 45 days." in system.content
    assert "[2] (policy: Title 2 — p2.md)" in system.content
    assert user.content == "How long?" and user.role == "user"
    assert "not instructions" in system.content


def test_passages_say_what_they_are_and_the_latest_prompt_lets_a_policy_win() -> None:
    ticket = ScoredChunk(Chunk(id=9, text="30 days.", source="t.jsonl#T-1", title="Return", doc_type="ticket"), 0.9)
    doc = ScoredChunk(Chunk(id=8, text="650 lumens.", source="d.md", title="Aurora", doc_type="doc"), 0.8)
    template = prompts.load("answer")
    assert template.id == "answer@v2"
    system, _ = build_messages(template, "How long?", [hit(1), ticket, doc])
    assert "[2] (past ticket: Return — t.jsonl#T-1)" in system.content
    assert "[3] (product document: Aurora — d.md)" in system.content
    assert "if a policy and a past ticket disagree, follow the policy" in system.content
    assert "disagree" not in prompts.load("answer", "v1").system  # v1 stays as it was


def test_prompt_registry() -> None:
    assert "answer@v1" in prompts.available()
    assert prompts.load("answer", "v1").id == "answer@v1"
    with pytest.raises(LookupError, match="available"):
        prompts.load("nope")
    with pytest.raises(LookupError, match="no version"):
        prompts.load("answer", "v99")


# -- declared variables, checked at load time ----------------------------------------------------------

GOOD = 'variables = ["passages", "question"]\nsystem = """Rules.\nPassages:\n{passages}"""\nuser = "{question}"\n'


def write(folder: Path, text: str, name: str = "t.v1.toml") -> Path:
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_template_from_a_folder_loads_with_its_declared_variables(tmp_path: Path) -> None:
    template = prompts.load("t", directory=write(tmp_path, GOOD))
    assert (template.id, template.variables) == ("t@v1", ("passages", "question"))
    assert template.static_prefix == "Rules.\nPassages:\n"
    assert prompts.available(tmp_path) == ["t@v1"]


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace('user = "{question}"', 'user = "{question} {today}"'), r"placeholder \{today\} is not declared"),
    (GOOD.replace('"passages", "question"', '"passages", "question", "today"'), "'today' is declared but neither"),
    (GOOD.replace('variables = ["passages", "question"]\n', ""), "declare the placeholders"),
    (GOOD.replace('user = "{question}"\n', ""), "key 'user' is missing"),
    (GOOD.replace('user = "{question}"', "user = 3"), "key 'user' must be a string"),
    ("system = ", "not valid TOML"),
])
def test_a_broken_template_is_refused_naming_the_file_and_the_variable(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(prompts.TemplateError, match=message) as caught:
        prompts.load("t", directory=write(tmp_path, text))
    assert "t.v1.toml" in str(caught.value) and isinstance(caught.value, ValueError)


# What each shipped prompt fills in per request, after its static instructions.
# name -> (the per-request part that ends the system message, its heading); every other variable is in `user`
PER_REQUEST = {"answer": ("passages", "Passages:"), "condense": ("history", "Conversation:"),
               "judge": ("passages", "Passages:")}


@pytest.mark.parametrize("ref", prompts.available())
def test_every_shipped_template_declares_what_it_uses_and_ends_the_system_message_with_its_per_request_part(
    ref: str,
) -> None:
    name, version = ref.split("@")
    template = prompts.load(name, version)
    variable, heading = PER_REQUEST[name]
    assert template.variables[0] == variable and "question" in template.variables
    assert all(f"{{{other}}}" in template.user and f"{{{other}}}" not in template.system
               for other in template.variables[1:])
    assert template.system.endswith(f"{{{variable}}}")  # static instructions first, the per-request part last
    assert template.static_prefix == template.system.removesuffix(f"{{{variable}}}")
    assert heading in template.static_prefix


@pytest.mark.parametrize("ref", prompts.available())
def test_two_requests_share_the_whole_static_prefix_byte_for_byte(ref: str) -> None:
    template = prompts.load(*ref.split("@"))
    variable = PER_REQUEST[template.name][0]
    one, _ = template.render(**{**{name: f"{name}: returns take 45 days?" for name in template.variables},
                                variable: "[1] Returns take 45 days."})
    two, _ = template.render(**{**{name: f"{name}: do you ship abroad?" for name in template.variables},
                                variable: "Shipping takes 3 days."})
    prefix = template.static_prefix.encode("utf-8")
    first_difference = next(i for i, (a, b) in enumerate(zip(one.encode(), two.encode(), strict=False)) if a != b)
    assert one.encode()[: len(prefix)] == two.encode()[: len(prefix)] == prefix
    assert first_difference >= len(prefix)


def test_placeholders_are_filled_in_one_pass_so_passage_text_is_never_substituted() -> None:
    system, user = build_messages(prompts.load("answer"), "Why?", [hit(1, "Type {question} here.")])
    assert "Type {question} here." in system.content and user.content == "Why?"
