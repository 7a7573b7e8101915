from __future__ import annotations

from pathlib import Path

import pytest

from rag.embedders import HashEmbedder
from rag.errors import ConfigError
from rag.registry import create_embedder, embedder_names, register_embedder
from rag.settings import Settings


def test_defaults_work_offline() -> None:
    settings = Settings()
    assert settings.embedding.model == "all-MiniLM-L6-v2"
    assert settings.index.dir == Path("data/index")
    assert settings.llm.base_url.endswith("/v1")


def test_env_nested_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rag.toml").write_text('[llm]\nmodel = "from-toml"\ntimeout_s = 12\n[api]\nport = 9000\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_LLM__MODEL", "from-env")
    monkeypatch.setenv("RAG_LLM__API_KEY", "sk-secret")
    settings = Settings()
    assert settings.llm.model == "from-env"  # env beats the file
    assert settings.llm.timeout_s == 12 and settings.api.port == 9000
    assert "sk-secret" not in repr(settings) and settings.llm.api_key.get_secret_value() == "sk-secret"


def test_bad_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM__TIMEOUT_S", "-1")
    with pytest.raises(ValueError, match="timeout_s"):
        Settings()


def test_registry_builtins_and_plugins() -> None:
    assert {"sentence-transformers", "hash"} <= set(embedder_names())
    register_embedder("hash-128", lambda **_: HashEmbedder(dimension=128))
    assert create_embedder("hash-128").dimension == 128
    with pytest.raises(ConfigError, match="unknown embedding backend 'nope'"):
        create_embedder("nope")
