"""``python -m aaltohub`` runs the CLI."""

import sys

from aaltohub.cli import main

sys.exit(main())
