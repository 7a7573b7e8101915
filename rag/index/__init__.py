"""Vector index, chunk store and the versioned folder that holds them."""

from rag.index.bm25_index import Bm25Index
from rag.index.faiss_index import AnnOptions, FaissIndex, gpu_count
from rag.index.folder import IndexFiles, IndexFolder, LoadedIndex, VersionInfo, open_index
from rag.index.store import ChunkStore

__all__ = [
    "AnnOptions", "Bm25Index", "ChunkStore", "FaissIndex", "IndexFiles", "IndexFolder", "LoadedIndex", "VersionInfo",
    "gpu_count", "open_index",
]
