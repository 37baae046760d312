"""The ``gendetect`` command line: a thin click layer over the library.

Every command calls one library function; :class:`~gendetect.errors.GendetectError` becomes a one-line
``click.ClickException``. Results go to stdout (or ``-o FILE``); progress and summaries go to stderr.

One module per noun (:mod:`~gendetect.cli.scan`, :mod:`~gendetect.cli.explain`, :mod:`~gendetect.cli.data`,
:mod:`~gendetect.cli.train`, :mod:`~gendetect.cli.evaluate`, :mod:`~gendetect.cli.features`,
:mod:`~gendetect.cli.models`, :mod:`~gendetect.cli.listing`, :mod:`~gendetect.cli.serve`), the helpers they share in
:mod:`~gendetect.cli._common`, and every rich table in :mod:`~gendetect.cli.render`. Each command module imports
only click at the top; the library is imported inside the command, so ``gendetect --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gendetect")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
def main(verbose: int) -> None:
    """gendetect: tell real photographs from images made by generative models.

    \b
    gendetect scan photo.jpg                      one image, with the embedded default detector
    gendetect scan ~/Pictures -o results.parquet  a folder, recursively
    gendetect data index DIR -o manifest.parquet  index a labelled tree
    gendetect train --data DIR -o models/mine     train a detector
    gendetect evaluate --model models/mine --data DIR
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# the command modules register themselves on ``main`` when imported (`gendetect --help` lists them sorted)
from gendetect.cli import (
    data as data,
    evaluate as evaluate,
    explain as explain,
    features as features,
    listing as listing,
    models as models,
    scan as scan,
    serve as serve,
    train as train,
)

__all__ = ["main"]
