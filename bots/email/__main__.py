"""``python -m bots.email``: the e-mail channel alone, against ``REDIS_URL``."""

from kanal.app.channels import channel_main

raise SystemExit(channel_main("bots.email"))
