"""Bounded readers for the YAML and JSON files a user hands the package.

Every YAML input (config files, sweep files) and every user JSON input (``spatten verify --vectors``)
goes through this module. Beyond a plain ``yaml.safe_load``/``json.loads`` it refuses, each with a
one-line ``ValueError`` naming the file:

- a path that is missing, a folder, or not a regular file (a device or a pipe would block or never end);
- a file larger than ``max_bytes``;
- bytes that are not UTF-8 text (a binary, Latin-1 or UTF-16 file);
- nesting deeper than ``max_depth`` levels (YAML and JSON);
- YAML whose aliases expand the document beyond ``max_nodes`` nodes (a "billion laughs" bomb: a few
  lines whose anchors refer to each other and stand for millions of elements), or an alias inside its
  own anchor (a structure that contains itself).

The YAML budgets are counted while the document is composed, before any Python object is built, so a
bomb costs no more than its own text. ``yaml`` is imported lazily: ``models`` stays numpy-only at import
time.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "load_json",
    "load_yaml",
    "parse_json",
    "parse_yaml",
    "read_text",
]

#: Deepest nesting of lists and mappings accepted (a config needs three or four levels).
MAX_DEPTH = 64
#: Most YAML nodes a document may stand for once every alias is expanded.
MAX_NODES = 100_000
#: Largest input file accepted, in bytes.
MAX_BYTES = 64 * 1024 * 1024


def _label(what: str, name: str) -> str:
    return f"{what} {name!r}"


def read_text(path: str | os.PathLike, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """Read a UTF-8 text file with one-line errors.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        How messages name the file, e.g. ``"config file"`` gives ``config file 'a.yaml' ...``.
    max_bytes : int
        Largest size accepted.

    Returns
    -------
    str
        The text (a leading UTF-8 byte-order mark removed).

    Raises
    ------
    ValueError
        The file is missing, a folder, not a regular file, unreadable, too large or not UTF-8.
    """
    p = Path(path)
    where = _label(what, str(p))
    try:
        if not p.exists():
            raise ValueError(f"{where} does not exist")
        if p.is_dir():
            raise ValueError(f"{where} is a folder, not a file")
        if not p.is_file():
            raise ValueError(f"{where} is not a regular file")
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise ValueError(f"{where} cannot be read ({e.strerror or type(e).__name__})") from None
    if len(data) > max_bytes:
        raise ValueError(f"{where} is larger than the limit of {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where} is not UTF-8 text (byte {e.start})") from None
    return text.removeprefix("\ufeff")


class _Budget(Exception):
    """A YAML budget was exceeded (turned into a one-line ValueError by :func:`parse_yaml`)."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.mark = mark


@functools.cache
def _loader_class() -> type:
    """A ``yaml.SafeLoader`` that counts nesting depth and alias-expanded size while composing."""
    import yaml
    from yaml.events import AliasEvent, ScalarEvent

    class BudgetLoader(yaml.SafeLoader):
        max_depth = MAX_DEPTH
        max_nodes = MAX_NODES

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            # id(node) -> (nodes it stands for once expanded, the lists and mappings nested in it, itself
            # included); the nodes stay alive while loading, so their ids stay theirs.
            self._measure: dict[int, tuple[int, int]] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            alias = self.check_event(AliasEvent)
            level = 0 if alias or self.check_event(ScalarEvent) else 1  # lists and mappings nest
            mark = self.peek_event().start_mark
            self._depth += level
            if self._depth > self.max_depth:
                raise _Budget(f"nests deeper than the limit of {self.max_depth} levels", mark)
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= level
            if alias:
                measure = self._measure.get(id(node))
                if measure is None:  # the anchor is still open: the alias sits inside it
                    raise _Budget("has an alias inside its own anchor (a structure containing itself)", mark)
                if self._depth + measure[1] > self.max_depth:
                    raise _Budget(
                        f"nests deeper than the limit of {self.max_depth} levels once aliases are expanded",
                        mark,
                    )
                return node
            if isinstance(node.value, list):
                children = [c for item in node.value for c in (item if isinstance(item, tuple) else (item,))]
                size = 1 + sum(self._measure[id(c)][0] for c in children)
                height = 1 + max((self._measure[id(c)][1] for c in children), default=0)
            else:
                size, height = 1, 0
            if size > self.max_nodes:
                raise _Budget(
                    f"expands to more than the limit of {self.max_nodes} nodes once aliases are expanded",
                    mark,
                )
            self._measure[id(node)] = (size, height)
            return node

    return BudgetLoader


