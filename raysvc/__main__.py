"""``python -m raysvc``."""

from raysvc.cli import main

raise SystemExit(main())
