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


# Cells up to this long are never wrapped ("12.5 ms", "102 %"): a number
# stays with its unit. Longer ones wrap at spaces.
_SHORT = 10


def _unbreakable(text):
    """The pieces of a cell that must stay on one line."""
    return [text] if len(text) <= _SHORT else (text.split() or [""])


def _plain(title, headers, cells, caption, left, file):
    widths = [max([len(h)] + [len(r[i][0]) for r in cells]) for i, h in enumerate(headers)]
    out = [title] if title else []
    line = "  ".join(h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    out += [line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c[0].ljust(w) if i < left else c[0].rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    if caption:
        out.append(caption)
    print("\n".join(out) + "\n", file=file)


def _table_width(widths):
    """Width of a rich SIMPLE_HEAD table without edges and with collapsed
    padding whose columns' contents are ``widths`` wide: two spaces between
    neighbours."""
    return sum(widths) + 2 * (len(widths) - 1)


def _fit(lo, hi, room):
    """Column widths between ``lo`` (longest word) and ``hi`` (longest text)
    that fit ``room``: the widest column gives up a character at a time, so
    cells wrap at spaces, never inside a number. None if even ``lo`` is too wide."""
    if _table_width(lo) > room:
        return None
    widths = list(hi)
    while _table_width(widths) > room:
        i = max((i for i in range(len(widths)) if widths[i] > lo[i]), key=lambda i: widths[i])
        widths[i] -= 1
    return widths


def _groups(lo, left, room):
    """Column indices of the tables a too-wide table is split into: the first
    ``left`` (key) columns in each, then as many of the others as fit. None
    when a key plus one other column does not fit."""
    keys = list(range(min(left, len(lo))))
    groups, current = [], list(keys)
    for i in range(len(keys), len(lo)):
        if _table_width([lo[j] for j in current + [i]]) <= room:
            current.append(i)
        elif len(current) > len(keys):
            groups.append(current)
            current = keys + [i]
            if _table_width([lo[j] for j in current]) > room:
                return None
        else:
            return None
    if len(current) > len(keys) or not groups:
        groups.append(current)
    return groups


def print_table(title, headers, rows, *, file=None, caption=None, left=1, markdown=False, console=None):
    """Prints a table. A cell is a str or ``(str, style)`` (a rich style, e.g.
    "red"); the first ``left`` columns are left-aligned, the others
    right-aligned; ``caption`` is printed under it.

    With rich, on a terminal narrower than the table, cells wrap at spaces
    (a time's spread goes to a second line); when even that does not fit,
    the table is split into tables that repeat the first ``left`` columns,
    and only a terminal too narrow for those gets the plain table. No
    number is ever cut. ``console``: a rich Console to print to (its width
    is used; ``file`` is then ignored)."""
    file = file or sys.stdout
    cells = [[c if isinstance(c, tuple) else (str(c), "") for c in r] for r in rows]
    if markdown:
        _markdown(title, headers, cells, caption, file)
        return
    try:
        from rich import box
        from rich.cells import cell_len
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        _plain(title, headers, cells, caption, left, file)
        return
    columns = [[h] + [r[i][0] for r in cells] for i, h in enumerate(headers)]
    hi = [max(cell_len(t) for t in col) for col in columns]
    lo = [max(cell_len(w) for t in col for w in _unbreakable(t)) for col in columns]
    if console is None:
        isatty = getattr(file, "isatty", lambda: False)()
        # Not a terminal (a pipe, a log): as wide as the table, nothing wraps.
        console = Console(file=file, highlight=False, width=None if isatty else max(100, _table_width(hi)))
    room = console.width
    groups = [list(range(len(headers)))] if _table_width(lo) <= room else _groups(lo, left, room)
    if groups is None:
        _plain(title, headers, cells, caption, left, console.file)
        return
    for n, group in enumerate(groups):
        widths = _fit([lo[i] for i in group], [hi[i] for i in group], room)
        part = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=(title or "") + part or None, caption=caption if n == len(groups) - 1 else None,
                      box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left", pad_edge=False,
                      show_edge=False, collapse_padding=True)
        for i, w in zip(group, widths):
            table.add_column(headers[i], justify="left" if i < left else "right", width=w, overflow="fold")
        for r in cells:
            table.add_row(*(Text(r[i][0], style=r[i][1]) for i in group))
        console.print(table)
        console.print()
