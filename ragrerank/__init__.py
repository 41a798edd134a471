"""ragrerank: cross-encoder reranking for RAG over the Kubernetes documentation."""

from ragrerank.config import Settings, resolve_settings
from ragrerank.errors import RagrerankError
from ragrerank.types import Hit, Passage

__all__ = ["Hit", "Passage", "RagrerankError", "Settings", "resolve_settings"]
__version__ = "0.1.0"
