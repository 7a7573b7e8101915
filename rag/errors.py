"""The errors the core raises; the API and the CLI map them to status and exit codes.

Every message names the cause and the fix. The tree::

    RagError
    ├── ConfigError              bad settings or arguments
    ├── NotReadyError            the service is still starting (loading its index and models)
    ├── InputError               a request the service cannot take (empty question, bad filter)
    │   └── NotFoundError        what the request refers to is not there (an expired conversation, a turn)
    ├── IndexFolderError         the index folder
    │   ├── IndexNotFoundError   no index where one was expected
    │   ├── IndexCorruptError    an index that cannot be read or does not match its manifest
    │   └── IndexLockedError     another ingestion or rollback is changing the folder
    ├── EmbeddingError           the embedding model could not be loaded or run
    ├── RerankerError            the reranking model could not be loaded or run
    ├── StorageError             a store (feedback) could not be written or read: disk full, database down
    ├── IngestError              a corpus that cannot be ingested
    │   └── DocumentParseError   one file that could not be parsed
    └── LLMError                 the language model server
        ├── LLMUnavailableError  the server cannot be reached
        ├── LLMTimeoutError      the server did not answer in time
        ├── LLMResponseError     the server answered with an error or an unusable reply
        │   ├── LLMEmptyResponseError  a well-formed reply with nothing in it (no choices, blank text)
        │   └── AnswerFormatError      a structured (JSON) answer that does not follow the answer schema
        └── LLMServerError       the local vLLM server could not be installed, prepared or started
"""

from __future__ import annotations

__all__ = [
    "AnswerFormatError",
    "ConfigError",
    "DocumentParseError",
    "EmbeddingError",
    "IndexCorruptError",
    "IndexFolderError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IngestError",
    "InputError",
    "LLMEmptyResponseError",
    "LLMError",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "NotFoundError",
    "NotReadyError",
    "RagError",
    "RerankerError",
    "StorageError",
]


class RagError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(RagError):
    """Settings or arguments that cannot work together."""


class NotReadyError(RagError):
    """The service is still starting; the request can be retried shortly."""


class InputError(RagError):
    """A request the service cannot take as given."""


class NotFoundError(InputError):
    """The request names something the service does not have (any more): a conversation, a turn of it."""


class IndexFolderError(RagError):
    """Something is wrong with the index folder."""


class IndexNotFoundError(IndexFolderError):
    """No index exists where one was expected."""


class IndexCorruptError(IndexFolderError):
    """An index that cannot be read or disagrees with its manifest."""


class IndexLockedError(IndexFolderError):
    """Another process (ingestion or rollback) holds the index folder's lock."""


class RerankerError(RagError):
    """The reranking (cross-encoder) model could not be loaded or run."""


class EmbeddingError(RagError):
    """The embedding model could not be loaded or run."""


class StorageError(RagError):
    """A store (feedback) could not be written or read: disk full, database down; retry once that is fixed."""


class IngestError(RagError):
    """A corpus that cannot be ingested."""


class DocumentParseError(IngestError):
    """One source file that could not be parsed."""


class LLMError(RagError):
    """The language model server failed."""


class LLMUnavailableError(LLMError):
    """The language model server cannot be reached."""


class LLMTimeoutError(LLMError):
    """The language model server did not answer in time."""


class LLMResponseError(LLMError):
    """The language model server answered with an error or an unusable reply."""


class LLMEmptyResponseError(LLMResponseError):
    """A well-formed reply without an answer in it: the caller escalates rather than shows nothing."""


class AnswerFormatError(LLMResponseError):
    """A reply that began as JSON but does not follow the answer schema: cut off, malformed, a field missing."""


class LLMServerError(LLMError):
    """The local vLLM server could not be installed, prepared or started."""
