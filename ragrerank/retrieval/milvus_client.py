"""Talking to Milvus: one client for a local Milvus Lite file or a server, collection names, errors.

``MilvusClient(uri)`` takes a local ``*.db`` path (Milvus Lite: in-process, nothing to run,
for a laptop or CI) or a server address (``http://host:19530``: Milvus standalone or a
cluster), so one code path serves both; moving to a cluster changes a URI, not the code.
A collection is named after the passages' checksum and the bi-encoder, and records both in
its properties, so passages embedded by another model, or an older corpus, never mix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from pymilvus import MilvusClient, MilvusException

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError

DEFAULT_DB = "milvus.db"  # Milvus Lite database in the artifacts folder
CONNECT_TIMEOUT_S = 5.0  # an unreachable server fails in seconds instead of hanging
BUILD = "run `ragrerank index --store milvus`"

PREFIX = "ragrerank"
VECTOR = "vector"
SEARCH_PARAMS = {"metric_type": "IP"}  # inner product of unit vectors: cosine, as with FAISS


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built from; kept in its properties and compared on open."""

    bi_encoder: str
    passages_sha256: str
    passages: int

    def properties(self) -> dict[str, str]:
        return {f"{PREFIX}.{name}": str(value) for name, value in vars(self).items()}

    @classmethod
    def from_properties(cls, properties: dict[str, str], collection: str) -> CollectionInfo:
        try:
            return cls(
                properties[f"{PREFIX}.bi_encoder"],
                properties[f"{PREFIX}.passages_sha256"],
                int(properties[f"{PREFIX}.passages"]),
            )
        except (KeyError, ValueError):
            raise RagrerankError(
                f"collection {collection} does not say what it was built from (properties {properties}): "
                f"drop it, or {BUILD} --force to rebuild it"
            ) from None

    def describe(self) -> str:
        return f"{self.passages} passages (sha256 {self.passages_sha256[:12]}…) embedded by {self.bi_encoder!r}"


def default_uri(settings: Settings) -> str:
    """The Milvus Lite database beside the other artifacts, used when no URI is given."""
    return str(settings.home / DEFAULT_DB)


def collection_name(passages_sha256: str, bi_encoder: str) -> str:
    """One collection per (passages, bi-encoder), so a new corpus or model never mixes with an old one.

    Example:
        >>> collection_name("b7f184e79317376e…", "sentence-transformers/all-MiniLM-L6-v2")
        'ragrerank_b7f184e79317_sentence_transformers_all_minilm_l6_v2'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", bi_encoder.lower()).strip("_")[:64]  # Milvus names: letters, digits, _
    return f"{PREFIX}_{passages_sha256[:12]}_{slug}"


def connect(uri: str, token: str = "", timeout: float = CONNECT_TIMEOUT_S, create: bool = False) -> MilvusClient:
    """Connect to Milvus Lite (a ``*.db`` path) or a server (``http(s)://host:port``), failing fast.

    Args:
        uri: a local ``*.db`` path or a server address; ``user:password@`` in it is accepted
            and kept out of error messages.
        token: ``"user:password"`` or an API key for a server with authentication.
        timeout: seconds to wait for the server before giving up.
        create: create a missing Milvus Lite database (building) instead of refusing (searching).
    """
    if _is_local(uri):
        uri = str(_local_path(uri, create))
    try:
        return MilvusClient(uri=uri, token=token, timeout=timeout)
    except MilvusException as error:
        if _is_local(uri):
            raise RagrerankError(
                f"cannot open the Milvus Lite database {uri} ({error.message}; the log above says why): "
                "most often another process has it open, and Milvus Lite serves one process at a time; "
                "close the other notebook or command, or run a Milvus server and pass its address"
            ) from None
        raise RagrerankError(
            f"cannot reach Milvus at {redact(uri)} within {timeout:g} s ({error.message}): start the server, "
            "fix --milvus-uri, or pass a local file such as artifacts/milvus.db to use Milvus Lite"
        ) from None


def count_rows(client: MilvusClient, name: str) -> int:
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def check_dimension(description: dict[str, Any], dimension: int, name: str) -> None:
    stored = next(int(f["params"]["dim"]) for f in description["fields"] if f["name"] == VECTOR)
    if stored != dimension:
        raise RagrerankError(
            f"collection {name} holds {stored}-d vectors, the bi-encoder gives {dimension}-d: {BUILD} --force"
        )


@contextmanager
def milvus_errors(uri: str, action: str) -> Iterator[None]:
    """Turn a Milvus failure mid-call (server gone, quota, bad request) into one readable line."""
    try:
        yield
    except (MilvusException, grpc.RpcError) as error:  # pymilvus lets some transport errors through unwrapped
        raise RagrerankError(
            f"Milvus at {redact(uri)} failed to {action} ({_reason(error)}): check that the server is up, "
            "and its logs for the cause"
        ) from None


def _reason(error: MilvusException | grpc.RpcError) -> str:
    if isinstance(error, MilvusException):
        return error.message
    return f"{error.code().name}: {error.details()}" if isinstance(error, grpc.Call) else str(error)


def _is_local(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("unix:")


def _local_path(uri: str, create: bool) -> Path:
    path = Path(uri).expanduser().resolve()
    if path.suffix != ".db":
        raise RagrerankError(
            f"Milvus URI {uri!r} is neither a server address nor a .db file: pass a Milvus Lite file such as "
            f"{path.with_suffix('.db')} or an address such as http://localhost:19530"
        )
    if not create and not path.exists():
        raise RagrerankError(f"no Milvus Lite database at {path}: {BUILD} --milvus-uri {path} to build it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def redact(uri: str) -> str:
    """The URI without a password, for messages and reports."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
