"""``python -m bots.telegram``: the Telegram channel alone, against ``REDIS_URL``."""

from kanal.app.channels import channel_main

raise SystemExit(channel_main("bots.telegram"))
