"""``python -m streamup`` runs the CLI (same as the ``streamup`` script)."""

import sys

from streamup.cli import main

sys.exit(main())
