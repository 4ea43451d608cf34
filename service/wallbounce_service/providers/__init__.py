"""LLM providers behind one interface: the OpenAI, Gemini and Anthropic SDK adapters and the retrying pool.

``build_clients`` creates a client for every provider whose API key is set (a provider without a key is not
configured); the SDKs read their keys and base URLs from their own environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..config import ProviderSettings
from .base import ProviderClient


def key_present(name: str) -> bool:
    if name == "openai":
        return bool(os.environ.get("OPENAI_API_KEY"))
    if name == "anthropic":
        return bool(os.environ.get("ANTHROPIC_API_KEY"))
    if name == "gemini":
        return bool(os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY"))
    return False


def build_clients(settings: Mapping[str, ProviderSettings]) -> dict[str, ProviderClient]:
    clients: dict[str, ProviderClient] = {}
    for name, conf in settings.items():
        if not key_present(name):
            continue
        if name == "openai":
            from .openai_api import OpenAIClient

            clients[name] = OpenAIClient(conf.model)
        elif name == "anthropic":
            from .anthropic_api import AnthropicClient

            clients[name] = AnthropicClient(conf.model)
        elif name == "gemini":
            from .gemini_api import GeminiClient

            clients[name] = GeminiClient(conf.model)
    return clients
