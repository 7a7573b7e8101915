from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ingest.documents import Element, SourceDocument
from ingest.metadata import (
    DeclaredMetadata,
    canonical_metadata,
    declared_metadata,
    effective_date_in,
    family_key,
    is_sidecar,
    iso_date,
    resolve_policy_versions,
)
from rag.errors import DocumentParseError
from rag.types import DocType
from tests.conftest import SAMPLE_CORPUS

RETURNS_2024 = "policies/returns-policy-2024.md"
RETURNS_2025 = "policies/returns-policy-2025.md"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def document(source: str, text: str = "Some text.", doc_type: DocType = "doc", **metadata: Any) -> SourceDocument:
    elements = tuple(Element(line) for line in text.splitlines() if line.strip())
    return SourceDocument(source, source, doc_type, "en", elements, dict(metadata))


def sample_policy(source: str) -> SourceDocument:
    return document(source, (SAMPLE_CORPUS / source).read_text(encoding="utf-8"), "policy")


# -- sidecars ----------------------------------------------------------------------------------


def test_sidecars_are_recognised_so_the_job_can_leave_them_out() -> None:
    assert is_sidecar(Path("kb/_meta.yaml"))
    assert is_sidecar(Path("kb/docs/guide.md.meta.yaml"))
    assert is_sidecar(Path("kb/docs/guide.md.meta.json"))
    assert not is_sidecar(Path("kb/docs/guide.md"))
    assert not is_sidecar(Path("kb/docs/meta.yaml"))
    assert not is_sidecar(Path("kb/docs/_meta.json"))


def test_nearer_folders_win_and_globs_apply_after_defaults(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "_meta.yaml": "defaults: {product: General, owner: support}\n"
                      "files:\n  'aurora-x2-*': {product: Aurora X2 headlamp}\n  'docs/*.txt': {format: text}\n",
        "docs/_meta.yaml": "defaults: {owner: docs-team}\nfiles:\n  '*-faq.*': {kind: faq}\n",
        "docs/aurora-x2-faq.md": "# FAQ",
        "docs/volt-300-manual.txt": "Manual",
        "policies/aurora-x2-warranty.md": "# Warranty",
    })
    assert declared_metadata(root / "docs/aurora-x2-faq.md", root) == {
        "product": "Aurora X2 headlamp", "owner": "docs-team", "kind": "faq"}
    assert declared_metadata(root / "docs/volt-300-manual.txt", root) == {
        "product": "General", "owner": "docs-team", "format": "text"}
    assert declared_metadata(root / "policies/aurora-x2-warranty.md", root) == {
        "product": "Aurora X2 headlamp", "owner": "support"}


def test_a_root_that_is_one_file_uses_the_sidecars_of_its_folder(tmp_path: Path) -> None:
    root = write(tmp_path, {"_meta.yaml": "defaults: {product: Volt 300}\n", "manual.txt": "Manual",
                            "manual.txt.meta.json": json.dumps({"audience": "agents"})})
    assert declared_metadata(root / "manual.txt", root / "manual.txt") == {"product": "Volt 300", "audience": "agents"}


def test_folder_sidecar_then_front_matter_then_file_sidecar(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "_meta.yaml": "defaults: {product: General, region: US, audience: all}\n",
        "docs/guide.md": "# Guide",
        "docs/guide.md.meta.yaml": "audience: agents\nupdated: 2025-07-01\n",
    })
    declared = declared_metadata(root / "docs/guide.md", root)
    assert isinstance(declared, DeclaredMetadata) and declared["audience"] == "agents"
    guide = document("docs/guide.md", front_matter={"product": "Tidal BT5 speaker", "audience": "customers",
                                                    "updated": date(2025, 1, 2)})
    meta = canonical_metadata(guide, declared)
    assert meta["product"] == "Tidal BT5 speaker"  # front matter beats the folder default
    assert meta["audience"] == "agents"  # the file's sidecar beats the front matter
    assert meta["updated"] == "2025-07-01" and meta["region"] == "US"
    assert "front_matter" not in meta
    json.dumps(meta)


def test_a_plain_mapping_counts_as_folder_level() -> None:
    guide = document("docs/guide.md", front_matter={"product": "Tidal BT5 speaker"})
    assert canonical_metadata(guide, {"product": "General"})["product"] == "Tidal BT5 speaker"


def test_invalid_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    root = write(tmp_path, {"_meta.yaml": "defaults:\n  product: [Aurora X2\n", "a.md": "# A"})
    with pytest.raises(DocumentParseError, match=r"_meta\.yaml: invalid YAML at line \d+: .*fix the syntax"):
        declared_metadata(root / "a.md", root)


