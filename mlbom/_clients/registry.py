"""The OCI distribution protocol: manifests, blobs (whole, streamed or by byte range),
referrers, pushes; and a model's manifest read as the ORAS convention lays it out (one
file per layer, named by its `org.opencontainers.image.title` annotation).

The registry is spoken to through the ORAS Python SDK's client (`oras.provider.Registry`):
its URLs, its docker-config credentials and credential helpers, its token flow. As with
docker, a registry on a loopback address is reached over plain HTTP and any other over
HTTPS unless `insecure_registries` names it. The client (`Registry`) is shared with the OCI
attestation store (`attest.stores.oci`); it raises `RegistryError`, whose `kind` each
caller words in its own terms.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import PurePosixPath
from typing import Any, Literal

import oras.container
import oras.provider
import oras.utils
import requests

from mlbom._clients import STREAM_CHUNK
from mlbom.errors import BadInputError, CheckFailedError
from mlbom.references import SHA256_DIGEST, ModelRef, split_name

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
TITLE = "org.opencontainers.image.title"
UNPACK = "io.deis.oras.content.unpack"  # ORAS: the layer is a packed folder, not a file
MAX_MANIFEST = 4 << 20  # a manifest, an index, a config
MAX_LAYERS = 10_000
MAX_DOCKER_CONFIG = 1 << 20
MAX_ERROR_BODY = 64 << 10
MAX_PAGES = 16  # of a paginated referrers answer
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0  # between two bytes, not for the whole body
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")

Kind = Literal["unreachable", "auth", "missing", "mismatch", "malformed", "failed"]


class RegistryError(Exception):
    """A registry request that failed. `kind`: `unreachable` (network, DNS, TLS),
    `auth` (credentials refused or missing), `missing` (404), `mismatch` (bytes that do not
    hash to their digest), `malformed` (an answer that is not what the protocol says),
    `failed` (any other refusal)."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _quiet_oras(record: logging.LogRecord) -> bool:
    # oras logs its own view of failures that mlbom reports with what to do; --debug shows it
    return logging.getLogger("mlbom").isEnabledFor(logging.DEBUG)


logging.getLogger("oras.logger").addFilter(_quiet_oras)


def plain_http(registry: str, insecure_registries: Sequence[str] = ()) -> bool:
    """Docker's rule: plain HTTP for a loopback registry or one named as insecure."""
    host = registry.rpartition(":")[0] if ":" in registry else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return any(name in (registry, host) for name in insecure_registries)


