"""Icarus Verilog without root: Debian's iverilog 11.0 package unpacked into the virtual environment.

cocotb's second simulator. PyPI has no iverilog wheel, so ``python -m spatten.testbench.icarus`` (run by
``make install``) downloads the Debian 12 amd64 package from deb.debian.org, checks its SHA-256 and
unpacks it under ``<venv>/opt/iverilog`` with no ``dpkg`` and no root. Its binaries find their helper
programs and VPI modules relative to themselves (``<prefix>/x86_64-linux-gnu/ivl``), so one symlink makes
the tree relocatable. An ``iverilog`` already on PATH is used as it is.

The Verilog Amaranth writes must be compiled as Verilog-2005 (``-g2005``): as SystemVerilog (``-g2012``,
cocotb's default for Icarus) the ``initial`` trigger Amaranth emits to settle combinational ``always``
blocks at time 0 does not fire, so outputs such as the top-k engine's ``i__ready`` stay X after reset.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["DEB_URL", "DEB_SHA256", "install_dir", "find_icarus", "icarus_env", "fetch_icarus"]

DEB_URL = "http://deb.debian.org/debian/pool/main/i/iverilog/iverilog_11.0-1.1+b1_amd64.deb"
"""Debian 12 (bookworm) iverilog 11.0, the version the issue tracker's Icarus checks were made with."""
DEB_SHA256 = "14d9d14dc8256fd89667fb68c3bd93f1c57310b9c95b33fb0d4b7719c887ae2f"
COMPILE_FLAG = "-g2005"
"""Language generation for Amaranth's Verilog (see the module docstring for why not -g2012)."""


def install_dir() -> Path:
    """Where the unpacked package lives: ``<sys.prefix>/opt/iverilog`` (the project's ``.venv``)."""
    return Path(sys.prefix) / "opt" / "iverilog"


def _bin_dir() -> Path:
    return install_dir() / "usr" / "bin"


def find_icarus() -> Path | None:
    """The folder holding ``iverilog`` and ``vvp``: PATH first, then the unpacked package; None if neither."""
    found = shutil.which("iverilog")
    if found and shutil.which("vvp"):
        return Path(found).parent
    local = _bin_dir()
    if (local / "iverilog").exists() and (local / "vvp").exists():
        return local
    return None


def icarus_env() -> Path:
    """Put Icarus on this process's PATH (children inherit it) and return its bin folder.

    Raises
    ------
    RuntimeError
        One line naming the command that installs it, when it is on neither PATH nor in the venv.
    """
    where = find_icarus()
    if where is None:
        raise RuntimeError(
            "Icarus Verilog not found: run `python -m spatten.testbench.icarus` (unpacks Debian's iverilog"
            " 11.0 into the venv, x86_64 Linux) or install iverilog >= 11"
        )
    path = os.environ.get("PATH", "")
    if str(where) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{where}{os.pathsep}{path}"
    return where


def _ar_members(blob: bytes) -> dict[str, bytes]:
    """The members of a Unix ``ar`` archive (a ``.deb`` is one): name -> bytes."""
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, pos = {}, 8
    while pos + 60 <= len(blob):
        head = blob[pos : pos + 60]
        name = head[:16].decode().strip().rstrip("/")
        size = int(head[48:58].decode().strip())
        out[name] = blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are 2-byte aligned
    return out


def fetch_icarus(dest: Path | None = None, url: str = DEB_URL, sha256: str = DEB_SHA256) -> Path:
    """Download, check and unpack the package into ``dest`` (default :func:`install_dir`); return its bin.

    The tree is unpacked in a temporary sibling and moved into place whole, so an interrupted fetch
    leaves nothing half-written.
    """
    dest = install_dir() if dest is None else Path(dest)
    if (dest / "usr" / "bin" / "vvp").exists():
        return dest / "usr" / "bin"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        here = f"{platform.system()} {platform.machine()}"
        raise RuntimeError(f"the packaged iverilog is for x86_64 Linux, not {here}")
    with urllib.request.urlopen(url, timeout=60) as resp:
        blob = resp.read()
    got = hashlib.sha256(blob).hexdigest()
    if got != sha256:
        raise RuntimeError(f"{url}: SHA-256 {got}, expected {sha256}")
    members = _ar_members(blob)
    data = next((v for k, v in members.items() if k.startswith("data.tar")), None)
    if data is None:
        raise RuntimeError(f"{url}: no data.tar member")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".iverilog-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="tar")
        # the binaries look for <prefix>/x86_64-linux-gnu/ivl; Debian installs it under <prefix>/lib
        (tmp / "usr" / "x86_64-linux-gnu").symlink_to(Path("lib") / "x86_64-linux-gnu")
        probe = subprocess.run([str(tmp / "usr" / "bin" / "iverilog"), "-V"], capture_output=True, text=True)
        if "Icarus Verilog version 11" not in probe.stdout + probe.stderr:
            why = (probe.stderr or probe.stdout).strip()
            raise RuntimeError(f"the unpacked iverilog does not run here: {why}")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / "usr" / "bin"


def main() -> int:
    """``python -m spatten.testbench.icarus``: make Icarus available, print where it is."""
    where = find_icarus()
    try:
        where = where or fetch_icarus()
    except (OSError, RuntimeError, ValueError) as e:
        print(f"error: Icarus Verilog not installed: {e}", file=sys.stderr)
        return 2
    ver = subprocess.run([str(where / "iverilog"), "-V"], capture_output=True, text=True).stdout.splitlines()
    print(f"icarus: {where} ({ver[0] if ver else 'version unknown'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
