"""``python -m bridge``: the bridge alone, against ``REDIS_URL`` (see ``--help``)."""

from kanal.app.bridge import main

raise SystemExit(main())
