"""Versioned prompt templates, stored as TOML package data and loaded by name."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

__all__ = ["PromptTemplate", "available", "load"]


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A system and a user template with `{passages}` and `{question}` placeholders."""

    name: str
    version: str
    system: str
    user: str
    stop: tuple[str, ...] = ()
    refusal: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"


def available() -> list[str]:
    """Every prompt as 'name@version'."""
    files = resources.files(__package__).iterdir()
    return sorted(f"{p.name.removesuffix('.toml').replace('.', '@', 1)}" for p in files if p.name.endswith(".toml"))


def load(name: str, version: str = "latest") -> PromptTemplate:
    """Load `name@version`; 'latest' picks the highest version."""
    versions = sorted((p.split("@")[1] for p in available() if p.split("@")[0] == name), key=_version_key)
    if not versions:
        raise LookupError(f"no prompt named {name!r}; available: {', '.join(available())}")
    chosen = versions[-1] if version == "latest" else version
    if chosen not in versions:
        raise LookupError(f"prompt {name!r} has no version {version!r}; available: {', '.join(versions)}")
    data = tomllib.loads(resources.files(__package__).joinpath(f"{name}.{chosen}.toml").read_text("utf-8"))
    return PromptTemplate(name, chosen, data["system"], data["user"], tuple(data.get("stop", ())),
                          str(data.get("refusal", "")))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split(".") if part.isdigit())
