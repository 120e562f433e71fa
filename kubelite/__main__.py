"""`python -m kubelite ...`: the same as the `kubelite` command."""

from kubelite.cli.main import main

raise SystemExit(main())
