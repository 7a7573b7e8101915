"""The HTTP API: a thin shell over `RagPipeline`."""

from rag.api.app import create_app

__all__ = ["create_app"]
