"""``python -m gendetect.cli``: the ``gendetect`` command."""

from gendetect.cli import main

main()
