"""What every command shares: the consoles, the error mapping, progress bars and option parsing.

Results go to stdout (or ``-o FILE``) through :func:`stdout_console`; progress, summaries and warnings go to stderr
through :data:`err_console`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from gendetect.errors import GendetectError

T = TypeVar("T")
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv", "tsv", "parquet")  # gendetect.output.FORMATS (imported lazily)

err_console = Console(stderr=True, soft_wrap=True)


def stdout_console() -> Console:
    """Rich console for results: wide enough not to truncate tables when stdout is a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(file=sys.stdout, width=160)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`~gendetect.errors.GendetectError` into a one-line ``click.ClickException``."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GendetectError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def progress_bar(enabled: bool, description: str) -> Callable[[Iterable[T], int], Iterator[T]] | None:
    """A ``progress(iterable, total)`` wrapper drawing a rich bar on stderr, or None when disabled."""
    if not enabled or not err_console.is_terminal:
        return None

    def track(it: Iterable[T], total: int) -> Iterator[T]:
        from rich.progress import track as rich_track

        yield from rich_track(it, total=total, description=description, console=err_console, transient=True)

    return track


@contextmanager
def shard_progress(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich bar of finished shards on stderr (None when disabled)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task_id = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task_id, completed=done, total=total)


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``("C=0.1", "k=5", "metric=cosine")`` -> ``{"C": 0.1, "k": 5, "metric": "cosine"}`` (values parsed as JSON)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def markup_safe(value: Any) -> str:
    """``value`` as text that rich prints literally: markup escaped, undecodable file-name bytes as \\xNN."""
    from rich.markup import escape

    from gendetect.output import json_safe

    return escape(str(json_safe(value)))


def print_audit_warnings(audit: dict[str, Any] | None, prefix: str) -> None:
    """Every warning of a shortcut audit (file facts and pixel checks), on stderr."""
    from gendetect.evaluation.audit import audit_warnings

    for message in audit_warnings(audit):
        err_console.print(f"[bold red]{prefix}: {message}[/bold red]", highlight=False)


def check_params(kind: str, name: str, params: dict[str, Any], flag: str) -> None:
    """Refuse, before any work, a hyper-parameter the component does not take (listing those it does) or a value
    of the wrong type for its default (``C=abc`` where ``C`` defaults to a number)."""
    import inspect

    if not params:
        return
    if kind == "detector":
        from gendetect.detectors import DETECTORS as registry
    else:
        from gendetect.features import EXTRACTORS as registry
    cls = registry.get(name)  # an unknown name lists the valid ones
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return
    accepted = {
        n: p for n, p in sig.parameters.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    open_ended = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for key, value in params.items():
        if key not in accepted:
            if open_ended:
                continue
            raise click.BadParameter(
                f"{kind} {name!r} has no parameter {key!r}; valid: {', '.join(sorted(accepted)) or '(none)'}",
                param_hint=flag,
            )
        default = accepted[key].default
        if default is inspect.Parameter.empty or default is None or value is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and (isinstance(default, float) or isinstance(value, int))
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            raise click.BadParameter(
                f"{kind} {name!r}: {key}={value!r} is not a {type(default).__name__} (default {key}={default!r})",
                param_hint=flag,
            )


def extractor_spec(text: str) -> dict[str, Any]:
    """``"NAME"`` or ``'NAME {json params}'`` -> ``{"name": NAME, "params": {...}}``."""
    name, _, params = text.strip().partition(" ")
    try:
        return {"name": name, "params": json.loads(params) if params.strip() else {}}
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"{text!r}: parameters must be a JSON object ({e})") from e


def open_store(store_dir: Path | None, extractor: Any) -> Any:
    """The feature store in ``store_dir`` for ``extractor``, or None without a folder."""
    if store_dir is None:
        return None
    from gendetect.features.store import FeatureStore

    return FeatureStore(store_dir, extractor)


# -- run configs (gendetect.runs) --------------------------------------------------------------------------------
def config_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE`` and ``--set KEY=VALUE`` for a command whose run is the config class named ``what``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Set one field of the config (dotted for nested ones, e.g. recipe.detector.params.C=0.1; values "
            "are JSON, else text); repeatable. Options given here win over --config and --set.",
        )(fn)
        return click.option(
            "--config",
            "config_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"Run config file: JSON (or YAML with pyyaml) of {what} fields (gendetect.runs); options given "
            "here override it.",
        )(fn)

    return decorate


def explicit(ctx: click.Context, name: str) -> bool:
    """Whether the option ``name`` was given (command line or environment), not left at its default."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def given(ctx: click.Context, **fields: str) -> dict[str, Any]:
    """``{field: value}`` of the options given on the command line, for ``fields`` ``{field: option name}``; paths
    become text (run configs are JSON-able)."""
    out = {}
    for field_name, param in fields.items():
        if explicit(ctx, param):
            value = ctx.params[param]
            out[field_name] = str(value) if isinstance(value, Path) else value
    return out
