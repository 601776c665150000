"""The Hugging Face Hub's API (or an HF-compatible private hub's) at one endpoint, through
huggingface-hub's own client and session: a revision resolved to its commit and its file
listing, byte ranges, whole small files checked against the Hub's digests, streams, and the
Hub's own scan results. `HF_ENDPOINT` and `HF_TOKEN` (or a saved `hf auth login`) are
honoured; every failure is an mlbom error with what to do next.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlbom._clients import DOWNLOAD_LIMIT, STREAM_CHUNK, WORKERS
from mlbom.errors import BadInputError, CheckFailedError, shown
from mlbom.references import COMMIT, SHA256_HEX, HubRef

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import ModelInfo

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_FILES = 100_000
SECURITY_BATCH = 50  # the Hub pages expanded paths-info at 50 entries
_NOT_OFFERED = (404, 405, 501)  # paths-info on a hub without it


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@dataclass(frozen=True)
class HubFile:
    """One file as the Hub lists it at a commit."""

    path: str
    size: int
    sha256: str | None  # the LFS digest, for files stored in LFS or Xet
    blob_id: str | None  # the git blob id (SHA-1), for files stored in git


class Hub:
    """The Hub's API at one endpoint, through huggingface-hub's own client and session."""

    def __init__(self, ref: HubRef) -> None:
        from huggingface_hub import HfApi, constants
        from huggingface_hub.utils import build_hf_headers, get_session

        self.ref = ref
        self.endpoint = endpoint()
        self.api: HfApi = HfApi(endpoint=self.endpoint)
        self.headers = build_hf_headers()
        self.session = get_session()
        self.api_timeout = float(constants.HF_HUB_ETAG_TIMEOUT)
        self.download_timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        self.commit = ""

    def resolve(self) -> list[HubFile]:
        """Pin the revision to its commit; the repository's files at that commit."""
        revision = self.ref.revision or ""
        if not revision.isprintable() or " " in revision:
            # no git ref holds either (isprintable is False for every other space and control
            # character): a commit spelled with a trailing newline would be taken for a branch
            raise BadInputError(
                f"{shown(str(self.ref))}: the revision holds a space or a control character",
                hint="give a branch, tag or 40-hex commit as the Hub names it",
            )
        with hub_errors(self.ref, self.endpoint):
            info = self.api.model_info(
                self.ref.repo,
                revision=self.ref.revision,
                files_metadata=True,
                timeout=self.api_timeout,
            )
            files = _files(info)
        commit = getattr(info, "sha", None)
        if not isinstance(commit, str) or not COMMIT.match(commit):
            raise BadInputError(f"{self.ref}: the Hub did not name the revision's commit")
        if self.ref.revision and COMMIT.match(self.ref.revision) and commit != self.ref.revision:
            raise BadInputError(f"{self.ref}: the Hub resolved it to another commit, {commit}")
        self.commit = commit
        return files

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{self.ref.repo}/resolve/{self.commit}/{quote(path)}"

    def fetch_range(self, path: str, offset: int, length: int) -> bytes:
        headers = {**self.headers, "Range": f"bytes={offset}-{offset + length - 1}"}
        with hub_errors(self.ref, self.endpoint), self._get(path, headers) as response:
            if response.status_code == 206:
                return _read_bounded(response, length, path)
            # A server that ignores Range sends the whole file: take the prefix, or give up.
            if offset + length > DOWNLOAD_LIMIT:
                raise BadInputError(f"{self.endpoint} does not answer byte-range requests")
            return _read_bounded(response, offset + length, path, exact=False)[offset:]

    def download(self, file: HubFile) -> bytes:
        with hub_errors(self.ref, self.endpoint), self._get(file.path, self.headers) as response:
            data = _read_bounded(response, file.size, file.path)
        if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256:
            raise mismatch(self.ref, file.path, "its LFS SHA-256")
        if not file.sha256 and file.blob_id and git_blob_id(data) != file.blob_id:
            raise mismatch(self.ref, file.path, "its git blob id")
        return data

    def sha256s(self, files: list[HubFile], budget: int) -> dict[str, str]:
        """Every file's SHA-256 without the weights: the LFS digest the Hub lists, else the
        file (stored in git, so small) downloaded, checked against its git blob id and
        hashed; more than `budget` bytes to download is refused."""
        wanted = [f for f in files if not f.sha256]
        if sum(f.size for f in wanted) > budget:
            raise BadInputError(
                f"{self.ref}: more than {budget >> 20} MiB of files are stored in git, not LFS: "
                "too much to hash at admission"
            )
        found = {f.path: f.sha256 for f in files if f.sha256}
        with ThreadPoolExecutor(WORKERS) as pool:
            for file, data in zip(wanted, pool.map(self.download, wanted), strict=True):
                found[file.path] = hashlib.sha256(data).hexdigest()
        return found

    @contextmanager
    def chunks(self, path: str) -> Iterator[Iterator[bytes]]:
        with hub_errors(self.ref, self.endpoint), self._get(path, self.headers) as response:
            yield response.iter_bytes(STREAM_CHUNK)

    def security(self, paths: list[str]) -> dict[str, list[tuple[str, str]]] | None:
        """The Hub's own scan results (malware, pickle imports) per file, where it has them;
        None from a hub that does not offer them (an older or private one)."""
        from huggingface_hub.errors import HfHubHTTPError

        batches = [paths[i : i + SECURITY_BATCH] for i in range(0, len(paths), SECURITY_BATCH)]
        found: dict[str, list[tuple[str, str]]] = {}

        def one(batch: list[str]) -> list[Any] | None:
            with hub_errors(self.ref, self.endpoint):
                try:
                    return self.api.get_paths_info(
                        self.ref.repo, batch, expand=True, revision=self.commit
                    )
                except HfHubHTTPError as e:
                    if e.response is not None and e.response.status_code in _NOT_OFFERED:
                        return None
                    raise

        with ThreadPoolExecutor(WORKERS) as pool:
            for entries in pool.map(one, batches):
                if entries is None:
                    return None
                for entry in entries:
                    if props := _security_properties(getattr(entry, "security", None)):
                        found[str(entry.path)] = props
        return found

    @contextmanager
    def _get(self, path: str, headers: dict[str, str]) -> Iterator[Any]:
        from huggingface_hub.utils import hf_raise_for_status

        with self.session.stream(
            "GET", self.url(path), headers=headers, timeout=self.download_timeout
        ) as response:
            hf_raise_for_status(response)
            yield response


