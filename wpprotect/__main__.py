"""``python -m wpprotect``: the same command as ``wpprotect``."""

from wpprotect._launch import main

raise SystemExit(main())
