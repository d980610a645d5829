"""What a command's process imports: the crawl's main process stays small.

`sleuth images crawl` runs the fetch, md5 and store stages in its own process and the image
kernel in a CPU pool; numpy, Pillow's decoders, scipy, Flask and the emulator belong in the pool,
the web server or the emulator's own commands, and each costs the crawl's process tens of MB
(bench/RESULTS.md, images: memory over a long list)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "scipy", "flask", "sleuth.emulator", "sleuth.imaging.process", "sleuth.index")

PROBE = """
import json, sys
import click
from sleuth.cli.main import cli
ctx = click.Context(cli)
images = cli.get_command(ctx, "images")
crawl = images.get_command(ctx, "crawl")
from sleuth.apps.images.pipeline import ImagesPipeline
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_the_images_crawl_process_imports_no_kernel_web_or_emulator() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []
