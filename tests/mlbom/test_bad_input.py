"""Hostile and broken input: a clear message and exit 2, or for one bad file in a good
folder a warning and a BOM that says so; never a traceback, a hang or a partial file."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from mlbom.inspectors import archives
from tests.builders import (
    SAFE_TORCH,
    file_component,
    hf_folder,
    onnx_file,
    pickle_bytes,
    prop,
    safetensors_file,
)


def _safetensors_with_header(
    path: Path, header: bytes, data: bytes = b"", length: int | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


LYING_HEADERS = {
    "length beyond the file": dict(header=b"{}", length=1 << 40),
    "length over the limit": dict(header=b"{}", length=(1 << 26) + 1),
    "not an object": dict(header=b"[1, 2, 3]"),
    "not json": dict(header=b"{not json"),
    "offsets outside": dict(header=json.dumps({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8000]}}).encode(), data=b"\0" * 8),
    "shape lies": dict(header=json.dumps({"t": {"dtype": "F32", "shape": [100], "data_offsets": [0, 8]}}).encode(), data=b"\0" * 8),
    "hole": dict(header=json.dumps({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode(), data=b"\0" * 8),
    "negative dim": dict(header=json.dumps({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}).encode()),
    "deep nesting": dict(header=b"[" * 100000 + b"]" * 100000),
}  # fmt: skip


@pytest.mark.parametrize("case", LYING_HEADERS)
def test_lying_safetensors_header_single_file(cli, tmp_path, case):
    path = _safetensors_with_header(tmp_path / "m.safetensors", **LYING_HEADERS[case])
    out = tmp_path / "bom.json"
    _, err = cli("generate", path, "-o", out, code=2)
    assert err.startswith("error: ") and "m.safetensors" in err
    assert not out.exists()


def test_truncated_safetensors(cli, tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(b"\x10\x00")
    _, err = cli("generate", path, code=2)
    assert "too short" in err


def test_one_bad_file_in_a_good_folder(cli, tmp_path):
    folder = hf_folder(tmp_path / "m")
    _safetensors_with_header(folder / "extra.safetensors", header=b"[]")
    bom, err = cli.bom(folder)
    assert "warning: extra.safetensors could not be inspected" in err
    bad = file_component(bom, "extra.safetensors")
    assert "not a JSON object" in prop(bad, "mlbom:inspection-error")
    assert bad["hashes"]  # still hashed and listed
    assert prop(bom["metadata"]["component"], "mlbom:uninspected-file") == "extra.safetensors"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("corrupt.gguf", b"GGUF\x03\x00\x00\x00" + b"\xff" * 16),  # absurd counts
        ("badmagic.gguf", b"GGML" + b"\x00" * 100),
        (
            "truncated.gguf",
            b"GGUF\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x10",
        ),
        ("corrupt.onnx", b"\x0a\xff\xff\xff\xff\x0f garbage"),
        ("wire.onnx", b"\x0f\x01\x02"),
        ("config.json", b"{not json"),
    ],
)
def test_corrupt_files(cli, tmp_path, name, content):
    folder = tmp_path / "m"
    safetensors_file(folder / "good.safetensors", {"w": (2,)})
    (folder / name).write_bytes(content)
    bom, err = cli.bom(folder)
    assert f"{name} could not be inspected" in err
    assert prop(file_component(bom, name), "mlbom:inspection-error")
    single, _ = cli("generate", folder / name, code=2)
    assert single == ""


def test_pickle_that_cannot_be_read_to_its_end_is_unsafe(cli, tmp_path):
    """A corrupt pickle is not 'could not be inspected' and clean: it counts as unsafe."""
    folder = tmp_path / "m"
    safetensors_file(folder / "good.safetensors", {"w": (2,)})
    (folder / "bad.pkl").write_bytes(b"\x80\x04\x95garbage")
    bom, err = cli.bom(folder)
    assert "bad.pkl: could not be fully scanned" in err
    assert prop(file_component(bom, "bad.pkl"), "mlbom:unsafe-import").startswith("<unscanned: ")
    cli("generate", folder, "--fail-on", "unsafe", "-o", tmp_path / "bom.json", code=1)
    assert (tmp_path / "bom.json").is_file()  # written, then the check fails


def test_truncated_onnx(cli, tmp_path):
    path = onnx_file(tmp_path / "m.onnx")
    path.write_bytes(path.read_bytes()[:-100])
    _, err = cli("generate", path, code=2)
    assert "m.onnx" in err


def test_broken_card_yaml_is_a_warning(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n# x\n")
    _bom, err = cli.bom(folder)
    assert "README.md could not be inspected" in err and "YAML" in err
    cli("generate", folder / "README.md", code=2)


def test_yaml_alias_bomb_is_refused(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    lines = ["---", "a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
        for i in range(20)
    ]
    (folder / "README.md").write_text("\n".join([*lines, "---", ""]))
    _, err = cli.bom(folder)
    assert "aliases" in err


def test_archive_bomb(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_UNPACKED", 1 << 20)
    folder = tmp_path / "bomb"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.pt", "w", compression=zipfile.ZIP_DEFLATED) as z:
        # a valid pickle opening followed by 64 MiB that compress to almost nothing
        z.writestr("archive/data.pkl", b"\x80\x02" + b"(" * (64 << 20))
    bom, _err = cli.bom(folder)
    assert "beyond 1 MiB" in prop(file_component(bom, "model.pt"), "mlbom:unsafe-import")


def test_pickle_hostile_lengths_are_bounded(cli, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    # BINBYTES8 claiming 2**62 bytes, and a BINUNICODE claiming 4 GiB
    (folder / "a.pkl").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"x")
    (folder / "b.pkl").write_bytes(b"\x80\x04X" + struct.pack("<I", 0xFFFFFFFF) + b"x")
    bom, _err = cli.bom(folder)
    for name in ("a.pkl", "b.pkl"):
        assert "truncated" in prop(file_component(bom, name), "mlbom:unsafe-import")


def test_missing_path_and_empty_folder(cli, tmp_path):
    _, err = cli("generate", tmp_path / "nope", code=2)
    assert "no such file or folder" in err
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    _, err = cli("generate", tmp_path / "empty", code=2)
    assert "holds no model files" in err


def test_symlink_leaving_the_folder(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (tmp_path / "secret").write_text("password")
    (folder / "leak.txt").symlink_to(tmp_path / "secret")
    _, err = cli("generate", folder, code=2)
    assert "outside the model folder" in err
    (folder / "leak.txt").unlink()
    (folder / "dir").symlink_to(tmp_path, target_is_directory=True)
    _, err = cli("generate", folder, code=2)
    assert "outside the model folder" in err


def test_symlink_inside_the_folder_is_fine(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "alias.safetensors").symlink_to("model.safetensors")
    bom, _ = cli.bom(folder)
    assert (
        file_component(bom, "alias.safetensors")["hashes"]
        == file_component(bom, "model.safetensors")["hashes"]
    )


def test_fifo_is_listed_never_opened(cli, tmp_path):
    """A pipe in the folder is listed with why it cannot be read; the run goes on (and
    never blocks opening it). Named alone, it is refused."""
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    os.mkfifo(folder / "pipe")
    bom, err = cli.bom(folder)
    assert "not a regular file but a pipe" in prop(
        file_component(bom, "pipe"), "mlbom:inspection-error"
    )
    assert "pipe could not be inspected" in err
    _, err = cli("generate", folder / "pipe", code=2)
    assert "not a regular file" in err


def test_symlink_loop_and_dangling_link_are_listed(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "loop").symlink_to("loop")
    (folder / "gone").symlink_to("nothing-here")
    (folder / "a").symlink_to("b")
    (folder / "b").symlink_to("a")
    bom, _ = cli.bom(folder)
    assert prop(file_component(bom, "loop"), "mlbom:inspection-error") == "a symlink loop"
    assert prop(file_component(bom, "a"), "mlbom:inspection-error") == "a symlink loop"
    assert prop(file_component(bom, "gone"), "mlbom:inspection-error") == "a symlink to nothing"
    assert "hashes" not in file_component(bom, "loop")


def test_names_that_are_not_utf8_and_control_characters(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / os.fsdecode(b"caf\xe9.pkl")).write_bytes(pickle_bytes([("os", "system")]))
    (folder / "evil\x1b[2J\nname.pkl").write_bytes(pickle_bytes([("os", "system")]))
    bom, err = cli.bom(folder)
    assert file_component(bom, "caf\\xe9.pkl")["hashes"]  # recorded escaped
    assert "caf\\xe9.pkl: runs os.system" in err
    assert "\x1b" not in err and "evil\\x1b[2J\\nname.pkl: runs os.system" in err


@pytest.mark.parametrize("kind", ["fifo", "dir", "devnull", "link-to-fifo"])
def test_output_that_is_not_a_regular_file_is_refused(cli, tmp_path, kind):
    folder = hf_folder(tmp_path / "m")
    target = {"fifo": tmp_path / "out", "dir": tmp_path / "outdir", "devnull": Path("/dev/null"),
              "link-to-fifo": tmp_path / "link"}[kind]  # fmt: skip
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir":
        target.mkdir()
    elif kind == "link-to-fifo":
        os.mkfifo(tmp_path / "pipe")
        target.symlink_to(tmp_path / "pipe")
    _, err = cli("generate", folder, "-o", target, code=2)
    assert "not a regular file" in err or "is a directory" in err.lower()
    assert kind != "fifo" or target.is_fifo()


def test_failed_run_keeps_existing_output(cli, tmp_path):
    out = tmp_path / "bom.json"
    out.write_text("precious")
    cli("generate", tmp_path / "missing", "-o", out, code=2)
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["bom.json"]  # no temporary left behind


def test_unwritable_output(cli, tmp_path):
    folder = hf_folder(tmp_path / "m")
    _, err = cli("generate", folder, "-o", tmp_path / "no" / "such" / "dir" / "bom.json", code=2)
    assert "cannot write" in err


def test_bad_options(cli, tmp_path):
    folder = hf_folder(tmp_path / "m")
    _, err = cli("generate", folder, "--manufacturer-contact", "x@y.z", code=2)
    assert "--manufacturer" in err
    _, err = cli(
        "generate", folder, "--manufacturer", "A", "--manufacturer-contact", "not a contact", code=2
    )
    assert "neither an e-mail" in err
    cli("generate", folder, "--hash", "md5", code=2)
    cli("generate", folder, "--spec-version", "1.2", code=2)


def test_safe_zip_still_scans_under_the_limit(cli, tmp_path, monkeypatch):
    """The cap is on decompressed bytes: a safe checkpoint under it scans clean."""
    monkeypatch.setattr(archives, "MAX_UNPACKED", 1 << 20)
    folder = tmp_path / "m"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.pt", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pickle_bytes(SAFE_TORCH))
    bom, _ = cli.bom(folder)
    assert prop(file_component(bom, "model.pt"), "mlbom:unsafe-import") is None


def test_card_front_matter_with_too_many_nodes(cli, tmp_path):
    """Building YAML nodes costs Python time: a card cannot ask for millions of them."""
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    front = "".join(f"{i}: [a, b, c, d]\n" for i in range(9_000))  # under 256 KiB
    (folder / "README.md").write_text(f"---\n{front}---\n# T\n")
    _, err = cli.bom(folder)
    assert "README.md could not be inspected" in err and "YAML nodes" in err


def test_every_writer_refuses_a_pipe(cli, tmp_path):
    """The check lives in the one atomic writer: `sign -o` refuses a pipe too."""
    folder = hf_folder(tmp_path / "m")
    bom = tmp_path / "bom.json"
    cli("generate", folder, "-o", bom, "-q")
    cli("keygen", "-o", tmp_path / "k")
    os.mkfifo(tmp_path / "bundle")
    _, err = cli(
        "sign", bom, "--key", tmp_path / "k.key", "-o", tmp_path / "bundle", "--overwrite", code=2
    )
    assert "not a regular file" in err and (tmp_path / "bundle").is_fifo()


def test_a_file_changed_after_it_was_inspected_is_refused(tmp_path, monkeypatch):
    """The BOM pairs what was inspected with the digests of the same bytes: a file swapped
    between the two reads ends the run."""
    import mlbom
    from mlbom import inspectors

    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "model.pkl").write_bytes(pickle_bytes(SAFE_TORCH))
    real = inspectors.inspect

    def inspect_then_swap(blob, context):
        found = real(blob, context)
        if blob.path == "model.pkl":
            (folder / "model.pkl").write_bytes(pickle_bytes([("os", "system")]) + b"  ")
        return found

    monkeypatch.setattr(inspectors, "inspect", inspect_then_swap)
    with pytest.raises(mlbom.errors.BadInputError, match=r"model\.pkl changed while mlbom read it"):
        mlbom.generate(folder, cache=False)
