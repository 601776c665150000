"""The decision log: records chained by hash across rotations, durable before the answer,
and every kind of tampering found."""

from __future__ import annotations

import json
from pathlib import Path

from admission.decisions import DecisionLog, rotated_files, verify_chain


def write(log: DecisionLog, n: int, start: int = 0) -> None:
    """One record at a time: each batch is one record, so rotations are predictable."""
    for i in range(start, start + n):
        log.append({"uid": f"u{i}", "allowed": i % 2 == 0})


def write_batch(log: DecisionLog, n: int, start: int = 0) -> None:
    """Several records made durable by one fsync, as the recorder process writes them."""
    for i in range(start, start + n):
        log.write({"uid": f"u{i}", "allowed": i % 2 == 0})
    log.sync()


def chain(path):
    return verify_chain([*rotated_files(path), path])


def test_chain_across_rotation_and_restart(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, rotate_bytes=2000)
    write(log, 60)
    log.close()
    assert len(rotated_files(path)) >= 2
    log = DecisionLog(path, rotate_bytes=2000)  # a restart continues the same chain
    write(log, 5, start=60)
    log.close()
    report = chain(path)
    assert report.intact, report.findings
    lines = [json.loads(line) for p in report.files for line in Path(p).read_text().splitlines()]
    uids = [r["uid"] for r in lines if "uid" in r]
    assert report.records == len(lines) > 65  # and a "rotated" record opening each new file
    assert sorted(uids, key=lambda u: int(u[1:])) == [f"u{i}" for i in range(65)]


def test_tampering_is_found(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    write_batch(log, 10)  # one batch, one fsync
    log.close()
    lines = path.read_text().splitlines()

    edited = json.loads(lines[3])
    edited["allowed"] = not edited["allowed"]
    path.write_text("\n".join([*lines[:3], json.dumps(edited), *lines[4:]]) + "\n")
    assert any("edited" in f for f in chain(path).findings)

    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # a record deleted
    assert any("does not follow" in f for f in chain(path).findings)

    path.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # reordered
    assert not chain(path).intact

    path.write_text("\n".join([*lines, "{not json"]) + "\n")
    assert any("not a decision record" in f for f in chain(path).findings)


def test_a_missing_rotated_file_breaks_the_chain(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, rotate_bytes=1500)
    write(log, 40)
    log.close()
    rotated = rotated_files(path)
    rotated[0].unlink()
    assert not chain(path).intact


def test_verify_log_command(cli, tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, rotate_bytes=1500)
    write(log, 30)
    log.close()
    out, _ = cli("admission", "verify-log", path)
    rotations = len(rotated_files(path))
    assert "chain intact" in out and f"{30 + rotations} records" in out  # and the "rotated" ones
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[1:]) + "\n")
    out, _ = cli("admission", "verify-log", path, "--json", code=1)
    assert json.loads(out)["findings"]
