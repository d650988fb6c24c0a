#!/usr/bin/env python3
"""Check the relative links and anchors of the repository's Markdown documentation.

Usage, from anywhere in the repository:

    python3 scripts/check_docs.py            # README.md, CHANGELOG.md, SECURITY.md and every docs/**/*.md
    python3 scripts/check_docs.py FILE.md…   # only these files

Every relative Markdown link, inline `[text](target)` or `![alt](target)` and reference
definitions `[label]: target`, must resolve:

- the target file (or folder) must exist, relative to the page that links to it;
- an anchor, on the same page (`#anchor`) or on another Markdown page (`page.md#anchor`), must
  match a heading of the target page under GitHub's slug rules (lower case; every character
  other than a letter, a digit, a space, a hyphen or an underscore removed; spaces to hyphens;
  the second heading with the same slug gets `-1`, the third `-2`, …), or an explicit
  `<a id="…">` / `<a name="…">` anchor on that page.

Links to `http://`, `https://` and `mailto:` are not checked, nor links inside fenced code blocks,
inline code or HTML comments; headings inside fenced code blocks are not headings.

Each broken link is printed as `file:line: target (reason)` and the exit status is 1; otherwise
one summary line is printed and the exit status is 0. Python 3 standard library only.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
EXPLICIT_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# An inline link or image: [text](target "optional title"); the text may hold one level of [ ].
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]\\]|\\.|\[[^\[\]]*\])*\]"  # [text]
    r"\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # (target
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"  # optional "title")
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # http:, https:, mailto:, any scheme


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading's text (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    kept = "".join(c for c in text if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def strip_inline_code(line: str) -> str:
    """The line with every inline code span blanked out (same length, so columns still match)."""
    out = []
    i = 0
    while i < len(line):
        if line[i] == "`":
            j = i
            while j < len(line) and line[j] == "`":
                j += 1
            ticks = line[i:j]
            end = line.find(ticks, j)
            # A closing run must be exactly as long as the opening one.
            while end != -1 and end + len(ticks) < len(line) and line[end + len(ticks)] == "`":
                end = line.find(ticks, end + len(ticks) + 1)
            if end == -1:
                out.append(line[i:j])
                i = j
                continue
            out.append(" " * (end + len(ticks) - i))
            i = end + len(ticks)
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


class Page:
    """A Markdown file: its lines outside fenced code, its anchors."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: list[tuple[int, str]] = []  # (line number, text) outside fenced code blocks
        self.anchors: set[str] = set()
        self._read()

    def _read(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        # HTML comments, blanked out but keeping their newlines so line numbers stay right.
        text = re.sub(r"<!--.*?-->", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
        fence: str | None = None
        counts: dict[str, int] = {}
        previous: str | None = None  # the previous line, if it could be a setext heading's text

        def add_heading(title: str) -> None:
            slug = github_slug(title)
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            self.anchors.add(slug if n == 0 else f"{slug}-{n}")

        for number, line in enumerate(text.split("\n"), start=1):
            m = FENCE.match(line)
            if fence is not None:
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                    fence = None
                continue
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = m.group(1)
                previous = None
                continue
            self.lines.append((number, line))
            for anchor in EXPLICIT_ANCHOR.findall(line):
                self.anchors.add(anchor)
            heading = ATX_HEADING.match(line)
            if heading:
                add_heading(heading.group(2) or "")
                previous = None
                continue
            if previous is not None and SETEXT_UNDERLINE.match(line):
                add_heading(previous)
                previous = None
                continue
            stripped = line.strip()
            setext_text = stripped and not line.startswith(("    ", "\t")) and not re.match(r"^(?:[-*+>|]|\d+[.)])", stripped)
            previous = stripped if setext_text else None

    def links(self):
        """(line number, target) of every link outside code."""
        for number, line in self.lines:
            code_free = strip_inline_code(line)
            for m in INLINE_LINK.finditer(code_free):
                yield number, m.group(1)
            m = REFERENCE_DEFINITION.match(code_free)
            if m:
                yield number, m.group(1)


def check(files: list[Path]) -> int:
    pages: dict[Path, Page] = {}

    def page(path: Path) -> Page:
        path = path.resolve()
        if path not in pages:
            pages[path] = Page(path)
        return pages[path]

    broken = 0
    checked = 0
    for file in files:
        source = page(file)
        for number, raw in source.links():
            target = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
            if not target or EXTERNAL.match(target):
                continue
            checked += 1
            path_part, _, anchor = target.partition("#")
            path_part = unquote(path_part)
            anchor = unquote(anchor)
            where = f"{os.path.relpath(file, Path.cwd())}:{number}: {raw}"
            if path_part:
                resolved = (file.parent / path_part).resolve()
                if not resolved.exists():
                    print(f"{where} (no such file: {os.path.relpath(resolved, Path.cwd())})")
                    broken += 1
                    continue
            else:
                resolved = file.resolve()
            if not anchor:
                continue
            if resolved.is_dir():
                index = resolved / "README.md"
                if not index.is_file():
                    print(f"{where} (an anchor on a folder without README.md)")
                    broken += 1
                    continue
                resolved = index
            if resolved.suffix.lower() not in (".md", ".markdown"):
                print(f"{where} (an anchor on a file that is not Markdown)")
                broken += 1
                continue
            if anchor not in page(resolved).anchors:
                print(f"{where} (no heading or anchor #{anchor} in {os.path.relpath(resolved, Path.cwd())})")
                broken += 1
    if broken:
        return 1
    print(f"check_docs: {len(files)} files, {checked} relative links, all resolve")
    return 0


def main(argv: list[str]) -> int:
    if argv:
        files = [Path(a).resolve() for a in argv]
    else:
        files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "SECURITY.md")]
        files += sorted((ROOT / "docs").rglob("*.md"))
    missing = [f for f in files if not f.is_file()]
    for f in missing:
        print(f"check_docs: no such file: {f}", file=sys.stderr)
    if missing:
        return 2
    return check(files)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
