"""``python -m wallbounce_kubectl``: the plugin's entry point."""

import sys

from wallbounce_kubectl.cli import main

if __name__ == "__main__":
    sys.exit(main())
