"""Tables on the terminal: rich when installed, else aligned plain text, or
GitHub markdown. Used by ``fastloss list``/``check`` and the bench reports;
kept apart from the benchmark so those commands do not import it."""

from __future__ import annotations

import sys

__all__ = ["print_table"]


def _markdown(title, headers, cells, caption, file):
    out = [f"**{title}**", ""] if title else []
    esc = [[c[0].replace("|", "\\|") for c in r] for r in cells]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(r) + " |" for r in esc]
    if caption:
        out += ["", caption]
    print("\n".join(out) + "\n", file=file)


def print_table(title, headers, rows, *, file=None, caption=None, left=1, markdown=False):
    """Prints a table. A cell is a str or ``(str, style)`` (a rich style, e.g.
    "red"); the first ``left`` columns are left-aligned, the others
    right-aligned; ``caption`` is printed under it."""
    file = file or sys.stdout
    cells = [[c if isinstance(c, tuple) else (str(c), "") for c in r] for r in rows]
    if markdown:
        _markdown(title, headers, cells, caption, file)
        return
    widths = [max([len(h)] + [len(r[i][0]) for r in cells]) for i, h in enumerate(headers)]
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        out = [title] if title else []
        line = "  ".join(h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
        out += [line, "-" * len(line)]
        for r in cells:
            out.append("  ".join(c[0].ljust(w) if i < left else c[0].rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))))
        if caption:
            out.append(caption)
        print("\n".join(out) + "\n", file=file)
        return
    natural = sum(widths) + 3 * len(widths) + 4
    isatty = getattr(file, "isatty", lambda: False)()
    console = Console(file=file, highlight=False, width=None if isatty else max(100, natural))
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, title_justify="left",
                  caption_justify="left", pad_edge=False)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i < left else "right", no_wrap=True)
    for r in cells:
        table.add_row(*(Text(text, style=style) for text, style in r))
    console.print(table)
