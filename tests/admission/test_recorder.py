"""The recorder process: decisions answered only once on disk, and a recorder that cannot
write, or is gone, fails every waiting and later decision (fail closed)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import subprocess
import sys

import msgspec
import pytest
import yaml

from admission.decisions import verify_chain
from admission.recorder import Recorder, RecordingError


def record(i: int) -> dict:
    return {"uid": f"u{i}", "allowed": True, "reason": "verified"}


def test_records_are_on_disk_when_answered(tmp_path, capfd):
    path = tmp_path / "log" / "decisions.jsonl"

    async def go() -> list[str]:
        recorder = Recorder(path)
        await recorder.start()
        await asyncio.gather(*(recorder.record(record(i), durable=True) for i in range(200)))
        on_disk = path.read_text().splitlines()  # before close: answered means written
        await recorder.record(record(999), durable=False)  # a dry run: stderr only
        await recorder.close()
        return on_disk

    on_disk = asyncio.run(go())
    assert len(on_disk) == 200
    report = verify_chain([path])
    assert report.intact and report.records == 200
    lines = capfd.readouterr().err.splitlines()
    assert len([line for line in lines if line.startswith('{"event":"decision"')]) == 201


def test_ctrl_c_leaves_the_recorder_to_the_server(tmp_path):
    path = tmp_path / "decisions.jsonl"

    async def go() -> None:
        recorder = Recorder(path)
        await recorder.start()
        recorder._process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        recorder._process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        await asyncio.sleep(0.2)
        await recorder.record(record(1), durable=True)
        assert recorder.healthy
        await recorder.close()

    asyncio.run(go())
    assert verify_chain([path]).records == 1


def test_a_dead_recorder_denies_and_stays_down(tmp_path):
    async def go() -> Recorder:
        recorder = Recorder(tmp_path / "decisions.jsonl")
        await recorder.start()
        await recorder.record(record(0), durable=True)
        recorder._process.kill()  # type: ignore[union-attr]
        with pytest.raises(RecordingError, match="not running"):
            for i in range(1, 100):  # the first may be sent before the exit is seen
                await recorder.record(record(i), durable=True)
                await asyncio.sleep(0.01)
        await recorder.close()
        return recorder

    assert asyncio.run(go()).healthy is False


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Files the processes started meanwhile write may not grow past `limit` bytes (Python
    ignores SIGXFSZ, so such a write fails with EFBIG: a full disk, in effect)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_failed_write_fails_its_decisions_and_later_ones_are_tried(tmp_path):
    async def go() -> list[object]:
        recorder = Recorder(tmp_path / "decisions.jsonl")
        with file_size_limit(4000):
            await recorder.start()
        results = []
        for i in range(40):  # each record is ~230 bytes: the limit is reached on the way
            try:
                await recorder.record(record(i), durable=True)
                results.append(True)
            except RecordingError as e:
                results.append(str(e))
        await recorder.close()
        return results

    results = asyncio.run(go())
    assert results[0] is True
    failures = [r for r in results if r is not True]
    assert failures and all("could not be written" in str(r) for r in failures)


def test_serve_stops_with_a_clear_error_when_the_log_cannot_be_opened(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(tmp_path / "store")],
        "trust": {"signers": [{"name": "k", "key": {"path": str(tmp_path / "k.pub")}}]},
        "decisionLog": str(not_a_folder / "decisions.jsonl"),
    }))  # fmt: skip
    from attest import keys

    keys.write_key_pair(keys.generate("ecdsa-p256"), tmp_path / "k.key", tmp_path / "k.pub", None)
    from tests.tls import TestCA

    cert, key, _ = TestCA(tmp_path).issue()
    done = subprocess.run(
        [sys.executable, "-m", "mlbom", "admission", "serve", "--policy", str(policy),
         "--tls-cert", str(cert), "--tls-key", str(key), "--port", "0", "--metrics-port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot open the decision log" in done.stderr and "Traceback" not in done.stderr


def test_a_decision_record_encoded_in_two_parts_is_the_record():
    from admission.manifests import admission_request
    from admission.reviewer import Decision

    request = admission_request({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    for decision in (
        Decision(True, 'verified: "quoted" \u00e9', "allowed", "enforce"),
        Decision(False, "denied", "unidentified", None),
    ):
        assert msgspec.json.decode(decision.record_json(request)) == decision.record(request)
        mutated = decision.record_json(request, "mutate")
        assert msgspec.json.decode(mutated) == decision.record(request, "mutate")
