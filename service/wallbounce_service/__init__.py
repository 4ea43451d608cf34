"""The wall-bounce service: an aiohttp app that fans a prompt out to several LLM providers and builds a consensus."""
