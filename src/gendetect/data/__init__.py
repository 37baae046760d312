"""Image records, manifests and dataset layout readers."""
