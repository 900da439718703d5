"""`python -m kittiwake` runs the command line."""

from kittiwake.cli import main

raise SystemExit(main())
