"""``python -m bots.twitter``: the X channel alone, against ``REDIS_URL``."""

from kanal.app.channels import channel_main

raise SystemExit(channel_main("bots.twitter"))
