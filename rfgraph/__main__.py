"""``python -m rfgraph``: the command line (see :mod:`rfgraph.cli`)."""

from .cli import main

raise SystemExit(main())
