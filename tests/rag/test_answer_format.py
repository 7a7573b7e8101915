"""The answer schema, its parser and the live renderer: what a structured reply becomes, and what it must not."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from rag.answer_format import (
    MAX_CITATIONS,
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES,
    ParsedAnswer,
    StructuredStream,
    answer_schema,
    parse_answer,
)
from rag.errors import AnswerFormatError, ConfigError, LLMResponseError

REPLY = json.dumps({"answerable": True, "sentences": [
    {"text": "Returns take 45 days.", "citations": [1]},
    {"text": "Opened electronics carry a 15% fee.", "citations": [1, 2]},
]})


def render(chunks: list[str], passages: int = 3) -> str:
    stream = StructuredStream(passages)
    return "".join(stream.feed(chunk) for chunk in chunks) + stream.finish()


def random_chunks(text: str, rng: random.Random, longest: int = 6) -> list[str]:
    chunks, start = [], 0
    while start < len(text):
        end = start + rng.randint(1, longest)
        chunks.append(text[start:end])
        start = end
    return chunks


# -- the schema --------------------------------------------------------------------------------


def test_schema_limits_citations_to_the_passages_given() -> None:
    schema = answer_schema(4)
    sentence = schema["properties"]["sentences"]["items"]
    citations = sentence["properties"]["citations"]
    assert citations["items"] == {"type": "integer", "enum": [1, 2, 3, 4]}
    assert citations["maxItems"] == MAX_CITATIONS == 3
    assert schema["required"] == ["answerable", "sentences"] and sentence["required"] == ["text", "citations"]
    assert schema["additionalProperties"] is False and sentence["additionalProperties"] is False
    assert schema["properties"]["answerable"] == {"type": "boolean"}
    json.dumps(schema)  # what goes on the wire


def test_schema_bounds_the_reply() -> None:
    schema = answer_schema(2)
    sentences = schema["properties"]["sentences"]
    assert sentences["maxItems"] == MAX_SENTENCES == 3
    assert sentences["items"]["properties"]["text"] == {"type": "string", "minLength": 1, "maxLength": MAX_SENTENCE_CHARS}
    assert sentences["items"]["properties"]["citations"]["maxItems"] == 2  # never more ids than passages
    for node in _nodes(schema):  # features vLLM's xgrammar backend lacks (it would fall back or refuse)
        assert not {"uniqueItems", "contains", "pattern", "format"} & set(node)


def test_schema_without_passages_allows_no_citation() -> None:
    citations = answer_schema(0)["properties"]["sentences"]["items"]["properties"]["citations"]
    assert citations["maxItems"] == 0 and "enum" not in citations["items"]
    with pytest.raises(ConfigError, match="0 or more"):
        answer_schema(-1)


def _nodes(schema: Any) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    return [schema, *(n for value in schema.values() for n in _nodes(value))]


# -- parsing -----------------------------------------------------------------------------------


def test_structured_reply_renders_as_text_with_markers() -> None:
    parsed = parse_answer(REPLY, 3)
    assert parsed == ParsedAnswer("Returns take 45 days. [1] Opened electronics carry a 15% fee. [1][2]",
                                  answerable=True, structured=True)


def test_refusal_and_sentence_edges() -> None:
    assert parse_answer('{"answerable": false, "sentences": []}', 3) == ParsedAnswer("", False, True)
    reply = {"sentences": [{"citations": [2, 2, 1], "text": "  Ships in 3 days.\n"}, {"text": " ", "citations": [1]},
                           {"text": "No source.", "citations": []}], "answerable": True}
    assert parse_answer(json.dumps(reply), 2).text == "Ships in 3 days. [2][1] No source."


def test_fenced_json_is_structured() -> None:
    assert parse_answer(f"```json\n{REPLY}\n```", 3) == parse_answer(REPLY, 3)
    assert parse_answer(f"  ```\n{REPLY}```  ", 3).structured


@pytest.mark.parametrize("raw", ["Returns take 45 days. [1]", "  leading space kept [7]\n", "```python\nprint(1)\n```",
                                 "[1, 2]", ""])
def test_free_text_passes_through_unchanged(raw: str) -> None:
    assert parse_answer(raw, 3) == ParsedAnswer(raw, answerable=True, structured=False)


def test_out_of_range_citations_are_dropped_and_reported() -> None:
    reply = {"answerable": True, "sentences": [{"text": "A.", "citations": [4, 1, 0]}, {"text": "B.", "citations": [-2]}]}
    parsed = parse_answer(json.dumps(reply), 3)
    assert parsed.text == "A. [1] B." and parsed.invalid_citations == (-2, 0, 4)
    assert parse_answer(json.dumps(reply), 0).invalid_citations == (-2, 0, 1, 4)


@pytest.mark.parametrize("raw,fragment", [
    ('{"answerable": true, "sentences": [{"text": "A.", "citations": [1]}]} trailing', "not valid JSON (Extra data"),
    ('{"answerable": true, "sentences": [{"text": "A.", "citations": [1]},, ]}', "not valid JSON"),
    ('{"sentences": []}', "lacks the field 'answerable'"),
    ('{"answerable": true}', "lacks the field 'sentences'"),
    ('{"answerable": "yes", "sentences": []}', "'answerable' of type str, not bool"),
    ('{"answerable": true, "sentences": {}}', "'sentences' of type dict, not list"),
    ('{"answerable": true, "sentences": ["A."]}', "sentence 1 is str, not an object"),
    ('{"answerable": true, "sentences": [{"text": "A."}]}', "sentence 1 lacks the field 'citations'"),
    ('{"answerable": true, "sentences": [{"citations": []}]}', "sentence 1 lacks the field 'text'"),
    ('{"answerable": true, "sentences": [{"text": 3, "citations": []}]}', "'text' of type int"),
    ('{"answerable": true, "sentences": [{"text": "A.", "citations": ["1"]}]}', "cites '1', which is not a passage"),
    ('{"answerable": true, "sentences": [{"text": "A.", "citations": [1.0]}]}', "cites 1.0"),
    ('{"answerable": true, "sentences": [{"text": "A.", "citations": [true]}]}', "cites True"),
])
def test_malformed_json_says_what_is_wrong(raw: str, fragment: str) -> None:
    with pytest.raises(AnswerFormatError, match="RAG_LLM__STRUCTURED_OUTPUT=off") as caught:
        parse_answer(raw, 3)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, LLMResponseError)


def test_a_cut_off_reply_asks_for_more_tokens() -> None:
    fix = r"cut off after \d+ characters, before its JSON closed: raise RAG_LLM__MAX_TOKENS"
    for end in range(1, len(REPLY) - 1):
        with pytest.raises(AnswerFormatError, match=fix):
            parse_answer(REPLY[:end], 3)


# -- the live renderer -------------------------------------------------------------------------


def test_text_shows_as_it_arrives_and_markers_once_citations_close() -> None:
    stream = StructuredStream(3)
    assert stream.structured is None and stream.feed("  ") == ""
    assert stream.feed('{"answerable": true, "sentences": [{"text": "Returns ') == "Returns"
    assert stream.structured is True and stream.answerable is True
    assert stream.feed('take 45 days.", "citations": [1') == " take 45 days."
    assert stream.feed(", 2, 9") == ""
    assert stream.feed("]}, ") == " [1][2]"
    assert stream.feed('{"citations": [3], "text": " Charges in 4 h') == " Charges in 4 h"
    assert not stream.closed
    assert stream.feed('ours. "}]}\n```') == "ours. [3]"
    assert stream.closed and stream.finish() == ""


def test_escapes_split_anywhere_are_decoded() -> None:
    text = '"a\\"b\\\\c\\nd\\u00e9\\ud83d\\ude00\\/\\t\\ud800x"'
    raw = f'{{"answerable": true, "sentences": [{{"text": {text}, "citations": []}}]}}'
    expected = json.loads(raw)["sentences"][0]["text"]
    assert parse_answer(raw, 1).text == expected
    for cut in range(len(raw)):
        assert render([raw[:cut], raw[cut:]]) == expected
    assert render(list(raw)) == expected


def test_free_text_streams_through_unchanged() -> None:
    stream = StructuredStream(3)
    assert stream.feed(" \n") == "" and stream.feed(" Returns") == " \n Returns"
    assert stream.structured is False and stream.answerable is None
    assert stream.feed(' take {45} "days". [1]') == ' take {45} "days". [1]'
    assert stream.finish() == ""
    assert render(["`", "``py", "thon\nx = 1"]) == "```python\nx = 1"
    assert render(["   "]) == "   " and render(["``"]) == "``"


def test_fenced_json_streams_as_json() -> None:
    raw = f"```json\n{REPLY}\n```"
    assert render(list(raw)) == parse_answer(raw, 3).text == parse_answer(REPLY, 3).text


def test_a_cut_off_stream_shows_what_came() -> None:
    cut = REPLY.index('"citations": [1') + len('"citations": [1')
    stream = StructuredStream(3)
    shown = stream.feed(REPLY[:cut]) + stream.finish()
    assert shown == "Returns take 45 days."  # its citations never closed: no marker, and no JSON either
    assert not stream.closed


def test_unknown_keys_and_nested_values_are_not_shown() -> None:
    raw = ('{"note": "hidden", "answerable": true, "extra": {"text": "no", "sentences": [{"text": "no"}]}, '
           '"sentences": [{"meta": [{"text": "no"}], "text": "yes", "citations": [1], "x": "no"}]}')
    assert render(list(raw)) == parse_answer(raw, 1).text == "yes [1]"


def _random_reply(rng: random.Random) -> str:
    alphabet = ["a", "Z", "7", " ", "  ", '"', "\\", "\n", "\t", "é", "😀", "中", "{", "}", "[", "]", ":", ",", "/",
                "\u2028"]
    sentences = []
    for _ in range(rng.randint(0, 4)):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        cites = [rng.randint(-1, 5) for _ in range(rng.randint(0, 4))]
        pairs = [("text", text), ("citations", cites)]
        rng.shuffle(pairs)
        sentences.append(dict(pairs))
    top = [("answerable", rng.random() < 0.8), ("sentences", sentences)]
    rng.shuffle(top)
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,\n", " :\t")])
    return json.dumps(dict(top), ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 0, 2]), separators=separators)


def test_stream_equals_parse_on_random_replies_and_chunkings() -> None:
    rng = random.Random(20261)
    for _ in range(300):
        raw = _random_reply(rng)
        expected = parse_answer(raw, 3)
        assert expected.structured
        for _ in range(5):
            chunks = random_chunks(raw, rng)
            assert "".join(chunks) == raw
            stream = StructuredStream(3)
            shown = "".join(stream.feed(chunk) for chunk in chunks) + stream.finish()
            assert shown == expected.text, (raw, chunks)
            assert stream.answerable is expected.answerable
