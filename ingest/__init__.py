"""The ingestion job: loaders (unstructured, tickets), chunking, and the index writer."""

from ingest.chunking import StructureAwareChunker
from ingest.documents import DocumentLoader, Element, SourceDocument
from ingest.job import IngestJob
from ingest.report import IngestReport

__all__ = ["DocumentLoader", "Element", "IngestJob", "IngestReport", "SourceDocument", "StructureAwareChunker"]
