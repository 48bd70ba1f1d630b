"""Plain text from markup that arrives from outside (a CRM's HTML notes, an HTML e-mail)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BR = re.compile(r"<br\s*/?>", re.I)
_BLOCK_TAG = re.compile(r"</?(?:p|div|li|tr|h[1-6])\b[^>]*>", re.I)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def strip_html(text: str) -> str:
    """Tags removed, entities decoded; ``<br>`` and block ends become line breaks."""
    if "<" not in text and "&" not in text:
        return text.strip()
    text = _BLOCK_TAG.sub("\n", _BR.sub("\n", text))
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.out)).strip()


__all__ = ["strip_html"]