def docker_config() -> dict[str, Any]:
    """Credentials as docker keeps them: `$DOCKER_CONFIG/config.json`, else
    `~/.docker/config.json` (oras reads only the latter), shaped as oras's auth expects."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    path = os.path.join(folder, "config.json")
    config: Any = {}
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCKER_CONFIG + 1)
    except FileNotFoundError:
        data = b"{}"
    except OSError as e:
        raise RegistryError("auth", f"cannot read the docker config {path}: {e.strerror}") from None
    try:
        config = json.loads(data) if len(data) <= MAX_DOCKER_CONFIG else None
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict):
        raise RegistryError("auth", f"the docker config {path} is not a JSON object")
    auths, helpers = config.get("auths"), config.get("credHelpers")
    store = config.get("credsStore")
    return {
        "auths": auths if isinstance(auths, dict) else {},
        "credsStore": store if isinstance(store, str) else None,
        "credHelpers": helpers if isinstance(helpers, dict) else {},
    }


class _Session(requests.Session):
    """Every request bounded in time: oras sets no timeout."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        verb = method.decode() if isinstance(method, bytes) else method
        where = url.decode() if isinstance(url, bytes) else url
        return super().request(verb, where, *args, **kwargs)


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry sent it, checked against its digest."""

    data: bytes
    media_type: str
    digest: str
    document: dict[str, Any]

    @property
    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.document


class Registry(oras.provider.Registry):
    """oras's registry client for one registry, with three changes: every request has a
    timeout; a failure is reported at once (oras retries for over a minute, with sleeps,
    which would hide an unreachable registry); and a `Basic` challenge is answered with
    the docker-config credentials (the CNCF registry's htpasswd auth asks for Basic, which
    oras's token backend would take for a token realm)."""

    def __init__(self, registry: str, *, insecure_registries: Sequence[str] = ()) -> None:
        self.plain_http = plain_http(registry, insecure_registries)
        super().__init__(hostname=registry, insecure=self.plain_http)
        session = _Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # as oras does
        self.session = session
        self.auth.session = session
        self.registry = registry
        self._lock = threading.Lock()
        self._credentials_loaded = False
        self._basic_challenge = False

    def container(self, repository: str) -> oras.container.Container:
        """oras's URL builder for `repository`, without its guess of which part of a name
        is the registry (a first path segment with a dot would be taken for one)."""
        container = oras.container.Container(repository, registry=self.registry)
        namespace, _, name = repository.rpartition("/")
        container.registry, container.namespace, container.repository = (
            self.registry,
            namespace or None,
            name,
        )
        return container

    def url(self, repository: str, kind: Literal["manifest", "blob"], reference: str) -> str:
        container = self.container(repository)
        path = (
            container.manifest_url(reference)
            if kind == "manifest"
            else container.get_blob_url(reference)
        )
        return f"{self.prefix}://{path}"

    def do_request(
        self,
        url: str,
        method: str = "GET",
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One request, authenticated as the registry asks; the answer as it came (a 401
        or 403 that credentials did not cure is returned for the caller to report)."""
        self._load_credentials()
        headers = dict(headers or {})
        basic = getattr(self.auth, "_basic_auth", None)
        if self._basic_challenge and basic:
            headers["Authorization"] = f"Basic {basic}"
        elif getattr(self.auth, "token", None):
            headers.update(self.auth.get_auth_header())
        with self.network():
            response = self._send(method, url, data, json, headers, stream)
            if response.status_code not in (401, 403):
                return response
            scheme = response.headers.get("WWW-Authenticate", "").split(" ", 1)[0].lower()
            if scheme == "basic" and basic and not self._basic_challenge:
                self._basic_challenge = True
                headers["Authorization"] = f"Basic {basic}"
            elif scheme == "bearer":
                # oras's token flow, with the credentials of the docker config or anonymous;
                # refresh: a token we already hold did not cover this request's scope
                headers, changed = self.auth.authenticate_request(response, headers, refresh=True)
                if not changed:
                    return response
            else:
                return response
            response.close()
            return self._send(method, url, data, json, headers, stream)

    def _send(
        self,
        method: str,
        url: str,
        data: Any,
        json_body: Any,
        headers: dict[str, str],
        stream: bool,
    ) -> requests.Response:
        return self.session.request(
            method,
            url,
            data=data,
            json=json_body,
            headers=headers,
            stream=stream,
            verify=self._tls_verify,
        )

    def _load_credentials(self) -> None:
        with self._lock:
            if self._credentials_loaded:
                return
            # A non-empty config keeps oras from reading only ~/.docker/config.json itself.
            self.auth._auth_config = docker_config()
            self.auth.load_configs(self.container("_"))
            self._credentials_loaded = True

    @contextmanager
    def network(self) -> Iterator[None]:
        """requests' exceptions as `RegistryError`s."""
        try:
            yield
        except requests.exceptions.SSLError as e:
            raise RegistryError(
                "unreachable", f"cannot reach {self.registry}: TLS failure ({_reason(e)})"
            ) from None
        except requests.exceptions.InvalidJSONError:
            raise RegistryError(
                "malformed", f"{self.registry}'s token service sent a malformed answer"
            ) from None
        except requests.RequestException as e:
            raise RegistryError(
                "unreachable", f"cannot reach {self.registry} ({_reason(e)})"
            ) from None

    def check(self, response: requests.Response, what: str) -> None:
        """Raise the `RegistryError` a non-2xx answer stands for."""
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = _error_detail(response)
        if status in (401, 403):
            raise RegistryError(
                "auth", f"{self.registry} refused access to {what} (HTTP {status}{detail})"
            )
        if status == 404:
            raise RegistryError("missing", f"{self.registry} has no {what}{detail}")
        raise RegistryError("failed", f"{self.registry} answered HTTP {status} for {what}{detail}")

    # reading

    def manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = (*MANIFEST_TYPES, *INDEX_TYPES),
    ) -> Manifest:
        """The manifest (or index) `reference` (a tag or digest) names, bounded, parsed,
        and checked against the digest it was asked by and the one the registry states."""
        if not (SHA256_DIGEST.match(reference) or _TAG.match(reference)):
            raise RegistryError("malformed", f"{reference!r} is neither a tag nor a digest")
        what = f"manifest {reference} in {repository}"
        url = self.url(repository, "manifest", reference)
        with self.network():
            response = self.do_request(
                url, "GET", headers={"Accept": ", ".join(accept)}, stream=True
            )
            with response:
                self.check(response, what)
                data = read_body(response, MAX_MANIFEST, what)
                stated = response.headers.get("Docker-Content-Digest", "")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if SHA256_DIGEST.match(reference) and digest != reference:
            raise RegistryError("mismatch", f"the {what} does not hash to its digest")
        if stated.startswith("sha256:") and stated != digest:
            raise RegistryError("mismatch", f"the {what} does not hash to the digest stated")
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise RegistryError("malformed", f"the {what} is not JSON ({e})") from None
        if not isinstance(document, dict):
            raise RegistryError("malformed", f"the {what} is not a JSON object")
        media_type = document.get("mediaType")
        if not isinstance(media_type, str) or not media_type:
            media_type = content_type
        return Manifest(data, media_type, digest, document)

    def blob_chunks(self, repository: str, digest: str, limit: int) -> Iterator[bytes]:
        """The blob's bytes as they arrive, refused past `limit` (not checked: the caller
        hashes them)."""
        what = f"blob {digest} in {repository}"
        with self.network():
            response = self.do_request(self.url(repository, "blob", digest), "GET", stream=True)
            with response:
                self.check(response, what)
                received = 0
                for chunk in response.iter_content(STREAM_CHUNK):
                    received += len(chunk)
                    if received > limit:
                        raise RegistryError("malformed", f"the {what} is larger than stated")
                    yield chunk

    def blob(self, repository: str, digest: str, size: int | None, limit: int) -> bytes:
        """A whole blob of the stated `size` (or any size up to `limit`), checked against
        its digest."""
        data = b"".join(self.blob_chunks(repository, digest, limit if size is None else size))
        if size is not None and len(data) != size:
            raise RegistryError(
                "malformed", f"blob {digest} ended after {len(data)} of {size} bytes"
            )
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError("mismatch", f"blob {digest} does not hash to its digest")
        return data

    def read_range(
        self, repository: str, digest: str, offset: int, length: int, whole_limit: int
    ) -> bytes:
        """`length` bytes of a blob from `offset`, by a Range request (registries may
        redirect to their storage; requests drops the credentials on another host). A
        registry that ignores Range sends the whole blob: its prefix is taken when it is
        within `whole_limit`, else the read is refused."""
        what = f"blob {digest} in {repository}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        with self.network():
            response = self.do_request(
                self.url(repository, "blob", digest), "GET", headers=headers, stream=True
            )
            with response:
                self.check(response, what)
                if response.status_code == 206:
                    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                    if m and int(m[1]) != offset:
                        raise RegistryError(
                            "malformed", f"{self.registry} sent another range of {what}"
                        )
                    return read_prefix(response, length)
                if offset + length > whole_limit:
                    raise RegistryError(
                        "failed", f"{self.registry} does not answer byte-range requests for blobs"
                    )
                return read_prefix(response, offset + length)[offset:]

    def referrers(self, repository: str, digest: str) -> list[Any] | None:
        """The referrers API's descriptors of `digest`'s referrers, or None from a registry
        without the API (it answers 404, which a registry with it never does)."""
        container = self.container(repository)
        url = f"{self.prefix}://{self.registry}/v2/{container.api_prefix}/referrers/{digest}"
        found: list[Any] = []
        with self.network():
            for _ in range(MAX_PAGES):
                response = self.do_request(url, "GET", headers={"Accept": OCI_INDEX}, stream=True)
                with response:
                    if response.status_code in (404, 405, 501) and not found:
                        return None
                    self.check(response, f"referrers of {digest} in {repository}")
                    data = read_body(response, MAX_MANIFEST, "the referrers list")
                    following = response.links.get("next", {}).get("url")
                try:
                    document = json.loads(data)
                except (ValueError, RecursionError):
                    document = None
                manifests = document.get("manifests") if isinstance(document, dict) else None
                if not isinstance(manifests, list):
                    raise RegistryError(
                        "malformed", f"{self.registry}'s referrers answer is not an image index"
                    )
                found += manifests
                if not following:
                    break
                url = requests.compat.urljoin(url, following)
        return found

    # writing

    def push_blob(self, repository: str, data: bytes, media_type: str) -> dict[str, Any]:
        """Upload `data` as a blob (unless the registry has it); its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        descriptor = {"mediaType": media_type, "digest": digest, "size": len(data)}
        container = self.container(repository)
        what = f"a blob upload to {repository}"
        with self.network():
            head = self.do_request(self.url(repository, "blob", digest), "HEAD")
            if head.status_code == 200:
                return descriptor
            if head.status_code != 404:
                self.check(head, what)
            started = self.do_request(
                f"{self.prefix}://{container.upload_blob_url()}",
                "POST",
                headers={"Content-Length": "0"},
            )
            self.check(started, what)
            location = self._get_location(started, container)
            if not location:
                raise RegistryError("malformed", f"{self.registry} named no upload location")
            done = self.do_request(
                oras.utils.append_url_params(location, {"digest": digest}),
                "PUT",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            self.check(done, what)
        return descriptor

    def push_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> Mapping[str, str]:
        """PUT a manifest or index under a tag or its digest; the answer's headers."""
        what = f"manifest {reference} in {repository}"
        with self.network():
            response = self.do_request(
                self.url(repository, "manifest", reference),
                "PUT",
                data=data,
                headers={"Content-Type": media_type},
            )
            self.check(response, what)
            response.close()
        stated = response.headers.get("Docker-Content-Digest", "")
        if stated.startswith("sha256:") and stated != "sha256:" + hashlib.sha256(data).hexdigest():
            raise RegistryError("mismatch", f"{self.registry} stored other bytes for the {what}")
        return response.headers


def read_body(response: requests.Response, limit: int, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_content(STREAM_CHUNK):
        data += chunk
        if len(data) > limit:
            raise RegistryError("malformed", f"the {what} is larger than {limit >> 20} MiB")
    return bytes(data)


def read_prefix(response: requests.Response, length: int) -> bytes:
    """At most `length` bytes of the body; the rest is never read."""
    data = bytearray()
    for chunk in response.iter_content(min(STREAM_CHUNK, max(length, 1))):
        data += chunk
        if len(data) >= length:
            break
    return bytes(data[:length])


def _reason(e: Exception) -> str:
    text = str(e)
    if m := _ERRNO.search(text):
        return m[1].strip()
    if isinstance(e, requests.exceptions.Timeout):
        return "timed out"
    return type(e).__name__


def _error_detail(response: requests.Response) -> str:
    """The registry's own error words (`{"errors": [{"code", "message"}]}`), bounded."""
    try:
        body = read_prefix(response, MAX_ERROR_BODY)
        errors = json.loads(body).get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        words = " ".join(str(first.get(k, "")) for k in ("code", "message")).strip()
    except (ValueError, AttributeError, TypeError, RecursionError, requests.RequestException):
        return ""
    return f": {words[:300]}" if words else ""


# The model


@dataclass(frozen=True)
class Layer:
    """One file of the model: a layer of its manifest."""

    path: str
    size: int
    digest: str  # sha256:<hex>, the file's SHA-256
    media_type: str

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")


def descriptor(value: Any, what: str) -> dict[str, Any]:
    """A content descriptor from hostile JSON: a SHA-256 digest, a size, a media type."""
    if not isinstance(value, dict):
        raise RegistryError("malformed", f"{what} is not a descriptor")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str) or not SHA256_DIGEST.match(digest):
        raise RegistryError("malformed", f"{what} has no SHA-256 digest ({str(digest)[:80]!r})")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError("malformed", f"{what} has no size")
    if not isinstance(media_type, str) or not media_type or len(media_type) > 255:
        raise RegistryError("malformed", f"{what} has no media type")
    return value


def layers(manifest: Manifest) -> list[Layer]:
    """The manifest's layers as files, every title and digest checked."""
    found = manifest.document.get("layers")
    if not isinstance(found, list):
        raise RegistryError("malformed", "the manifest lists no layers")
    if len(found) > MAX_LAYERS:
        raise RegistryError("malformed", f"the manifest lists more than {MAX_LAYERS} layers")
    files: dict[str, Layer] = {}
    for i, value in enumerate(found):
        layer = descriptor(value, f"layer {i} of the manifest")
        annotations = layer.get("annotations") or {}
        title = annotations.get(TITLE) if isinstance(annotations, dict) else None
        if not isinstance(title, str) or not title:
            raise RegistryError(
                "malformed",
                f"layer {layer['digest']} has no {TITLE} annotation: mlbom reads models "
                "pushed with one file per layer (the ORAS convention)",
            )
        if not _valid_path(title):
            raise RegistryError(
                "malformed", f"layer {layer['digest']} names an invalid path {title[:200]!r}"
            )
        if str(annotations.get(UNPACK, "")).lower() == "true":
            raise RegistryError(
                "malformed",
                f"layer {title} is a packed folder, not a file: push the files one per layer",
            )
        if title in files:
            raise RegistryError("malformed", f"two layers are named {title}")
        files[title] = Layer(title, layer["size"], layer["digest"], layer["mediaType"])
    return list(files.values())


def _valid_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (
        bool(parts)
        and len(path) <= 4096
        and not path.startswith("/")
        and "\\" not in path
        and ".." not in parts
        and str(PurePosixPath(path)) == path  # no ".", "//" or trailing "/"
        and not any(ord(c) < 0x20 for c in path)
    )


def model_manifest(client: Registry, repository: str, reference: str) -> Manifest:
    """The image manifest of a model; an index (a multi-platform image) is refused with
    the digests to choose from, since a model's files are one manifest's layers."""
    manifest = client.manifest(repository, reference)
    if manifest.is_index:
        children = manifest.document.get("manifests")
        listed = [
            str(m.get("digest"))[:80] for m in (children if isinstance(children, list) else [])[:5]
            if isinstance(m, dict)
        ]  # fmt: skip
        raise RegistryError(
            "malformed",
            f"{reference} is an image index, not a model's manifest; name one of its "
            f"manifests by digest ({', '.join(listed) or 'it lists none'})",
        )
    if manifest.media_type not in MANIFEST_TYPES:
        raise RegistryError(
            "malformed",
            f"{reference} is not an image manifest (media type {manifest.media_type[:100]!r})",
        )
    if manifest.document.get("schemaVersion") != 2:
        raise RegistryError("malformed", f"manifest {reference} is not schema version 2")
    return manifest


@contextmanager
def model_errors(ref: ModelRef) -> Iterator[None]:
    """`RegistryError`s as mlbom errors about the model, with what to do next."""
    registry = split_name(ref.name)[0]
    try:
        yield
    except RegistryError as e:
        if e.kind == "unreachable":
            raise BadInputError(
                f"{ref}: {e.message}",
                hint="check the registry's address and the network; a registry that is not on "
                "a loopback address is reached over HTTPS unless --insecure-registry names it",
            ) from None
        if e.kind == "auth":
            raise BadInputError(
                f"{ref}: {e.message}",
                hint=f"log in with `docker login {registry}`: mlbom uses the docker config "
                "($DOCKER_CONFIG/config.json or ~/.docker/config.json) and its credential helpers",
            ) from None
        if e.kind == "mismatch":
            raise CheckFailedError(
                f"{ref}: {e.message}",
                hint="the bytes changed in transit or on the registry; do not trust this model",
            ) from None
        raise BadInputError(f"{ref}: {e.message}") from None


def pinned_manifest(client: Registry, ref: ModelRef) -> Manifest:
    repository = split_name(ref.name)[1]
    reference = ref.digest or ref.tag or "latest"
    try:
        return model_manifest(client, repository, reference)
    except RegistryError as e:
        if e.kind == "missing":
            raise BadInputError(
                f"no such model: {ref} (the registry has no manifest {reference} in {repository})",
                hint="check the registry, the repository and the tag or digest",
            ) from None
        raise


def resolve_digest(name: str, tag: str, *, insecure_registries: Sequence[str] = ()) -> str:
    """The manifest digest (`sha256:<hex>`) the tag names now, from the manifest's bytes."""
    ref = ModelRef("oci", name, None, tag)
    client = Registry(split_name(name)[0], insecure_registries=insecure_registries)
    with model_errors(ref):
        return pinned_manifest(client, ref).digest


def manifest_files(ref: ModelRef, *, insecure_registries: Sequence[str] = ()) -> dict[str, str]:
    """Each file of an OCI model (layer title, as in its BOM) and
    its SHA-256 hex (the layer digest): what a BOM pushed for the model must list."""
    client = Registry(split_name(ref.name)[0], insecure_registries=insecure_registries)
    with model_errors(ref):
        found = layers(pinned_manifest(client, ref))
    return {layer.path: layer.sha256 for layer in found}
