"""``python -m memgate``: the same command as ``memgate``."""

from memgate.entry import main

raise SystemExit(main())