def parse_yaml(
    text: str, name: str, what: str = "file", max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> Any:
    """Parse one YAML document with the safe constructors and the depth and size budgets.

    Parameters
    ----------
    text : str
        The document.
    name : str
        The file it came from, for messages.
    what : str
        How messages name the file (``"config file"``, ``"sweep file"``).
    max_depth : int
        Deepest nesting accepted, aliases expanded.
    max_nodes : int
        Most nodes the document may stand for, aliases expanded.

    Returns
    -------
    Any
        What ``yaml.safe_load`` would return (``None`` for an empty document).

    Raises
    ------
    ValueError
        One line naming the file: not valid YAML, too deep, too large once expanded.
    """
    import yaml

    where = _label(what, name)
    loader = _loader_class()(text)
    loader.max_depth, loader.max_nodes = max_depth, max_nodes
    try:
        return loader.get_single_data()
    except _Budget as e:
        line = f" (line {e.mark.line + 1})" if e.mark is not None else ""
        raise ValueError(f"{where} {e}{line}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{where} is not valid YAML: {_first_line(e)}") from None
    except RecursionError:  # a budget above what the composer's recursion can reach
        raise ValueError(f"{where} nests too deeply to read") from None
    except (ValueError, OverflowError) as e:  # a scalar its constructor refuses, e.g. the date 2024-13-45
        raise ValueError(f"{where} has a value YAML cannot convert: {_first_line(e)[:80]}") from None
    finally:
        loader.dispose()


def load_yaml(
    path: str | os.PathLike, what: str = "file", max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> Any:
    """Read and parse a YAML file within the budgets (see :func:`read_text` and :func:`parse_yaml`).

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        How messages name the file.
    max_depth, max_nodes : int
        The budgets of :func:`parse_yaml`.

    Returns
    -------
    Any
        The parsed document.
    """
    return parse_yaml(read_text(path, what), str(path), what, max_depth, max_nodes)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            d += 1
            deepest = max(deepest, d)
            stack.extend((x, d) for x in v if isinstance(x, (list, dict)))
    return deepest


def parse_json(text: str, name: str, what: str = "file", max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text, refusing nesting deeper than ``max_depth`` and the non-finite ``NaN``/``Infinity``.

    Parameters
    ----------
    text : str
        The document.
    name : str
        The file it came from, for messages.
    what : str
        How messages name the file (``"--vectors"``).
    max_depth : int
        Deepest nesting of arrays and objects accepted.

    Returns
    -------
    Any
        The parsed value.

    Raises
    ------
    ValueError
        One line naming the file: invalid JSON (with line and column), too deep, a non-finite number.
    """
    where = _label(what, name)

    def no_constant(c: str) -> Any:
        raise ValueError(f"{where}: {c} is not allowed (finite numbers only)")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise ValueError(f"{where} nests deeper than the limit of {max_depth} levels") from None
    if _json_depth(value) > max_depth:
        raise ValueError(f"{where} nests deeper than the limit of {max_depth} levels")
    return value


def load_json(
    path: str | os.PathLike, what: str = "file", max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> Any:
    """Read and parse a JSON file within the budgets (see :func:`read_text` and :func:`parse_json`).

    JSON has no aliases, so its expanded size is its text: ``max_bytes`` bounds it.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        How messages name the file.
    max_depth : int
        Deepest nesting accepted.
    max_bytes : int
        Largest file accepted.

    Returns
    -------
    Any
        The parsed value.
    """
    return parse_json(read_text(path, what, max_bytes), str(path), what, max_depth)
