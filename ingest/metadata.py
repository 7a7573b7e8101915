"""The metadata every indexed document carries, from declarations, the document itself and its text.

Canonical keys (dates are ISO ``YYYY-MM-DD`` strings; None when unknown):

    doc_type         doc | policy | ticket, as discovery decided it
    product          a string, e.g. "Aurora X2 headlamp"
    language         declared, else the detected language of the document
    updated          declared (``updated``, ``last_updated`` or ``date``), else a ticket's ``updated_at``
                     (then ``created_at``), else an e-mail's date, else "Updated 2025-08-01" near the top
    declared_keys    which canonical keys were declared rather than derived (see below)
  policies only:
    policy_id        declared, else the family key derived from the file name (below)
    effective_from   declared (``effective_from``, ``effective_date`` or ``effective``), else the first
                     date the text states as "Effective date: 2024-01-01", "Effective: 1 April 2025",
                     "effective from/as of/on April 1, 2025", "effective 2025-04-01" or "生效日期：2025-09-01"
                     (labelled forms first, so "replaces the 2024 policy (effective 2024-01-01)" loses)
    effective_to     declared, else computed by `resolve_policy_versions`
    superseded       declared, else computed (a policy saying "this policy was superseded" is not believed)
    superseded_by    declared, else computed: the source id of the newer version

Any other declared key is kept as it is when it is JSON-able (dates become ISO strings); the
loader's own metadata (a ticket's ``ticket_id``, ``status``...) is kept too.

Where declarations come from, lowest precedence first:

1. ``_meta.yaml`` in the corpus root and in every folder down to the file's own; a nearer folder
   wins. ``defaults`` applies to every file below the folder; ``files`` maps glob patterns to
   values, applied in file order after the defaults. A pattern without "/" matches the file
   name (in this folder or below, like .gitignore); with "/", the path relative to the folder
   (fnmatch rules, so "*" also crosses "/")::

       defaults: {product: "General"}
       files:
         "aurora-x2-*": {product: "Aurora X2 headlamp"}
         "returns-policy-*": {policy_id: returns}

2. the document's own metadata: the loader's (a ticket record's ``product``) and a Markdown
   file's YAML front matter, which the loader puts under ``metadata["front_matter"]``;
3. a sidecar next to the file, ``<file name>.meta.yaml`` or ``<file name>.meta.json`` (one
   mapping of keys to values), which wins over everything.

Sidecars are not documents: `is_sidecar` tells the job which files to leave out.

Policy versions (`resolve_policy_versions`, run over all policies of the index): policies with the
same ``policy_id`` form a family; without one, the family key is the file name without extension,
years, dates and version marks, lower-cased: ``returns-policy-2024.md`` and
``Returns_Policy_v2.md`` both give ``returns-policy``. Declare ``policy_id`` to join or split
families (regional variants with the same file name in different folders, say). In a family,
ordered by ``effective_from``, each version followed by a newer one already in effect on `today`
is superseded by the next such version (``superseded_by``; ``effective_to`` = that version's
``effective_from``); the latest version in effect (and any with the same date) is current
(``superseded: false``). A version that starts after `today` is scheduled: it supersedes nothing
yet and is marked with its ``effective_from`` only. A policy without a known ``effective_from``
neither supersedes nor is superseded. Declared ``superseded``, ``superseded_by`` and
``effective_to`` always win over the computed values; the results are as of `today`, so re-run
ingestion when a scheduled version takes effect.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ingest.documents import SourceDocument
from rag.errors import DocumentParseError
from rag.types import DOC_TYPES

__all__ = [
    "FILE_SIDECAR_SUFFIXES",
    "FOLDER_SIDECAR",
    "VERSION_KEYS",
    "DeclaredMetadata",
    "canonical_metadata",
    "declared_metadata",
    "effective_date_in",
    "family_key",
    "is_sidecar",
    "iso_date",
    "resolve_policy_versions",
]

FOLDER_SIDECAR = "_meta.yaml"
FILE_SIDECAR_SUFFIXES = (".meta.yaml", ".meta.json")
VERSION_KEYS = ("superseded", "superseded_by", "effective_to")

_DATE_KEYS = ("updated", "effective_from", "effective_to")
_TEXT_KEYS = ("product", "language", "policy_id", "superseded_by", "doc_type")
_ALIASES = {"updated": ("updated", "last_updated", "date"),
            "effective_from": ("effective_from", "effective_date", "effective")}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def is_sidecar(path: Path) -> bool:
    """True for metadata files (`_meta.yaml`, `*.meta.yaml`, `*.meta.json`), which are not documents."""
    return path.name == FOLDER_SIDECAR or path.name.endswith(FILE_SIDECAR_SUFFIXES)


class DeclaredMetadata(dict[str, Any]):
    """The merged declarations for one file; remembers which keys its own sidecar set.

    A plain dict to everyone else (JSON-able, hashable into a recipe); `canonical_metadata` uses
    `file_keys` to put the document's front matter between the folder layers and the sidecar.
    """

    __slots__ = ("file_keys",)
    file_keys: frozenset[str]

    def __init__(self, folders: Mapping[str, Any] | None = None, sidecar: Mapping[str, Any] | None = None) -> None:
        super().__init__({**(folders or {}), **(sidecar or {})})
        self.file_keys = frozenset(sidecar or {})


def declared_metadata(path: Path, root: Path) -> DeclaredMetadata:
    """The `_meta.yaml` layers from `root` down to the file's folder, then the file's own sidecar."""
    path, root = path.resolve(), root.resolve()
    base = root if root.is_dir() else root.parent
    try:
        folders = path.parent.relative_to(base).parts
    except ValueError:
        raise ValueError(f"{path} is not under the corpus root {base}") from None
    merged: dict[str, Any] = {}
    for depth in range(len(folders) + 1):
        folder = base.joinpath(*folders[:depth])
        if (folder / FOLDER_SIDECAR).is_file():
            merged.update(_folder_layer(folder / FOLDER_SIDECAR, path.relative_to(folder).as_posix()))
    return DeclaredMetadata(merged, _file_sidecar(path))


def _folder_layer(sidecar: Path, relative: str) -> dict[str, Any]:
    data = _read(sidecar)
    unknown = sorted(set(data) - {"defaults", "files"})
    if unknown:
        raise DocumentParseError(f"{sidecar}: unknown key {unknown[0]!r}; a {FOLDER_SIDECAR} has only "
                                 "`defaults` (a mapping) and `files` (glob pattern -> mapping)")
    values = _checked(_mapping(_or_empty(data.get("defaults")), sidecar, "defaults"), sidecar, "defaults")
    patterns = _mapping(_or_empty(data.get("files")), sidecar, "files")
    name = relative.rsplit("/", 1)[-1]
    for pattern, extra in patterns.items():
        where = f"files[{pattern!r}]"
        if fnmatchcase(relative if "/" in pattern else name, pattern):
            values.update(_checked(_mapping(_or_empty(extra), sidecar, where), sidecar, where))
    return values


def _file_sidecar(path: Path) -> dict[str, Any]:
    found = [path.with_name(path.name + suffix) for suffix in FILE_SIDECAR_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise DocumentParseError(f"{path} has two sidecars ({found[0].name}, {found[1].name}): keep one")
    return _checked(_mapping(_read(found[0]), found[0]), found[0]) if found else {}


def _read(sidecar: Path) -> dict[str, Any]:
    try:
        text = sidecar.read_text(encoding="utf-8")
        data = json.loads(text) if sidecar.suffix == ".json" else yaml.load(text, Loader=_Loader)
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentParseError(f"cannot read metadata sidecar {sidecar}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DocumentParseError(f"{sidecar}: invalid JSON at line {exc.lineno}: {exc.msg}; fix it or "
                                 "delete the file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentParseError(f"{sidecar}: invalid YAML{line}: {problem}; fix the syntax (quote values "
                                 "containing ': ' or starting with '*' or '[') or delete the file") from exc
    return _mapping(_or_empty(data), sidecar)


def _or_empty(value: Any) -> Any:
    return {} if value is None else value


def _mapping(value: Any, where: object, key: str = "") -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        what = f"`{key}` in {where}" if key else f"{where}"
        raise DocumentParseError(f"{what} must be a mapping of names to values, got {type(value).__name__}: "
                                 "write `name: value` lines")
    return dict(value)


def _checked(values: dict[str, Any], where: object, key: str = "") -> dict[str, Any]:
    """Values of the canonical keys (and their aliases) must have the right type."""
    place = f"{where}{' ' + key if key else ''}"
    for name, value in values.items():
        if value is None:
            continue
        canonical = next((c for c, aliases in _ALIASES.items() if name in aliases), name)
        if canonical in _DATE_KEYS and iso_date(value) is None:
            raise DocumentParseError(f"{place}: {name} must be a date like 2025-04-01, got {value!r}")
        if name == "superseded" and not isinstance(value, bool):
            raise DocumentParseError(f"{place}: superseded must be true or false, got {value!r}")
        if name in _TEXT_KEYS and not isinstance(value, str):
            raise DocumentParseError(f"{place}: {name} must be a string, got {value!r}: quote it")
        if name == "doc_type" and value not in DOC_TYPES:
            raise DocumentParseError(f"{place}: doc_type must be one of {', '.join(DOC_TYPES)}, got {value!r}")
    return values


# -- canonical metadata --------------------------------------------------------------------


def canonical_metadata(document: SourceDocument, declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declarations, front matter and fall-backs from the text merged into the canonical keys.

    `declared` is what `declared_metadata` returned; a plain mapping counts as folder-level
    (below the front matter).
    """
    where = f"front matter of {document.source}"
    front = _checked(_mapping(_or_empty(document.metadata.get("front_matter")), where), where)
    own = {k: v for k, v in document.metadata.items() if k != "front_matter"}
    declared = declared if declared is not None else {}
    file_keys: frozenset[str] = getattr(declared, "file_keys", frozenset())
    folders = {k: v for k, v in declared.items() if k not in file_keys}
    sidecar = {k: v for k, v in declared.items() if k in file_keys}
    merged = {**folders, **own, **front, **sidecar}
    result: dict[str, Any] = {}
    for key, value in merged.items():
        if (kept := _jsonable(value)) is not None or value is None:
            result[key] = kept
    result.update(_canonical(document, merged))
    return result


