"""``python -m bots.sms``: the SMS channel alone, against ``REDIS_URL``."""

from kanal.app.channels import channel_main

raise SystemExit(channel_main("bots.sms"))
