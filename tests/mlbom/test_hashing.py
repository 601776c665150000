"""Hashing: one read per file for all digests, parallel, and a cache that is never wrong."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from mlbom import hashing
from mlbom.errors import BadInputError
from mlbom.hashing import HashCache, hash_files


@pytest.fixture
def files(tmp_path):
    paths = []
    for i, size in enumerate((0, 1, hashing.CHUNK_SIZE + 7, 3 * hashing.CHUNK_SIZE)):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    old = time.time() - 60  # older than the racy window, so the cache may keep them
    for p in paths:
        os.utime(p, (old, old))
    return paths


def test_digests_match_hashlib(files):
    algorithms = tuple(hashing.ALGORITHMS)
    result = hash_files(files, algorithms, workers=2)
    for p in files:
        data = p.read_bytes()
        for a in algorithms:
            expected = hashing.ALGORITHMS[a][1]()
            expected.update(data)
            assert result[p][a] == expected.hexdigest()


def test_each_file_is_read_once_for_all_digests(files, monkeypatch):
    opened = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    hash_files(files, ("sha256", "sha512", "sha3-256"))
    assert sorted(map(str, opened)) == sorted(map(str, files))


def test_cache_hit_and_invalidation(files, tmp_path, monkeypatch):
    cache = HashCache(tmp_path / "cache")
    first = hash_files(files, ("sha256",), cache=cache)

    def no_hashing(*args, **kwargs):
        raise AssertionError("a cached file was hashed again")

    monkeypatch.setattr(hashing, "hash_file", no_hashing)
    assert hash_files(files, ("sha256",), cache=cache) == first
    monkeypatch.undo()

    changed = files[2]
    changed.write_bytes(b"new content")
    old = time.time() - 60
    os.utime(changed, (old, old))
    again = hash_files(files, ("sha256",), cache=cache)
    assert again[changed]["sha256"] == hashlib.sha256(b"new content").hexdigest()
    # a digest set the cache lacks is computed, not half-served
    both = hash_files(files, ("sha256", "sha512"), cache=cache)
    assert both[files[1]]["sha512"] == hashlib.sha512(files[1].read_bytes()).hexdigest()


def test_recently_modified_files_are_not_cached(tmp_path, monkeypatch):
    p = tmp_path / "fresh"
    p.write_bytes(b"x")
    cache = HashCache(tmp_path / "cache")
    hash_files([p], ("sha256",), cache=cache)
    assert cache.get(p, ("sha256",), hashing.Stamp.of(p)) is None


def test_broken_cache_never_fails_a_run(files, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "hashes.sqlite3").write_bytes(b"this is not a database" * 100)
    result = hash_files(files, ("sha256",), cache=HashCache(folder))
    assert result[files[1]]["sha256"] == hashlib.sha256(files[1].read_bytes()).hexdigest()
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    assert hash_files(files[:1], ("sha256",), cache=HashCache(blocked / "sub"))


def test_file_changing_while_hashed(tmp_path, monkeypatch):
    p = tmp_path / "growing"
    p.write_bytes(b"a" * 10)
    real = hashing.hash_file

    def hash_then_append(path, algorithms, advance=None):
        digests = real(path, algorithms, advance)
        with open(path, "ab") as f:
            f.write(b"more")
        return digests

    monkeypatch.setattr(hashing, "hash_file", hash_then_append)
    with pytest.raises(BadInputError, match="changed while it was being hashed"):
        hash_files([p], ("sha256",))


def test_unknown_algorithm():
    with pytest.raises(BadInputError, match="unknown hash algorithm"):
        hashing.check_algorithms(["md5"])


def test_generate_no_cache_flag(cli, tmp_path, monkeypatch):
    from tests.builders import hf_folder

    folder = hf_folder(tmp_path / "m")
    cache_dir = tmp_path / "c"
    monkeypatch.setenv("MLBOM_CACHE_DIR", str(cache_dir))
    cli("generate", folder, "--no-cache", "-q")
    assert not cache_dir.exists()
    cli("generate", folder, "-q")
    assert (cache_dir / "hashes.sqlite3").exists()