def _canonical(document: SourceDocument, merged: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "doc_type": document.doc_type,
        "product": _text(merged.get("product")),
        "language": merged.get("language") or document.language,
        "updated": _first_date(merged, _ALIASES["updated"])
        or _first_date(merged, ("updated_at", "created_at", "sent_at"))
        or _stated_date(document.text[:_HEAD_CHARS], _UPDATED_PATTERNS),
    }
    if document.doc_type == "policy":
        values.update({
            "policy_id": merged.get("policy_id") or family_key(document.source),
            "effective_from": _first_date(merged, _ALIASES["effective_from"]) or effective_date_in(document.text),
            **{key: merged.get(key) for key in VERSION_KEYS},
        })
        values["effective_to"] = iso_date(values["effective_to"])
    declared = {k for k in values if merged.get(k) is not None}
    declared |= {k for k, aliases in _ALIASES.items() if _first_date(merged, aliases) is not None}
    values["declared_keys"] = sorted(declared - {"doc_type"})
    return values


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None


def _first_date(values: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    return next((d for key in keys if (d := iso_date(values.get(key))) is not None), None)


def _jsonable(value: Any) -> Any:
    """The value with dates as ISO strings, or None when it cannot be stored as JSON."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


# -- dates -----------------------------------------------------------------------------------

_MONTHS = {name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
    ("november", "nov"), ("december", "dec")), start=1) for name in names}
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE = (rf"(?:(?P<y>\d{{4}})[-/](?P<m>\d{{1,2}})[-/](?P<d>\d{{1,2}})(?!\d)"
         rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m2>{_MONTH}),?\s+(?P<y2>\d{{4}})"
         rf"|(?P<m3>{_MONTH})\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{{4}})"
         rf"|(?P<y4>\d{{4}})\s*年\s*(?P<m4>\d{{1,2}})\s*月\s*(?P<d4>\d{{1,2}})\s*日)")
_EFFECTIVE_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    rf"(?:\beffective(?:\s+date)?|生效日期|生效时间)\s*[:：]\s*[*_]*\s*{_DATE}",
    rf"\b(?:effective|in\s+effect)\s+(?:from|as\s+of|on|since)\s+{_DATE}",
    rf"自\s*{_DATE}\s*起",
    rf"\beffective\s+{_DATE}",
))
_HEAD_CHARS = 1500
_UPDATED_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    rf"(?:\b(?:last\s+)?updated(?:\s+on)?|更新日期|更新时间)\s*[:：]?\s*[*_]*\s*{_DATE}",
))


def iso_date(value: Any) -> str | None:
    """A date, datetime or date string (ISO, RFC 2822, "1 April 2025") as YYYY-MM-DD, else None."""
    if isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = re.fullmatch(_DATE, text, re.IGNORECASE) or re.match(r"(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)(?=[T ]|$)", text)
    if match:
        return _from_match(match)
    try:
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _from_match(match: re.Match[str]) -> str | None:
    parts = match.groupdict()
    for y, m, d in (("y", "m", "d"), ("y2", "m2", "d2"), ("y3", "m3", "d3"), ("y4", "m4", "d4")):
        if parts.get(y):
            month = parts[m].lower().rstrip(".")
            try:
                return date(int(parts[y]), int(_MONTHS.get(month, month)), int(parts[d])).isoformat()
            except ValueError:
                return None
    return None


def effective_date_in(text: str) -> str | None:
    """The effective date a policy's text states, labelled forms first; None if it states none."""
    return _stated_date(text, _EFFECTIVE_PATTERNS)


def _stated_date(text: str, patterns: Iterable[re.Pattern[str]]) -> str | None:
    for pattern in patterns:
        for match in pattern.finditer(text):
            if (found := _from_match(match)) is not None:
                return found
    return None


# -- policy versions -------------------------------------------------------------------------

_VERSION_MARK = re.compile(r"(?<![a-z0-9])(?:(?:19|20)\d\d(?:[-_.]?\d\d){0,2}|v\d+(?:\.\d+)*|rev\d+|version[-_ ]?\d+)"
                           r"(?![a-z0-9])", re.IGNORECASE)


def family_key(source: str) -> str:
    """The file name without extension, years, dates and version marks: returns-policy-2024.md -> returns-policy."""
    stem = PurePosixPath(source.split("#", 1)[0]).name.split(".", 1)[0].lower()
    key = re.sub(r"[-_.\s]+", "-", _VERSION_MARK.sub(" ", stem)).strip("-")
    return key or stem


def resolve_policy_versions(policies: Mapping[str, Mapping[str, Any]], today: date) -> dict[str, dict[str, Any]]:
    """For every policy, the version keys to set: which newer version (in effect on `today`) replaced it.

    `policies` maps source ids to metadata as `canonical_metadata` made it (values from an
    earlier resolution are recomputed; keys listed in ``declared_keys`` are kept).
    """
    starts = {source: iso_date(meta.get("effective_from")) for source, meta in policies.items()}
    families: dict[str, list[str]] = defaultdict(list)
    for source in sorted(policies):
        families[str(policies[source].get("policy_id") or family_key(source))].append(source)
    updates: dict[str, dict[str, Any]] = {}
    for members in families.values():
        for source in members:
            start = starts[source]
            if start is not None and start > today.isoformat():
                updates[source] = {"effective_from": start}
            else:
                computed = _successor(start, {s: starts[s] for s in members}, today)
                updates[source] = _keep_declared(policies[source], computed, starts)
    return updates


def _successor(start: str | None, family: Mapping[str, str | None], today: date) -> dict[str, Any]:
    """The next newer version already in effect (the smallest source id among equal dates), if any."""
    newer = sorted(d for d in family.values() if start is not None and d is not None and start < d <= today.isoformat())
    successor = min((s for s, d in family.items() if newer and d == newer[0]), default=None)
    return {"superseded": successor is not None, "superseded_by": successor, "effective_to": newer[0] if newer else None}


def _keep_declared(meta: Mapping[str, Any], computed: dict[str, Any], starts: Mapping[str, str | None]) -> dict[str, Any]:
    """Declared version keys are left alone; the computed rest agrees with them."""
    listed = meta.get("declared_keys")
    pinned = set(listed) if isinstance(listed, list) else {k for k in VERSION_KEYS if meta.get(k) is not None}
    pinned &= set(VERSION_KEYS)
    if "superseded_by" in pinned:
        computed.update(superseded=True, effective_to=starts.get(str(meta["superseded_by"])))
    if "superseded" in pinned and meta.get("superseded") is False:
        computed.update(superseded_by=None, effective_to=None)
    return {k: v for k, v in computed.items() if k not in pinned}
