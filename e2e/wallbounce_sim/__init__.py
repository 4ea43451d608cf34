"""Provider simulators for tests and the demo: OpenAI (Responses, Chat Completions), Gemini generateContent and
Anthropic Messages wire formats, scriptable per vendor (latency, errors, rate limits, what they answer).

Test infrastructure only: the service's production code never imports this package.
"""

from .server import Simulator, VendorScript

__all__ = ["Simulator", "VendorScript"]
