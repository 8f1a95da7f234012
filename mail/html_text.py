"""HTML mail to plain text, with the standard library: block elements become line breaks, links
keep their address, scripts, styles and the head are dropped, entities are decoded."""

import re
from html.parser import HTMLParser

BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr", "pre"}
)
SKIPPED = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0
        self.href: str | None = None
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCKS:
            self.chunks.append("\n")
            if tag == "li":
                self.chunks.append("- ")
        elif tag == "a":
            self.href = dict(attrs).get("href")
            self.link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS and tag != "li":  # the next item's start breaks the line
            self.chunks.append("\n")
        elif tag == "a" and self.href is not None:
            text = "".join(self.link_text).strip()
            if self.href.startswith(("http://", "https://")) and self.href != text:
                self.chunks.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        collapsed = re.sub(r"\s+", " ", data)
        self.chunks.append(collapsed)
        if self.href is not None:
            self.link_text.append(collapsed)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.chunks).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
