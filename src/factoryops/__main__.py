"""`python -m factoryops` is the `factoryops` command."""

from factoryops.entrypoints.cli import main

raise SystemExit(main())
