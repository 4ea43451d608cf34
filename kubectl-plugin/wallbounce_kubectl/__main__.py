"""``python -m wallbounce_kubectl`` (and the single-file build Krew installs): the plugin's entry point."""

import sys

from wallbounce_kubectl.cli import main

sys.exit(main())
