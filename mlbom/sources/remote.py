"""Sources whose files live behind HTTP (the Hub, OCI registries): what they share.

Remote files are read in byte ranges: inspectors seek and read as on a local file, and only
the ranges they touch travel. Every remote file is hostile, so the requests and bytes spent
on one file are capped. Small non-weight files are downloaded whole and hashed; large ones
keep the digest the server recorded unless other digests are asked for.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from pathlib import PurePosixPath
from typing import BinaryIO

from mlbom._clients import DOWNLOAD_LIMIT, WORKERS
from mlbom.errors import BadInputError, InspectionError, MlbomError
from mlbom.hashing import ALGORITHMS, HashCache, hash_bytes
from mlbom.progress import Advance
from mlbom.sources import SHA256_ONLY, Blob, Source

#: offset, length -> exactly those bytes (fewer only at the end of the file)
Fetch = Callable[[int, int], bytes]

# Never downloaded whole unless --hash asks for digests the server does not have.
WEIGHT_SUFFIXES = frozenset({
    ".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".keras",
    ".msgpack", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".tflite", ".mlmodel",
    ".pb", ".ot", ".nemo", ".pte", ".llamafile", ".engine", ".plan", ".mar",
})  # fmt: skip
FIRST_CHUNK = 64 << 10  # a safetensors or GGUF preamble, usually the whole header
MAX_CHUNK = 8 << 20
MAX_REQUESTS = 4096  # per file: a GGUF vocabulary or an ONNX graph takes a few hundred
MAX_BYTES = 512 << 20  # per file: every inspector's own header limit fits within it


class RangeReader(io.RawIOBase):
    """A seekable reader over `fetch`. Sequential reads fetch ahead in doubling chunks,
    so parsing a long header costs a handful of requests; a seek starts small again."""

    def __init__(self, name: str, size: int, fetch: Fetch) -> None:
        super().__init__()
        self.name = name
        self.size = size
        self._fetch = fetch
        self._pos = 0
        self._window_start = 0
        self._window = b""
        self._chunk = FIRST_CHUNK
        self.requests = 0
        self.fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(f"{self.name}: seek before the start of the file")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        # Fills the whole buffer up to the end of the file: callers never see short reads.
        want = min(len(buffer), self.size - self._pos)
        done = 0
        while done < want:
            offset = self._pos - self._window_start
            if not 0 <= offset < len(self._window):
                self._refill(want - done)
                offset = 0
            piece = self._window[offset : offset + want - done]
            buffer[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done

    def _refill(self, want: int) -> None:
        sequential = bool(self._window) and self._pos == self._window_start + len(self._window)
        self._chunk = min(self._chunk * 2, MAX_CHUNK) if sequential else FIRST_CHUNK
        length = min(max(want, self._chunk), self.size - self._pos)
        self.requests += 1
        self.fetched += length
        if self.requests > MAX_REQUESTS or self.fetched > MAX_BYTES:
            raise InspectionError(
                f"{self.name}: reading its header would take more than {MAX_REQUESTS} "
                f"requests or {MAX_BYTES >> 20} MiB"
            )
        data = self._fetch(self._pos, length)
        if len(data) != length:
            raise InspectionError(
                f"{self.name}: the server sent {len(data)} bytes for a {length}-byte range"
            )
        self._window_start, self._window = self._pos, data


class RemoteBlob(Blob):
    """A file behind HTTP: a small one held in memory once downloaded, others read by
    range. `sha256` is the digest the server recorded for it, when it has one."""

    def __init__(self, path: str, size: int, sha256: str | None, fetch: Fetch) -> None:
        super().__init__(path, size)
        self.sha256 = sha256
        self.content: bytes | None = None
        self._fetch = fetch
        self._reader: RangeReader | None = None

    def open(self) -> BinaryIO:
        if self.content is not None:
            return io.BytesIO(self.content)
        return RangeReader(self.path, self.size, self._fetch)  # type: ignore[return-value]

    def peek_at(self, offset: int, length: int) -> bytes:
        if self.content is not None:
            return self.content[offset : offset + max(0, length)]
        return self._fetch(offset, max(0, min(length, self.size - offset)))

    def read_at(self, offset: int, length: int) -> bytes:
        if self.content is not None:
            return self.content[offset : offset + max(0, length)]
        # One long-lived reader: a header read right after its length prefix costs nothing.
        self._reader = self._reader or RangeReader(self.path, self.size, self._fetch)
        self._reader.seek(offset)
        return self._reader.read(max(0, min(length, self.size - offset))) or b""


class RemoteSource(Source, ABC):
    """A model whose server hashed its large files (a hub's LFS SHA-256, an OCI layer
    digest): small non-weight files are downloaded and hashed here, large ones keep the
    server's SHA-256 unless other digests are asked for, which streams them."""

    #: the value of the `mlbom:sha256-only` property: where the SHA-256 came from
    sha256_origin: str
    _blobs: list[RemoteBlob]

    @abstractmethod
    def chunks(self, blob: RemoteBlob) -> AbstractContextManager[Iterable[bytes]]:
        """The blob's bytes, streamed."""

    @abstractmethod
    def mismatch(self, blob: RemoteBlob) -> MlbomError:
        """The error for bytes that do not match the recorded digest."""

    def download_small(self, download: Callable[[RemoteBlob], bytes]) -> None:
        """Fetch every small non-weight file whole, in parallel."""
        fetched = [b for b in self._blobs if fetched_whole(b.path, b.size)]
        with ThreadPoolExecutor(WORKERS) as pool:
            for blob, content in zip(fetched, pool.map(download, fetched), strict=True):
                blob.content = content

    def blobs(self) -> list[Blob]:
        return list(self._blobs)

    def bytes_to_read(self, algorithms: tuple[str, ...], *, complete: bool) -> int:
        return sum(b.size for b in self._streamed(algorithms, complete))

    def digests(
        self,
        algorithms: tuple[str, ...],
        *,
        cache: HashCache | None,
        advance: Advance | None,
        complete: bool = True,
    ) -> dict[str, dict[str, str]]:
        streamed = self._streamed(algorithms, complete)
        result: dict[str, dict[str, str]] = {}
        with ThreadPoolExecutor(min(4, max(1, len(streamed)))) as pool:
            stream = partial(self._stream_digests, algorithms=algorithms, advance=advance)
            for blob, digests in zip(streamed, pool.map(stream, streamed), strict=True):
                result[blob.path] = digests
        for blob in self._blobs:
            if blob.content is not None:
                result[blob.path] = hash_bytes(blob.content, algorithms)
            elif blob.path not in result:
                assert blob.sha256 is not None
                result[blob.path] = {"sha256": blob.sha256}
                if set(algorithms) - {"sha256"}:
                    blob.properties.append((SHA256_ONLY, self.sha256_origin))
        return result

    def _streamed(self, algorithms: tuple[str, ...], complete: bool) -> list[RemoteBlob]:
        # Without a recorded SHA-256 a file must be read; with one, only when asked.
        extra = bool(set(algorithms) - {"sha256"})
        return [
            b
            for b in self._blobs
            if b.content is None and (b.sha256 is None or (complete and extra))
        ]

    def _stream_digests(
        self, blob: RemoteBlob, algorithms: tuple[str, ...], advance: Advance | None
    ) -> dict[str, str]:
        """Every digest of a streamed file, its SHA-256 checked against the recorded one."""
        hashers = {a: ALGORITHMS[a][1]() for a in dict.fromkeys((*algorithms, "sha256"))}
        received = 0
        with self.chunks(blob) as chunks:
            for chunk in chunks:
                received += len(chunk)
                if received > blob.size:
                    break
                for hasher in hashers.values():
                    hasher.update(chunk)
                if advance:
                    advance(len(chunk))
        if received != blob.size:
            raise BadInputError(
                f"{self.location}: {blob.path} is {blob.size} bytes but {received} bytes arrived",
                hint="the connection may have dropped; run the command again",
            )
        digests = {a: h.hexdigest() for a, h in hashers.items()}
        if blob.sha256 and digests["sha256"] != blob.sha256:
            raise self.mismatch(blob)
        return {a: digests[a] for a in algorithms} | {"sha256": digests["sha256"]}


def fetched_whole(path: str, size: int) -> bool:
    """Small non-weight files (card, configs, tokenizer) are downloaded and hashed here."""
    return PurePosixPath(path).suffix.lower() not in WEIGHT_SUFFIXES and size <= DOWNLOAD_LIMIT
