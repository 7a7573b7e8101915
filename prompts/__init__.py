"""Versioned prompt templates, stored as TOML package data and loaded by name.

A template is `prompts/<name>.<version>.toml` (e.g. `answer.v2.toml`), with the keys

    variables = ["passages", "question"]   # every {placeholder} the texts use, no more, no fewer
    system = "...static instructions...\\n\\nPassages:\\n{passages}"
    user = "{question}"
    stop = ["\\nQuestion:"]                 # optional: stop sequences sent with the request
    refusal = "I can't answer that ..."     # optional: the exact reply that means "no answer here"
    description = "..."                     # optional: what changed in this version

`load()` checks a template before anything uses it: `system` and `user` must be strings, and the
`{placeholders}` they contain must be exactly the declared `variables`; a broken file raises
`TemplateError` (a `ValueError`) naming the file and the variable. `load("answer")` picks the highest
version; pass `directory=` to load from a folder instead of this package (tests, experiments).

Static text first. vLLM's automatic prefix caching reuses the KV cache of the longest prompt prefix it
has seen, so every template keeps its instructions at the start of the system message and puts the
per-request text after them: `{passages}` ends the system message, `{question}` is the user message.
`PromptTemplate.static_prefix` is the part before the first placeholder, identical byte for byte
across requests (tests/rag/test_prompting.py checks the shipped templates). Adding text that varies
per request (a date, the customer's name) before the instructions would defeat the cache.

Placeholders are `{name}` with `name` an identifier; other braces are left alone, and `render` fills
all placeholders in one pass, so a passage that contains "{question}" stays as written.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["PromptTemplate", "TemplateError", "available", "load"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A prompt file that cannot be used as it is; the message names the file and what to fix."""


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A system and a user template with declared `{placeholders}` (normally `passages`, `question`)."""

    name: str
    version: str
    system: str
    user: str
    stop: tuple[str, ...] = ()
    refusal: str = ""
    variables: tuple[str, ...] = ("passages", "question")

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def static_prefix(self) -> str:
        """The system text before its first placeholder: the same for every request (prefix-cacheable)."""
        found = _PLACEHOLDER.search(self.system)
        return self.system if found is None else self.system[: found.start()]

    def render(self, **values: str) -> tuple[str, str]:
        """(system, user) with every placeholder filled in one pass; a missing value raises KeyError."""
        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m[1]], text)

        return fill(self.system), fill(self.user)


def available(directory: Traversable | None = None) -> list[str]:
    """Every prompt as 'name@version'."""
    files = _folder(directory).iterdir()
    return sorted(f"{p.name.removesuffix('.toml').replace('.', '@', 1)}" for p in files if p.name.endswith(".toml"))


def load(name: str, version: str = "latest", *, directory: Traversable | None = None) -> PromptTemplate:
    """Load and check `name@version`; 'latest' picks the highest version."""
    names = available(directory)
    versions = sorted((p.split("@")[1] for p in names if p.split("@")[0] == name), key=_version_key)
    if not versions:
        raise LookupError(f"no prompt named {name!r}; available: {', '.join(names)}")
    chosen = versions[-1] if version == "latest" else version
    if chosen not in versions:
        raise LookupError(f"prompt {name!r} has no version {version!r}; available: {', '.join(versions)}")
    file = _folder(directory).joinpath(f"{name}.{chosen}.toml")
    return _parse(name, chosen, file)


def _parse(name: str, version: str, file: Traversable) -> PromptTemplate:
    where = f"prompt file {file}"
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{where} is not valid TOML ({exc}): fix the syntax") from exc
    system, user = (_required_text(data, key, where) for key in ("system", "user"))
    variables = _declared(data, where)
    _check_placeholders(system, user, variables, where)
    return PromptTemplate(name, version, system, user, tuple(data.get("stop", ())), str(data.get("refusal", "")),
                          variables)


def _required_text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        problem = "is missing" if value is None else f"must be a string, not {type(value).__name__}"
        raise TemplateError(f"{where}: key {key!r} {problem}; a template needs 'system' and 'user' strings")
    return value


def _declared(data: dict[str, Any], where: str) -> tuple[str, ...]:
    value = data.get("variables")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f"{where}: declare the placeholders it uses, e.g. variables = [\"passages\", \"question\"]")
    return tuple(value)


def _check_placeholders(system: str, user: str, variables: tuple[str, ...], where: str) -> None:
    used = set(_PLACEHOLDER.findall(system)) | set(_PLACEHOLDER.findall(user))
    undeclared, unused = sorted(used - set(variables)), [v for v in variables if v not in used]
    if undeclared:
        raise TemplateError(f"{where}: placeholder {{{undeclared[0]}}} is not declared: add {undeclared[0]!r} to "
                            f"variables or remove the placeholder")
    if unused:
        raise TemplateError(f"{where}: variable {unused[0]!r} is declared but neither 'system' nor 'user' uses it: "
                            f"add {{{unused[0]}}} or remove it from variables")


def _folder(directory: Traversable | None) -> Traversable:
    return resources.files(__package__) if directory is None else directory


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split(".") if part.isdigit())