def _files(info: ModelInfo) -> list[HubFile]:
    """The siblings of a model_info answer, checked: it is hostile input like any file."""
    siblings = info.siblings or []
    if len(siblings) > MAX_FILES:
        raise BadInputError(f"the repository lists more than {MAX_FILES} files")
    files = []
    for sibling in siblings:
        path, size = sibling.rfilename, sibling.size
        parts = PurePosixPath(path).parts if isinstance(path, str) else ()
        if not parts or path.startswith("/") or "\\" in path or ".." in parts or "\0" in path:
            raise BadInputError(f"the Hub listed an invalid file path {path!r}")
        if not isinstance(size, int) or size < 0:
            raise BadInputError(f"the Hub listed no size for {path}")
        lfs = sibling.lfs
        sha256 = lfs.get("sha256") if isinstance(lfs, dict) else None
        if sha256 is not None and not (isinstance(sha256, str) and SHA256_HEX.match(sha256)):
            raise BadInputError(f"the Hub listed a malformed SHA-256 for {path}")
        blob_id = sibling.blob_id if isinstance(sibling.blob_id, str) else None
        files.append(
            HubFile(path, size, sha256, blob_id if blob_id and COMMIT.match(blob_id) else None)
        )
    return files


def _security_properties(security: Any) -> list[tuple[str, str]]:
    if not isinstance(security, dict) or not isinstance(security.get("status"), str):
        return []
    props = [("mlbom:hub:security-status", security["status"][:100])]
    av = security.get("av_scan") or security.get("avScan")
    if isinstance(av, dict) and av.get("virusFound"):
        names = av.get("virusNames") or []
        props.append(("mlbom:hub:virus-found", ", ".join(map(str, names))[:500] or "true"))
    scan = security.get("pickle_import_scan") or security.get("pickleImportScan")
    for item in (scan or {}).get("imports", [])[:100] if isinstance(scan, dict) else []:
        if isinstance(item, dict) and item.get("safety") == "dangerous":
            props.append(
                ("mlbom:hub:unsafe-import", f"{item.get('module')}.{item.get('name')}"[:300])
            )
    return props


