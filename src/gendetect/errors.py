"""Exception hierarchy. Every error a user can cause derives from :class:`GendetectError`.

The CLI turns these into ``click.ClickException`` so users see one clear line, never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


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


class MissingDependencyError(GendetectError, ImportError):
    """An optional dependency is not installed. The message names the package, the pip extra and what needs it.

    Also an ``ImportError``, so code that treats a missing package as the whole run's problem still catches it."""


# pip names that differ from the import name (the rest are the top-level module name)
_PIP_NAMES = {
    "PIL": "pillow",
    "open_clip": "open_clip_torch",
    "pillow_heif": "pillow-heif",
    "glide_text2im": "glide-text2im",
    "fastapi_offline": "fastapi-offline",
    "huggingface_hub": "huggingface_hub",
}


def require(module: str, extra: str | None, purpose: str, *, install: str | None = None) -> ModuleType:
    """Import the optional ``module`` and return it, or raise :class:`MissingDependencyError` with the fix.

    Args:
        module: the dotted import name, e.g. ``"torch"`` or ``"ray.data"``.
        extra: the gendetect extra that installs it (``pip install 'gendetect[extra]'``); ``None`` when no extra
            does and ``install`` says how instead.
        purpose: what needs it, as the subject of a sentence, e.g. ``"the ray engine"``.
        install: the install command when it is not an extra (a package that is not on PyPI).

    Example:
        >>> require("json", "core", "reading configs").__name__
        'json'
        >>> try:
        ...     require("no_such_module", "clip", "the hf-clip extractor")
        ... except MissingDependencyError as e:
        ...     print(e)  # doctest: +ELLIPSIS
        The hf-clip extractor needs no_such_module, which could not be imported (...): pip install 'gendetect[clip]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        package = _PIP_NAMES.get(top, top)
        fix = install or f"pip install 'gendetect[{extra}]'"
        raise MissingDependencyError(
            f"{purpose[:1].upper()}{purpose[1:]} needs {package}, which could not be imported ({e}): {fix}"
        ) from e
