"""The weights resolver: one place that turns a name into a local weights file, or says exactly what is missing.

A weights *spec* is one of

* a local file (``/models/clip.safetensors``) or directory;
* ``hf-hub:ORG/REPO[@REVISION]`` with a ``filename`` inside the repository;
* a bare ``ORG/REPO`` is read as ``hf-hub:ORG/REPO``.

Resolution order: the local path, then the caches (``GENDETECT_CACHE``, then the usual Hugging Face cache), then the
hub. Offline mode (``HF_HUB_OFFLINE=1`` or ``offline=True``) never touches the network and fails at once. A miss
raises :class:`~gendetect.errors.WeightsNotFoundError` naming the weights, the command that fetches them on a machine
with a network, and where to put them. :func:`resolve_hub_files` looks up several files of one repository (a
checkpoint's config, weights and preprocessing) and names every missing one in one error, with one command that
fetches them all; :func:`resolve_all`, which the model zoo uses too, gathers the misses of any set of files into one
error. Nothing ever falls back to random weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gendetect.atomic import atomic_path
from gendetect.errors import WeightsNotFoundError

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"


def cache_dir(cache: str | os.PathLike | None = None) -> Path | None:
    """The gendetect weights cache: ``cache``, else ``$GENDETECT_CACHE``, else None (the Hugging Face cache)."""
    value = cache or os.environ.get("GENDETECT_CACHE")
    return Path(value).expanduser() if value else None


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """The gendetect cache folder: ``cache``, else ``$GENDETECT_CACHE``, else ``~/.cache/gendetect``. The one reader
    of the variable for everything gendetect keeps there (features, checkpoints, the server's results, raw URLs)."""
    return cache_dir(cache) or Path("~/.cache/gendetect").expanduser()


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubSpec:
    repo_id: str
    revision: str | None = None

    @classmethod
    def parse(cls, spec: str) -> HubSpec:
        body = spec[len(HUB_PREFIX) :] if spec.startswith(HUB_PREFIX) else spec
        repo, _, revision = body.partition("@")
        return cls(repo, revision or None)


def looks_like_hub_id(spec: str) -> bool:
    if spec.startswith(HUB_PREFIX):
        return True
    return spec.count("/") == 1 and not Path(spec).exists() and not spec.startswith((".", "/", "~"))


def resolve_weights(
    spec: str | os.PathLike,
    *,
    filename: str | None = None,
    revision: str | None = None,
    cache: str | os.PathLike | None = None,
    offline: bool | None = None,
    what: str = "weights",
) -> Path:
    """Local path of the weights named by ``spec`` (see the module docstring).

    Args:
        filename: the file inside a hub repository or a local directory (e.g. ``open_clip_model.safetensors``).
        revision: hub revision (commit, tag or branch); ``@REV`` in the spec wins.
        cache: cache directory (default ``$GENDETECT_CACHE``, then the Hugging Face cache).
        offline: never use the network (default: ``HF_HUB_OFFLINE``).
        what: a human name for the weights, used in error messages ("CLIP ViT-L-14 weights").
    """
    spec_str = os.fspath(spec)
    local = Path(spec_str).expanduser()
    if local.exists():
        if local.is_dir():
            if filename and (local / filename).is_file():
                return local / filename
            if not filename:
                return local
            raise WeightsNotFoundError(f"{what}: {local} has no {filename}.")
        return local
    if not looks_like_hub_id(spec_str):
        raise WeightsNotFoundError(
            f"{what}: {spec_str!r} is neither an existing file or folder nor a hub id (hf-hub:ORG/REPO[@REV])."
        )
    hub = HubSpec.parse(spec_str)
    rev = hub.revision or revision
    where = cache_dir(cache)
    help_text = _fetch_help(hub.repo_id, [filename] if filename else [], rev, where)
    if where is not None:
        candidate = where / hub.repo_id.replace("/", "--")
        if filename and (candidate / filename).is_file():
            return candidate / filename
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError as e:
        raise WeightsNotFoundError(
            f"{what} ({hub.repo_id}) are not cached and huggingface_hub is not installed: "
            "pip install 'gendetect[clip]'. " + help_text
        ) from e
    if not filename:
        raise WeightsNotFoundError(f"{what}: a hub spec needs a filename inside {hub.repo_id}.")
    if is_offline(offline):  # a pure cache lookup: no client, no retries, no socket
        found = try_to_load_from_cache(hub.repo_id, filename, cache_dir=str(where) if where else None, revision=rev)
        if isinstance(found, str):
            return Path(found)
        raise WeightsNotFoundError(
            f"{what} not found: {hub.repo_id}/{filename}"
            + (f"@{rev}" if rev else "")
            + ": offline mode (HF_HUB_OFFLINE=1) and they are not in the cache.\n"
            + help_text
        )
    try:
        path = hf_hub_download(
            hub.repo_id, filename, revision=rev, cache_dir=str(where) if where else None, etag_timeout=10
        )
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one actionable error
        raise WeightsNotFoundError(
            f"{what} not found: {hub.repo_id}/{filename}" + (f"@{rev}" if rev else "") + f": {e}.\n{help_text}"
        ) from e
    return Path(path)


def _fetch_help(repo_id: str, filenames: Sequence[str], revision: str | None, where: Path | None) -> str:
    """How to get ``filenames`` of ``repo_id`` (none: the whole repository) onto this machine: the ``hf download``
    command, into ``where`` (the gendetect cache, named ``ORG--REPO``) or the Hugging Face cache, and what to do
    with the result."""
    flat = repo_id.replace("/", "--")
    fetch = " ".join(["hf download", repo_id, *filenames] + ([f"--revision {revision}"] if revision else []))
    it = "them" if len(filenames) > 1 else "it"
    if where is not None:
        fetch += f" --local-dir {where / flat}"
        then = f"then copy the folder {flat}/ into {where} (GENDETECT_CACHE) on this machine"
    else:
        fetch += f" --local-dir {flat}"
        then = (
            f"then copy the folder {flat}/ here and pass its path, or set GENDETECT_CACHE to the folder that holds it"
        )
    return (
        "On a machine with a network run (huggingface_hub's CLI; `huggingface-cli download` on old versions):\n"
        f"    {fetch}\n{then}; or unset HF_HUB_OFFLINE to download {it} now."
    )


def resolve_all(
    resolvers: Mapping[str, Callable[[], Path]],
    *,
    what: str,
    describe: Callable[[str, WeightsNotFoundError], str],
    fix: Callable[[list[str]], str],
    total: int | None = None,
) -> dict[str, Path]:
    """Every file's local path by key, or one error that names every missing file, not only the first.

    Args:
        resolvers: key (a role, a file name) -> a function that returns the file's local path or raises
            :class:`~gendetect.errors.WeightsNotFoundError` (:func:`resolve_weights`, :func:`resolve_url`...).
        what: who needs the files, to start the message ("Published detector 'univfd'").
        describe: the message's line for one miss, from its key and its error.
        fix: the message's last lines, from the missing keys: how to fetch them all at once.
        total: files in all, for "N of TOTAL files missing" (default: ``len(resolvers)``).

    Raises:
        WeightsNotFoundError: some file is missing: "WHAT needs weights that are not on this machine (N of TOTAL
            files missing):", one ``describe`` line per miss, then ``fix``.
    """
    paths: dict[str, Path] = {}
    missing: dict[str, WeightsNotFoundError] = {}
    for key, resolve in resolvers.items():
        try:
            paths[key] = resolve()
        except WeightsNotFoundError as e:
            missing[key] = e
    if missing:
        raise WeightsNotFoundError(
            f"{what} needs weights that are not on this machine "
            f"({len(missing)} of {len(resolvers) if total is None else total} files missing):\n"
            + "\n".join(f"- {describe(key, e)}" for key, e in missing.items())
            + f"\n{fix(list(missing))}"
        )
    return paths


def resolve_hub_files(
    spec: str | os.PathLike,
    filenames: Sequence[str],
    *,
    revision: str | None = None,
    cache: str | os.PathLike | None = None,
    offline: bool | None = None,
    what: str = "weights",
) -> dict[str, Path]:
    """The local path of each of ``filenames`` of one repository, by file name (a checkpoint's config, weights
    and preprocessing files).

    ``spec`` and the resolution order are those of :func:`resolve_weights`. Every file is looked up before
    anything fails, so a miss raises one :class:`~gendetect.errors.WeightsNotFoundError` naming every missing file
    (and why) and one ``hf download`` command that fetches them all.
    """
    spec_str = os.fspath(spec)
    local = Path(spec_str).expanduser()
    if local.is_file() or (not local.exists() and not looks_like_hub_id(spec_str)):
        raise WeightsNotFoundError(
            f"{what}: {spec_str!r} is neither an existing folder nor a hub id (hf-hub:ORG/REPO[@REV]); expected "
            f"one that holds {', '.join(filenames)}."
        )

    def one(filename: str) -> Callable[[], Path]:
        return lambda: resolve_weights(
            spec_str, filename=filename, revision=revision, cache=cache, offline=offline, what=filename
        )

    def fix(missing: list[str]) -> str:
        if local.is_dir():
            return f"Copy them into {local}, or pass a folder that holds them all."
        hub = HubSpec.parse(spec_str)
        return _fetch_help(hub.repo_id, missing, hub.revision or revision, cache_dir(cache))

    return resolve_all(
        {f: one(f) for f in filenames},
        what=what,
        describe=lambda _, e: str(e).splitlines()[0],  # the first line says why; the rest is one file's command
        fix=fix,
    )


def resolve_snapshot(
    spec: str | os.PathLike,
    *,
    revision: str | None = None,
    cache: str | os.PathLike | None = None,
    offline: bool | None = None,
    allow_patterns: list[str] | None = None,
    what: str = "model",
) -> Path:
    """Local folder holding a whole repository (a diffusers pipeline or model: ``model_index.json``, ``unet/``...).

    ``spec`` is a local folder, or ``hf-hub:ORG/REPO[@REV]`` / ``ORG/REPO``. Resolution order as for
    :func:`resolve_weights`: the folder itself, ``$GENDETECT_CACHE/ORG--REPO/``, the Hugging Face cache, then the hub
    (never in offline mode). ``allow_patterns`` limits what is downloaded (e.g. ``["unet/*", "scheduler/*"]``).
    A miss raises :class:`~gendetect.errors.WeightsNotFoundError` with the command that fetches the folder.
    """
    spec_str = os.fspath(spec)
    local = Path(spec_str).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise WeightsNotFoundError(f"{what}: {local} is a file; expected a folder (a diffusers repository).")
    if not looks_like_hub_id(spec_str):
        raise WeightsNotFoundError(
            f"{what}: {spec_str!r} is neither an existing folder nor a hub id (hf-hub:ORG/REPO[@REV])."
        )
    hub = HubSpec.parse(spec_str)
    rev = hub.revision or revision
    where = cache_dir(cache)
    flat = hub.repo_id.replace("/", "--")
    patterns = " ".join(f"--include '{p}'" for p in allow_patterns or [])
    fetch = f"hf download {hub.repo_id}" + (f" --revision {rev}" if rev else "") + (f" {patterns}" if patterns else "")
    help_text = (
        "On a machine with a network run (huggingface_hub's CLI):\n"
        f"    {fetch} --local-dir {(where / flat) if where else 'DIR'}\n"
        f"then pass that folder, or set GENDETECT_CACHE to the folder that holds {flat}/, "
        "or unset HF_HUB_OFFLINE to download it now."
    )
    if where is not None and (where / flat).is_dir():
        return where / flat
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise WeightsNotFoundError(
            f"{what} ({hub.repo_id}) is not cached and huggingface_hub is not installed: "
            "pip install 'gendetect[diffusion]'. " + help_text
        ) from e
    kwargs = {"revision": rev, "cache_dir": str(where) if where else None, "allow_patterns": allow_patterns}
    if is_offline(offline):  # a pure cache lookup: snapshot_download with local_files_only opens no socket
        try:
            return Path(snapshot_download(hub.repo_id, local_files_only=True, **kwargs))
        except Exception as e:  # noqa: BLE001 - any cache miss becomes one actionable error
            raise WeightsNotFoundError(
                f"{what} not found: {hub.repo_id}"
                + (f"@{rev}" if rev else "")
                + ": offline mode (HF_HUB_OFFLINE=1) and it is not in the cache.\n"
                + help_text
            ) from e
    try:
        return Path(snapshot_download(hub.repo_id, etag_timeout=10, **kwargs))
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one actionable error
        raise WeightsNotFoundError(
            f"{what} not found: {hub.repo_id}" + (f"@{rev}" if rev else "") + f": {e}.\n{help_text}"
        ) from e


# -- raw URLs (GitHub, Dropbox...) with a sha256 -----------------------------------------------------------------
URL_CACHE = "url"  # sub-folder of the gendetect cache that holds files fetched from raw URLs


def url_cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Where files fetched from raw URLs live: ``<cache>/url/`` (cache: ``cache``, ``$GENDETECT_CACHE``, else
    ``~/.cache/gendetect``)."""
    return cache_root(cache) / URL_CACHE


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def url_fetch_help(url: str, dest: Path, sha256: str | None, pull: str | None = None) -> str:
    """The commands that fetch ``url`` to ``dest`` on a machine with a network, and where to put the file."""
    check = f"sha256sum {dest}    # must print {sha256}" if sha256 else f"sha256sum {dest}    # no published sha256"
    lines = [
        "On a machine with a network run:",
        f"    mkdir -p {dest.parent} && curl -L --fail -o {dest} '{url}'",
        f"    {check}",
        f"then copy the file to {dest} on this machine (or keep the same path under another folder's "
        f"{URL_CACHE}/ and set GENDETECT_CACHE to that folder).",
    ]
    if pull:
        lines.append(f"With a network here, `{pull}` does all of this (and checks the sha256).")
    return "\n".join(lines)


def _verified(path: Path, sha256: str | None) -> bool:
    """True when ``path`` has the expected sha256 (remembered in ``PATH.sha256`` while size and mtime hold)."""
    if not sha256:
        return True
    st = path.stat()
    marker = path.with_name(path.name + ".sha256")
    stamp = f"{sha256} {st.st_size} {st.st_mtime_ns}"
    if marker.is_file() and marker.read_text().strip() == stamp:
        return True
    if sha256_file(path) != sha256:
        return False
    try:
        marker.write_text(stamp + "\n")
    except OSError:  # a read-only cache still verifies, just every time
        pass
    return True


def resolve_url(
    url: str,
    *,
    filename: str,
    sha256: str | None = None,
    cache: str | os.PathLike | None = None,
    what: str = "weights",
    pull: str | None = None,
) -> Path:
    """Local path of a file published at a raw ``url``, from the cache (``<cache>/url/<filename>``); never downloads.

    A missing file, or one whose sha256 differs, raises :class:`~gendetect.errors.WeightsNotFoundError` at once,
    naming the file, the URL, the ``curl``/``sha256sum`` commands and where to put the file. :func:`fetch_url`
    (``gendetect models pull``) downloads it.
    """
    dest = url_cache_root(cache) / filename
    if dest.is_file():
        if _verified(dest, sha256):
            return dest
        raise WeightsNotFoundError(
            f"{what}: {dest} does not have the published sha256 {sha256} (a partial or different file); delete it "
            f"and fetch it again.\n{url_fetch_help(url, dest, sha256, pull)}"
        )
    raise WeightsNotFoundError(f"{what} not found: {dest} (from {url}).\n{url_fetch_help(url, dest, sha256, pull)}")


def fetch_url(
    url: str,
    *,
    filename: str,
    sha256: str | None = None,
    cache: str | os.PathLike | None = None,
    offline: bool | None = None,
    timeout: float = 30.0,
    what: str = "weights",
) -> Path:
    """Download ``url`` into the cache as ``<cache>/url/<filename>`` (unless already there), checking its sha256.

    Returns the cached path. Offline mode, a network failure or a sha256 mismatch raise
    :class:`~gendetect.errors.WeightsNotFoundError` with the manual commands; a partial download never lands under
    the final name. Without a published sha256 the computed one is logged (trust on first use).
    """
    dest = url_cache_root(cache) / filename
    if dest.is_file() and _verified(dest, sha256):
        return dest
    if is_offline(offline):
        raise WeightsNotFoundError(
            f"{what}: offline mode (HF_HUB_OFFLINE=1), cannot download {url}.\n{url_fetch_help(url, dest, sha256)}"
        )
    import hashlib
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    # no resume: a failed or mismatching download leaves nothing (atomic_path removes the part file on error)
    with atomic_path(dest) as part:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "gendetect"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:  # noqa: S310
                for block in iter(lambda: response.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        except OSError as e:  # URLError, timeouts and disk errors are all OSErrors
            help_text = url_fetch_help(url, dest, sha256)
            raise WeightsNotFoundError(f"{what}: downloading {url} failed: {e}.\n{help_text}") from e
        got = h.hexdigest()
        if sha256 and got != sha256:
            raise WeightsNotFoundError(
                f"{what}: {url} has sha256 {got}, expected {sha256}; the file was not kept (the URL may now serve "
                "another file: check the project's page)."
            )
    if not sha256:
        logger.warning("%s: %s has no published sha256; downloaded file has sha256 %s", what, url, got)
    if sha256:
        _verified(dest, sha256)  # write the marker
    return dest
