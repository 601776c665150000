"""Remote files read in byte ranges, for sources whose files live behind HTTP (the Hub,
OCI registries): inspectors seek and read as on a local file, and only the ranges they
touch travel. Every remote file is hostile, so the requests and bytes spent on one file
are capped."""

from __future__ import annotations

import io
from collections.abc import Callable

from mlbom.errors import InspectionError

#: offset, length -> exactly those bytes (fewer only at the end of the file)
Fetch = Callable[[int, int], bytes]

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
