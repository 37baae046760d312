"""Exception hierarchy. Every error a user can cause derives from :class:`GendetectError`.

The CLI turns these into ``click.ClickException`` so users see one clear line, never a traceback.
"""

from __future__ import annotations


class GendetectError(Exception):
    """Base class of every error gendetect raises on purpose."""


class UnknownNameError(GendetectError, KeyError):
    """A registry was asked for a name it does not hold. The message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(GendetectError, ValueError, AttributeError):
    """A detector was used before ``fit`` (or ``load``).

    The bases of scikit-learn's ``NotFittedError`` (ValueError, AttributeError), not the class itself: importing
    scikit-learn here would load it (and scipy) for every command."""


class WeightsNotFoundError(GendetectError, FileNotFoundError):
    """Pretrained weights are missing; the message says how to get them."""


class DataSchemaError(GendetectError, ValueError):
    """A manifest, layout or record does not have the expected shape."""


class ImageLoadError(GendetectError):
    """One image could not be read or decoded. Scans record it per item and go on."""


class ModelFormatError(GendetectError, ValueError):
    """A saved model directory is missing files or has an unexpected config."""
