"""Screenshots of the built site in headless Chromium, to look at the layout page by page.

Build the site first, then run this from the repository root::

    python -m sphinx -W -b html docs docs/_build/html
    python docs/screenshots.py                    # PNGs into docs/_build/screenshots/

It needs a Chromium or Chrome binary (Debian: ``apt-get install chromium``; another one with
``--browser``). It takes the home page, both estimators' API pages, every gallery page and the
pages with the widest tables, at a laptop width (1280 px) and a wide screen (1920 px), and
prints the files it wrote. Nothing is checked automatically: open the images and look.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "docs" / "_build" / "html"

# (page, a name for the file, the height to capture in px)
PAGES = [
    ("index.html", "home", 2200),
    ("generated/sklearn_gpt2.GPT2SequenceClassifier.html", "api-sequence", 1400),
    ("generated/sklearn_gpt2.GPT2PromptClassifier.html", "api-prompt", 1400),
    ("api.html", "api-overview", 1400),
    ("benchmarks.html", "benchmarks", 2000),
    ("benchmark_results.html", "table-benchmark-results", 2400),
    ("training_modes.html", "table-training-modes", 2600),
    ("choosing.html", "table-choosing", 2200),
    ("cli.html", "cli", 2000),
]
WIDTHS = [1280, 1920]


def gallery_pages() -> list[tuple[str, str, int]]:
    """Every page of the example gallery, index included."""
    folder = HTML / "auto_examples"
    return [
        (f"auto_examples/{page.name}", f"gallery-{page.stem}", 2400)
        for page in sorted(folder.glob("*.html"))
        if page.name != "sg_execution_times.html"
    ]


def shoot(browser: str, page: Path, out: Path, width: int, height: int) -> None:
    """Save a screenshot of ``page`` at ``width`` x ``height`` to ``out``."""
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    """Take the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chrome"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "screenshots")
    args = parser.parse_args(argv)
    if not args.browser:
        parser.error("no chromium found; apt-get install chromium, or pass --browser PATH")
    if not (HTML / "index.html").is_file():
        parser.error(f"{HTML} has no built site; run python -m sphinx -W -b html docs {HTML}")
    args.out.mkdir(parents=True, exist_ok=True)
    for page, name, height in [*PAGES, *gallery_pages()]:
        for width in WIDTHS:
            out = args.out / f"{name}-{width}.png"
            shoot(args.browser, HTML / page, out, width, height)
            print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
