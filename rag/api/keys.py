"""API keys: who may call the service, with which scopes, at what rate.

A key is shown once, when `rag keys create` makes it; only its SHA-256 is stored (keys are 256
random bits, so a fast hash is as safe as a slow one and keeps every request cheap). Keys come
from the settings (`RAG_AUTH__KEYS`) and from a TOML file of `[[keys]]` tables
(`RAG_AUTH__KEYS_FILE`, by default api-keys.toml beside the index folder).

Scopes: `ask` (/ask, /v1), `feedback` (/feedback), `metrics` (/metrics), `admin` (/admin, and
everything else).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import ValidationError

from rag.errors import ConfigError
from rag.settings import ApiKeySpec, AuthSettings

__all__ = ["SCOPES", "ApiKey", "KeyRing", "Scope", "add_key", "hash_key", "list_keys", "load_keyring", "new_key",
           "remove_key"]

log = logging.getLogger("rag.api")
Scope = Literal["ask", "feedback", "metrics", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
_PREFIX = "rag_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A caller as the service knows it: never the key itself."""

    name: str
    digest: str  # sha256:<hex>
    scopes: frozenset[str]
    rate_per_minute: float | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class KeyRing:
    """The keys the server accepts; `KeyRing.off()` accepts anyone (local use only).

    Keys from `keys_file` are re-read when the file changes (checked at most once a second), so a key
    created or revoked with `rag keys` counts without a restart. A file that turns unreadable keeps the
    keys last read, with one error logged.
    """

    def __init__(self, keys: Iterable[ApiKey] = (), *, enabled: bool = True, keys_file: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled, self._fixed, self._file, self._clock = enabled, tuple(keys), keys_file, clock
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._from_file: tuple[ApiKey, ...] = ()
        self._refresh(force=True)

    @classmethod
    def off(cls) -> KeyRing:
        return cls((), enabled=False)

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        return self._fixed + self._from_file

    def find(self, presented: str) -> ApiKey | None:
        """The key whose hash matches; every stored hash is compared, in constant time each."""
        self._refresh()
        digest = hash_key(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found

    def _refresh(self, *, force: bool = False) -> None:
        if self._file is None or (not force and self._clock() - self._checked < 1.0):
            return
        self._checked = self._clock()
        try:
            info = self._file.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        try:
            loaded = tuple(_key(s) for s in _read(self._file))
        except ConfigError as exc:
            if force:
                raise
            log.error("keeping the API keys read before: %s", exc)
            return
        names = [k.name for k in self._fixed + loaded]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"API key names must be unique; {twice} appear twice (settings and {self._file})")
        self._stamp, self._from_file = stamp, loaded


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return _PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def load_keyring(auth: AuthSettings, keys_file: Path) -> KeyRing:
    """The keys of the settings and of `keys_file` (absent: none); ConfigError, with the fix, for a bad file."""
    if not auth.enabled:
        return KeyRing.off()
    return KeyRing((_key(s) for s in auth.keys), keys_file=keys_file)


def _key(spec: ApiKeySpec) -> ApiKey:
    return ApiKey(spec.name, spec.hash, frozenset(spec.scopes), spec.rate_per_minute)


def add_key(keys_file: Path, name: str, scopes: Sequence[str], *, rate_per_minute: float | None = None,
            replace: bool = False) -> str:
    """Create a key named `name`, store its hash in `keys_file` (written atomically, mode 600), return the key."""
    specs = _read(keys_file)
    if any(s.name == name for s in specs) and not replace:
        raise ConfigError(f"{keys_file} already has a key named {name!r}: pick another name, or pass --replace "
                          "to revoke it and make a new one")
    key = new_key()
    try:
        spec = ApiKeySpec(name=name, hash=hash_key(key), scopes=list(scopes), rate_per_minute=rate_per_minute)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid key: {_problems(exc)} (scopes: {', '.join(SCOPES)}; "
                          "names: letters, digits, . _ -)") from exc
    _write(keys_file, [*(s for s in specs if s.name != name), spec])
    return key


def remove_key(keys_file: Path, name: str) -> bool:
    """Revoke the key named `name`; False when there was none."""
    specs = _read(keys_file)
    kept = [s for s in specs if s.name != name]
    if len(kept) != len(specs):
        _write(keys_file, kept)
    return len(kept) != len(specs)


def list_keys(keys_file: Path) -> list[ApiKeySpec]:
    return _read(keys_file)


def _read(keys_file: Path) -> list[ApiKeySpec]:
    if not keys_file.exists():
        return []
    try:
        data = tomllib.loads(keys_file.read_text(encoding="utf-8"))
        return [ApiKeySpec.model_validate(entry) for entry in data.get("keys", [])]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the API keys file {keys_file} ({exc}): fix it, or set RAG_AUTH__KEYS_FILE") from exc
    except ValidationError as exc:
        raise ConfigError(f"invalid API keys file {keys_file}: {_problems(exc)}; each [[keys]] needs name, "
                          f"hash (sha256:<hex>, from `rag keys create`) and scopes ({', '.join(SCOPES)})") from exc


def _write(keys_file: Path, specs: Sequence[ApiKeySpec]) -> None:
    lines = ["# API keys of the support-answers service: hashes only (`rag keys create` shows a key once).", ""]
    for spec in specs:
        lines += ["[[keys]]", f'name = "{spec.name}"', f'hash = "{spec.hash}"',
                  "scopes = [" + ", ".join(f'"{s}"' for s in spec.scopes) + "]"]
        if spec.rate_per_minute is not None:
            lines.append(f"rate_per_minute = {spec.rate_per_minute:g}")
        lines.append("")
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = keys_file.with_name(f".{keys_file.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.replace(temporary, keys_file)


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
