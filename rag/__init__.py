"""Runtime of the support-answering service: retrieval, generation, the pipeline, the API.

The public API is re-exported here; heavy backends (faiss, sentence-transformers, openai)
load only when used.
"""

from rag.errors import RagError
from rag.pipeline import RagPipeline
from rag.types import Answer, Chunk, Citation, Filters, Message, ScoredChunk

__version__ = "0.1.0"

__all__ = ["Answer", "Chunk", "Citation", "Filters", "Message", "RagError", "RagPipeline", "ScoredChunk", "__version__"]
