"""Provider simulators for tests, benchmarks and the demo: OpenAI (Responses, Chat Completions), Gemini
generateContent and Anthropic Messages wire formats (one module per vendor, as in the service's ``providers/``),
scriptable per vendor (latency, errors, rate limits, what they answer, how they review), and able to play the
consensus evaluation set the way real models answer the service's structured rounds (``player``).

Test infrastructure only: the service's production code never imports this package.
"""

from .player import Player
from .scripts import REVIEWERS, VendorScript, VendorStats
from .server import VENDORS, Simulator

__all__ = ["REVIEWERS", "VENDORS", "Player", "Simulator", "VendorScript", "VendorStats"]