def test_invalid_json_sidecar(tmp_path: Path) -> None:
    root = write(tmp_path, {"a.md": "# A", "a.md.meta.json": '{"product": "Volt 300",}'})
    with pytest.raises(DocumentParseError, match=r"a\.md\.meta\.json: invalid JSON at line 1"):
        declared_metadata(root / "a.md", root)


@pytest.mark.parametrize(("sidecar", "message"), [
    ("files: [a, b]\n", r"`files` in .*_meta\.yaml must be a mapping"),
    ("defaults: {product: 300}\n", r"product must be a string, got 300: quote it"),
    ("defaults: {superseded: 'yes'}\n", r"superseded must be true or false"),
    ("defaults: {effective_from: soon}\n", r"effective_from must be a date like 2025-04-01, got 'soon'"),
    ("files: {'*.md': {doc_type: faq}}\n", r"files\['\*\.md'\]: doc_type must be one of doc, policy, ticket"),
    ("default: {product: Volt 300}\n", r"unknown key 'default'"),
    ("- just\n- a list\n", r"must be a mapping of names to values, got list"),
])
def test_wrong_types_are_reported_with_the_fix(tmp_path: Path, sidecar: str, message: str) -> None:
    root = write(tmp_path, {"_meta.yaml": sidecar, "a.md": "# A"})
    with pytest.raises(DocumentParseError, match=message):
        declared_metadata(root / "a.md", root)


def test_two_sidecars_for_one_file_is_an_error(tmp_path: Path) -> None:
    root = write(tmp_path, {"a.md": "# A", "a.md.meta.yaml": "product: A\n", "a.md.meta.json": "{}"})
    with pytest.raises(DocumentParseError, match=r"two sidecars .*keep one"):
        declared_metadata(root / "a.md", root)


def test_empty_sidecars_declare_nothing(tmp_path: Path) -> None:
    root = write(tmp_path, {"_meta.yaml": "", "a.md": "# A", "a.md.meta.yaml": "# nothing yet\n"})
    assert declared_metadata(root / "a.md", root) == {}


# -- canonical keys ------------------------------------------------------------------------------


def test_effective_dates_of_the_real_sample_returns_policies() -> None:
    old, new = sample_policy(RETURNS_2024), sample_policy(RETURNS_2025)
    assert canonical_metadata(old)["effective_from"] == "2024-01-01"
    # the 2025 text also mentions "(effective 2024-01-01)": the labelled date wins
    assert canonical_metadata(new)["effective_from"] == "2025-04-01"
    assert canonical_metadata(old)["policy_id"] == canonical_metadata(new)["policy_id"] == "returns-policy"
    # "This policy was superseded" in the 2024 text is left to resolve_policy_versions
    assert canonical_metadata(old)["superseded"] is None


@pytest.mark.parametrize(("text", "expected"), [
    ("**Effective date: 2025-04-01**", "2025-04-01"),
    ("Effective 1 April 2025.", "2025-04-01"),
    ("This policy is effective from April 1st, 2025 and replaces the 2024 policy (effective 2024-01-01).", "2025-04-01"),
    ("Effective: Sept. 15, 2025", "2025-09-15"),
    ("<strong>生效日期：2025-09-01</strong>", "2025-09-01"),
    ("本政策自2025年9月1日起生效。", "2025-09-01"),
    ("This policy took effect long ago.", None),
    ("Effective date: 2025-02-30", None),
])
def test_effective_date_in_text(text: str, expected: str | None) -> None:
    assert effective_date_in(text) == expected


def test_declared_effective_date_beats_the_text() -> None:
    policy = document("policies/p.md", "Effective date: 2025-04-01", "policy", front_matter={"effective_date": "2025-05-01"})
    meta = canonical_metadata(policy)
    assert meta["effective_from"] == "2025-05-01" and "effective_from" in meta["declared_keys"]


def test_updated_falls_back_to_ticket_email_and_text_dates() -> None:
    ticket = document("tickets/t.jsonl#T-1", doc_type="ticket", updated_at="2025-05-03T15:41:55Z", product="Volt 300")
    assert canonical_metadata(ticket)["updated"] == "2025-05-03" and canonical_metadata(ticket)["product"] == "Volt 300"
    mail = document("tickets/a.eml", doc_type="ticket", sent_at="Thu, 19 Jun 2025 08:03:12 -0700")
    assert canonical_metadata(mail)["updated"] == "2025-06-19"
    chart = document("docs/chart.html", "Product Compatibility Chart\nUpdated 2025-08-01. This chart answers...")
    assert canonical_metadata(chart)["updated"] == "2025-08-01"
    declared = canonical_metadata(ticket, {"updated": "2025-06-30"})
    assert declared["updated"] == "2025-06-30" and declared["updated_at"] == "2025-05-03T15:41:55Z"


