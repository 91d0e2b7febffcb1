"""``python -m sklearn_gpt2``: the main job (see :mod:`sklearn_gpt2._cli`)."""

from ._cli import main

raise SystemExit(main())
