"""HTTP service and web page (``gendetect serve``); needs the ``serve`` extra."""
