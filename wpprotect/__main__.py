"""``python -m wpprotect``: the same command as ``wpprotect``."""

from wpprotect.cli import main

raise SystemExit(main())