def test_extra_keys_are_kept_when_json_can_hold_them() -> None:
    guide = document("docs/g.md", front_matter={"tags": ["tent", "setup"], "reviewed": date(2025, 3, 1),
                                                 "weird": object(), "nested": {"a": 1}})
    meta = canonical_metadata(guide, {"product": "Cascade 2P tent"})
    assert meta["tags"] == ["tent", "setup"] and meta["reviewed"] == "2025-03-01" and meta["nested"] == {"a": 1}
    assert "weird" not in meta
    assert meta["doc_type"] == "doc" and meta["language"] == "en" and meta["product"] == "Cascade 2P tent"
    assert "effective_from" not in meta  # policies only


def test_front_matter_of_the_wrong_type_is_reported() -> None:
    with pytest.raises(DocumentParseError, match=r"front matter of docs/g\.md: product must be a string"):
        canonical_metadata(document("docs/g.md", front_matter={"product": ["a", "b"]}))


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-04-01", "2025-04-01"), (date(2025, 4, 1), "2025-04-01"), ("2025-05-03T15:41:55Z", "2025-05-03"),
    ("1 April 2025", "2025-04-01"), ("Tue, 11 Mar 2025 10:42:00 -0700", "2025-03-11"), ("soon", None), (20250401, None),
])
def test_iso_date(value: object, expected: str | None) -> None:
    assert iso_date(value) == expected


@pytest.mark.parametrize(("source", "key"), [
    (RETURNS_2024, "returns-policy"), (RETURNS_2025, "returns-policy"), ("kb/Returns_Policy_v2.md", "returns-policy"),
    ("2024-returns-policy.pdf", "returns-policy"), ("returns-policy-2025-04-01.md", "returns-policy"),
    ("policies/volt-300-warranty.pdf", "volt-300-warranty"), ("policies/2024.md", "2024"),
])
def test_family_key_drops_years_dates_and_versions(source: str, key: str) -> None:
    assert family_key(source) == key


# -- policy versions -------------------------------------------------------------------------------


def sample_policies() -> dict[str, dict[str, Any]]:
    return {source: canonical_metadata(sample_policy(source)) for source in (RETURNS_2024, RETURNS_2025)}


def apply(policies: dict[str, dict[str, Any]], today: date) -> dict[str, dict[str, Any]]:
    updates = resolve_policy_versions(policies, today)
    return {source: {**meta, **updates[source]} for source, meta in policies.items()}


def test_2024_returns_policy_is_superseded_once_2025_is_in_effect() -> None:
    resolved = apply(sample_policies(), date(2025, 6, 1))
    assert resolved[RETURNS_2024]["superseded"] is True
    assert resolved[RETURNS_2024]["superseded_by"] == RETURNS_2025
    assert resolved[RETURNS_2024]["effective_to"] == "2025-04-01"
    assert resolved[RETURNS_2025]["superseded"] is False and resolved[RETURNS_2025]["superseded_by"] is None


def test_a_version_not_yet_in_effect_supersedes_nothing() -> None:
    updates = resolve_policy_versions(sample_policies(), date(2025, 3, 1))
    assert updates[RETURNS_2024] == {"superseded": False, "superseded_by": None, "effective_to": None}
    assert updates[RETURNS_2025] == {"effective_from": "2025-04-01"}


def test_resolving_again_later_recomputes_earlier_results() -> None:
    before = apply(sample_policies(), date(2025, 3, 1))
    after = apply(before, date(2025, 6, 1))
    assert after[RETURNS_2024]["superseded"] is True and after[RETURNS_2024]["superseded_by"] == RETURNS_2025
    assert apply(after, date(2025, 6, 1)) == after


def test_declared_version_keys_win() -> None:
    policies = sample_policies()
    policies[RETURNS_2024] = canonical_metadata(sample_policy(RETURNS_2024), {"superseded": False})
    policies[RETURNS_2025] = canonical_metadata(sample_policy(RETURNS_2025), {"effective_to": "2026-01-01"})
    updates = resolve_policy_versions(policies, date(2025, 6, 1))
    assert updates[RETURNS_2024] == {"superseded_by": None, "effective_to": None}
    assert updates[RETURNS_2025] == {"superseded": False, "superseded_by": None}
    resolved = apply(policies, date(2025, 6, 1))
    assert resolved[RETURNS_2024]["superseded"] is False and resolved[RETURNS_2025]["effective_to"] == "2026-01-01"