def _read_bounded(response: Any, limit: int, path: str, *, exact: bool = True) -> bytes:
    """The body, refused when it runs past `limit` (or, when `exact`, stops short of it)."""
    data = bytearray()
    for chunk in response.iter_bytes(STREAM_CHUNK):
        data += chunk
        if len(data) >= limit:
            break
    if len(data) > limit and exact:
        raise BadInputError(f"the Hub sent more bytes for {path} than it listed")
    if len(data) < limit and exact:
        raise HubUnreachableError(
            f"{path}: the connection ended after {len(data)} of {limit} bytes",
            hint="run the command again",
        )
    return bytes(data[:limit])


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def mismatch(ref: HubRef, path: str, what: str) -> CheckFailedError:
    return CheckFailedError(
        f"{ref}: the bytes of {path} do not match {what} on the Hub",
        hint="the file changed in transit or on the server; do not trust this model",
    )


class HubNotFoundError(BadInputError):
    """No such repository, revision or file (or a private one without a token)."""


class HubAccessError(BadInputError):
    """The hub refused access: a gated model, a missing or weak token."""


class HubUnreachableError(BadInputError):
    """The hub could not be asked: network, DNS, TLS, offline mode."""


@contextmanager
def hub_errors(ref: HubRef, hub: str) -> Iterator[None]:
    """The Hub's and the network's exceptions as mlbom errors with what to do next."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except errors.GatedRepoError:
        raise HubAccessError(
            f"{ref} is a gated model and this account has not been granted access",
            hint="accept its conditions on the Hub, then set HF_TOKEN to a token of that account",
        ) from None
    except errors.RepositoryNotFoundError:
        raise HubNotFoundError(
            f"{ref}: no such model repository on {hub}",
            hint="check the name; for a private repository set HF_TOKEN",
        ) from None
    except errors.RevisionNotFoundError:
        raise HubNotFoundError(
            f"{ref}: revision {ref.revision} does not exist",
            hint="give a branch, tag or full commit hash of the repository",
        ) from None
    except errors.DisabledRepoError:
        raise BadInputError(f"{ref} has been disabled on {hub}") from None
    except errors.OfflineModeIsEnabled:
        raise HubUnreachableError(
            f"{ref}: the Hub cannot be reached in offline mode (HF_HUB_OFFLINE is set)"
        ) from None
    except errors.HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        if status in (401, 403):
            raise HubAccessError(
                f"{ref}: {hub} refused access (HTTP {status})",
                hint="set HF_TOKEN to a token with read access to the repository",
            ) from None
        failed = HubUnreachableError if isinstance(status, int) and status >= 500 else BadInputError
        raise failed(f"{ref}: {hub} answered HTTP {status}") from None
    except (httpx2.HTTPError, httpx2.StreamError, OSError) as e:
        raise HubUnreachableError(
            f"{ref}: network failure talking to {hub} ({type(e).__name__}: {e})",
            hint="check the connection and HF_ENDPOINT, then run the command again",
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadInputError(f"{ref}: {hub} sent a malformed answer ({e})") from None
