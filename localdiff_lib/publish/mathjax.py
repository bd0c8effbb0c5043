"""Offline MathJax: a copy of MathJax 3 in ``_build/offline_static`` that the built book serves itself.

``python -m localdiff_lib.publish mathjax`` fetches it (``npm pack``, integrity-checked by npm); the Sphinx extension
(:mod:`localdiff_lib.publish.sphinx_ext`) then points the book at it, so math renders without any network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .chapters import ROOT

MATHJAX_VERSION = "3.2.2"
OFFLINE_STATIC = ROOT / "_build" / "offline_static"  # added to html_static_path when present
MATHJAX_PATH = "mathjax/es5/tex-mml-chtml.js"        # relative to the build's _static/
REQUIRE_MATHJAX_ENV = "LOCALDIFF_REQUIRE_LOCAL_MATHJAX"


def local_mathjax() -> Path | None:
    """The MathJax entry script inside ``_build/offline_static`` if it has been fetched, else ``None``."""
    script = OFFLINE_STATIC / MATHJAX_PATH
    return script if script.is_file() else None


def _keep_mathjax_file(name: str) -> bool:
    """The es5 build for TeX input and CHTML output (with its fonts, extensions, menu and accessibility parts);
    the other all-in-one bundles, the SVG output and the Node entry point are left out (24 MB -> 8.5 MB)."""
    if name == "package/LICENSE":
        return True
    if not name.startswith("package/es5/"):
        return False
    rest = name[len("package/es5/"):]
    if "/" not in rest and re.fullmatch(r"(tex|mml)-.*\.js|node-main\.js", rest):
        return rest == "tex-mml-chtml.js"
    return not rest.startswith("output/svg")


def fetch_mathjax(version: str = MATHJAX_VERSION) -> Path:
    """Fetch MathJax ``version`` with ``npm pack`` (integrity-checked by npm) and unpack its ``es5/`` build.

    The copy lives in ``_build/offline_static/mathjax`` (never committed); the Sphinx extension of this
    module then serves it from the built book, so math renders without any network.
    """
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed: install Node.js (Debian: apt-get install npm) to fetch MathJax")
    dest = OFFLINE_STATIC / "mathjax"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"mathjax@{version}", "--pack-destination", tmp, "--silent"],
                       check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("mathjax-*.tgz")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers() if _keep_mathjax_file(m.name)]
            tf.extractall(unpacked, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked / "package"), dest)
    script = local_mathjax()
    if script is None:
        raise RuntimeError(f"mathjax@{version} has no es5/tex-mml-chtml.js; use a MathJax 3 release")
    return script
