"""`python -m spatten` runs the CLI."""

from spatten.cli import main

raise SystemExit(main())
