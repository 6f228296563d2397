"""``python -m wpprotect``: the same CLI as the ``wpprotect`` command."""

from wpprotect.cli import main

raise SystemExit(main())
