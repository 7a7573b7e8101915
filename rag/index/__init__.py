"""Vector index, chunk store and the folder that holds them."""

from rag.index.faiss_index import FaissIndex, gpu_count
from rag.index.folder import IndexFiles, LoadedIndex, open_index, replace_index_dir
from rag.index.store import ChunkStore

__all__ = ["ChunkStore", "FaissIndex", "IndexFiles", "LoadedIndex", "gpu_count", "open_index", "replace_index_dir"]
