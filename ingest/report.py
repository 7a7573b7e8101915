"""What an ingestion run did, for people (the CLI table) and schedulers (JSON, exit code).

Exit codes of `rag ingest` (also in the README):

    0   every file was ingested (or nothing had changed)
    1   the run crashed (a bug: the current version is untouched)
    2   bad arguments or settings
    3   the index folder cannot be used (corrupt, or nothing to ingest)
    10  the run finished, but some files or records were skipped (unsupported, empty, too big, malformed)
    11  the run finished, but some files failed to parse; their previous version, if any, is kept
    75  another ingestion or rollback holds the index (EX_TEMPFAIL: retry later, or pass --wait)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SKIPPED", "Change", "IngestReport"]

EXIT_OK, EXIT_SKIPPED, EXIT_FAILED = 0, 10, 11

ChangeKind = Literal["added", "changed", "removed", "unchanged"]


@dataclass(frozen=True, slots=True)
class Change:
    """One source file in the plan: what happens to it and why."""

    kind: ChangeKind
    source: str
    reason: str = ""


@dataclass(slots=True)
class IngestReport:
    """Counts, reasons and timings of one run (or of a dry run's plan)."""

    index_dir: Path
    version: str = ""
    previous_version: str | None = None
    published: bool = False
    dry_run: bool = False
    plan: list[Change] = field(default_factory=list)
    documents: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_records: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    redactions: Counter[str] = field(default_factory=Counter)
    duplicates_collapsed: int = 0
    superseded: list[str] = field(default_factory=list)
    by_doc_type: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)
    pruned: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> Counter[str]:
        """Files by what happened to them: added, changed, removed, unchanged (plus failed, skipped)."""
        counts: Counter[str] = Counter(change.kind for change in self.plan)
        counts["skipped"] = len(self.skipped)
        counts["failed"] = len(self.failed)
        return counts

    def changes(self, kind: ChangeKind) -> list[Change]:
        return [change for change in self.plan if change.kind == kind]

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_SKIPPED if self.skipped or self.skipped_records else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        files = self.files
        return {
            "index_dir": str(self.index_dir),
            "version": self.version,
            "previous_version": self.previous_version,
            "published": self.published,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "files": {kind: files.get(kind, 0) for kind in
                      ("added", "changed", "removed", "unchanged", "skipped", "failed")},
            "documents": {kind: self.documents.get(kind, 0) for kind in ("added", "changed", "removed", "unchanged")},
            "changes": [{"kind": c.kind, "source": c.source, "reason": c.reason} for c in self.plan
                        if c.kind != "unchanged"],
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "skipped_records": [{"where": s, "reason": r} for s, r in self.skipped_records],
            "failed": [{"source": s, "reason": r} for s, r in self.failed],
            "chunks": {"total": self.chunks, "added": self.chunks_added, "removed": self.chunks_removed,
                       "embedded": self.chunks_embedded, "reused": self.chunks_reused},
            "pii_redactions": dict(sorted(self.redactions.items())),
            "duplicate_tickets_collapsed": self.duplicates_collapsed,
            "superseded_policies": self.superseded,
            "by_doc_type": dict(sorted(self.by_doc_type.items())),
            "by_format": dict(sorted(self.by_format.items())),
            "pruned_versions": self.pruned,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
            "seconds": round(self.seconds, 3),
        }
