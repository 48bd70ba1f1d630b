"""``python -m tests.loopback``: the test channel alone, as ``python -m bots.<channel>``."""

from kanal.app.channels import channel_main

raise SystemExit(channel_main("tests.loopback"))