def test_a_declared_supersession_is_kept_even_without_a_newer_version() -> None:
    lone = canonical_metadata(document("policies/layaway.md", "Effective date: 2023-01-01", "policy"),
                              {"superseded": True, "effective_to": "2024-12-31"})
    assert resolve_policy_versions({"policies/layaway.md": lone}, date(2025, 6, 1)) == {
        "policies/layaway.md": {"superseded_by": None}}


def test_a_declared_successor_implies_superseded() -> None:
    old = canonical_metadata(document("policies/refunds.md", "Effective date: 2023-01-01", "policy"),
                             {"superseded_by": RETURNS_2025})
    policies = {**sample_policies(), "policies/refunds.md": old}
    updates = resolve_policy_versions(policies, date(2025, 6, 1))
    assert updates["policies/refunds.md"] == {"superseded": True, "effective_to": "2025-04-01"}


def test_families_with_one_member_and_undated_policies_are_current() -> None:
    policies = {
        "policies/privacy-policy.html": canonical_metadata(document("policies/privacy-policy.html",
                                                                    "Effective date: 2025-02-01.", "policy")),
        "policies/gift-card-terms.docx": canonical_metadata(document("policies/gift-card-terms.docx", "Terms", "policy")),
    }
    current = {"superseded": False, "superseded_by": None, "effective_to": None}
    assert resolve_policy_versions(policies, date(2025, 6, 1)) == {source: current for source in policies}


def test_a_chain_of_versions_points_each_to_the_next_in_effect() -> None:
    policies = {f"policies/shipping-{year}.md": {"effective_from": f"{year}-01-01"} for year in (2023, 2024, 2025, 2026)}
    updates = resolve_policy_versions(policies, date(2025, 6, 1))
    assert updates["policies/shipping-2023.md"]["superseded_by"] == "policies/shipping-2024.md"
    assert updates["policies/shipping-2023.md"]["effective_to"] == "2024-01-01"
    assert updates["policies/shipping-2024.md"]["superseded_by"] == "policies/shipping-2025.md"
    assert updates["policies/shipping-2025.md"]["superseded"] is False
    assert updates["policies/shipping-2026.md"] == {"effective_from": "2026-01-01"}


def test_policy_id_joins_and_splits_families() -> None:
    policies = {
        "policies/refund-rules-2024.md": {"policy_id": "returns", "effective_from": "2024-01-01"},
        "policies/returns-policy-2025.md": {"policy_id": "returns", "effective_from": "2025-04-01"},
        "policies/eu/returns-policy-2024.md": {"policy_id": "returns-eu", "effective_from": "2024-01-01"},
    }
    updates = resolve_policy_versions(policies, date(2025, 6, 1))
    assert updates["policies/refund-rules-2024.md"]["superseded_by"] == "policies/returns-policy-2025.md"
    assert updates["policies/eu/returns-policy-2024.md"]["superseded"] is False


def test_versions_with_the_same_date_are_all_current() -> None:
    policies = {"policies/en/returns-2025.md": {"effective_from": "2025-04-01"},
                "policies/de/returns-2025.md": {"effective_from": "2025-04-01"},
                "policies/returns-2024.md": {"effective_from": "2024-01-01"}}
    updates = resolve_policy_versions(policies, date(2025, 6, 1))
    assert updates["policies/en/returns-2025.md"]["superseded"] is False
    assert updates["policies/de/returns-2025.md"]["superseded"] is False
    assert updates["policies/returns-2024.md"]["superseded_by"] == "policies/de/returns-2025.md"


@pytest.mark.slow
def test_real_loader_output_resolves_the_sample_returns_policies() -> None:
    from ingest.unstructured_loader import UnstructuredLoader

    loader = UnstructuredLoader()
    policies = {}
    for source in (RETURNS_2024, RETURNS_2025):
        [loaded] = loader.load(SAMPLE_CORPUS / source, source=source, doc_type="policy").documents
        policies[source] = canonical_metadata(loaded, declared_metadata(SAMPLE_CORPUS / source, SAMPLE_CORPUS))
    assert [m["effective_from"] for m in policies.values()] == ["2024-01-01", "2025-04-01"]
    assert resolve_policy_versions(policies, date(2025, 6, 1))[RETURNS_2024]["superseded_by"] == RETURNS_2025
