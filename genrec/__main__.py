"""python -m genrec"""

from .cli import main

raise SystemExit(main())
