"""``python -m edge`` is the same as the ``edge-slider`` console script."""

import sys

from edge.cli import main

sys.exit(main())
