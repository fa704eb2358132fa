"""``python -m mailpost``: the ``mailpost`` command line."""

from __future__ import annotations

from mailpost._cli import main

raise SystemExit(main())
