"""Is this model attested? A pinned model reference in, a `Verdict` out: its attestation
found in the policy's stores (in order), verified offline against the policy's signers, bound
to the reference, and its BOM checked against the policy's requirements.

Verdicts are cached (successes and failures with their own time to live, bounded in size),
and identical concurrent lookups are made once: a burst of pods naming one model costs one
verification. The work itself runs in threads, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from attest.statement import bom_sha256, parse_bom
from attest.stores import (
    CorruptEntryError,
    Store,
    bom_reference,
    describes,
    entries,
    open_store,
)
from attest.verify import MAX_BUNDLE, verify
from mlbom.errors import MlbomError, NotVerifiedError
from mlbom.references import ModelRef, parse

if TYPE_CHECKING:
    from admission.policy import Policy

T = TypeVar("T")
Outcome = Literal["verified", "no-attestation", "unreachable", "not-verified", "policy", "oms"]
#: at most this much of a Hub model's git-stored files is downloaded to check an OMS signature
OMS_DOWNLOAD_BUDGET = 64 << 20


@dataclass(frozen=True)
class Verdict:
    """What is known of one model: `ok`, the outcome, and a reason a person can act on."""

    reference: str
    outcome: Outcome
    reason: str
    signer: str | None = None
    store: str | None = None
    bom: dict[str, Any] | None = None
    #: `bom_sha256(bom)`: what load-time verification pins
    bom_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """Verified with an ML-BOM. An `oms` verdict (an OpenSSF model signature and no
        BOM) is enough only where the policy's `oms.accept` says so: the reviewer decides."""
        return self.outcome == "verified"


class ModelVerifier:
    def __init__(
        self,
        policy: Policy,
        stores: list[Store] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_cache: Callable[[bool], None] | None = None,
    ) -> None:
        self.policy = policy
        self.stores = stores if stores is not None else [open_store(s) for s in policy.stores]
        self.clock = clock
        self.on_cache = on_cache or (lambda hit: None)
        self._cache: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()
        self._running: dict[str, asyncio.Future[Verdict]] = {}

    async def check(self, reference: str) -> Verdict:
        """The verdict for a pinned reference, from the cache when fresh."""
        cached = self._cache.get(reference)
        if cached and cached[0] > self.clock():
            self._cache.move_to_end(reference)
            self.on_cache(True)
            return cached[1]
        self.on_cache(False)
        running = self._running.get(reference)
        if running is None:  # the first asker does the work; the others wait for it
            running = asyncio.ensure_future(asyncio.to_thread(self.check_now, reference))
            self._running[reference] = running
            running.add_done_callback(lambda _: self._running.pop(reference, None))
        verdict = await asyncio.shield(running)
        self._remember(verdict)
        return verdict

    def _remember(self, verdict: Verdict) -> None:
        settings = self.policy.verification
        trusted = verdict.ok or verdict.outcome == "oms"  # a signature is judged per namespace
        ttl = settings.cache_success_seconds if trusted else settings.cache_failure_seconds
        if ttl <= 0:
            return
        self._cache[verdict.reference] = (self.clock() + ttl, verdict)
        self._cache.move_to_end(verdict.reference)
        while len(self._cache) > settings.cache_entries:
            self._cache.popitem(last=False)

    def check_now(self, reference: str) -> Verdict:
        """The verdict, worked out now (blocking): store by store, then signer by signer."""
        ref = parse(reference).require_pinned()
        unreachable: list[str] = []
        for store, entry in entries(self.stores, ref):
            if isinstance(entry, CorruptEntryError):
                return Verdict(reference, "not-verified", f"the attestation of {reference} in {store.location} is corrupt: {entry.message}", store=store.location)  # fmt: skip
            if isinstance(entry, MlbomError):
                unreachable.append(f"{store.location}: {entry.message}")
                continue
            return self._verify(ref, reference, entry.bom, entry.bundle, store.location)
        if not unreachable and (found := self._oms_verdict(ref, reference)):
            return found
        if unreachable:
            return Verdict(
                reference,
                "unreachable",
                f"the attestation of {reference} could not be looked up ({'; '.join(unreachable)}); "
                "denied while the store is unreachable",
            )
        where = ", ".join(s.location for s in self.stores) or "no store (the policy names none)"
        return Verdict(
            reference,
            "no-attestation",
            f"model {reference} has no attestation in {where}; "
            "generate its BOM, sign it with mlbom sign and publish it with mlbom push",
        )

    def _oms_verdict(self, ref: ModelRef, reference: str) -> Verdict | None:
        """A Hub model without an ML-BOM: its OpenSSF model signature (`model.sig`), checked
        against the commit's listing (no weights downloaded) and the policy's OMS signers.
        None when the policy trusts no OMS signer or the commit holds no signature."""
        from attest.model_signatures import verify_listing
        from mlbom._clients.hub import Hub, HubUnreachableError
        from mlbom.references import HubRef

        oms = self.policy.oms
        if not oms.signers or ref.kind != "hf" or ref.digest is None:
            return None
        hub = Hub(HubRef(ref.name, ref.digest))
        where = f"hf://{ref.name}@{ref.digest}"
        try:
            files = {f.path: f for f in hub.resolve()}
            name = next((n for n in oms.signature_files if n in files), None)
            if name is None:
                return None
            if files[name].size > MAX_BUNDLE:
                return Verdict(reference, "not-verified", f"{where}/{name} is larger than a signature may be", store=where)  # fmt: skip
            signature = hub.download(files[name])
            listing = hub.sha256s([f for n, f in files.items() if n != name], OMS_DOWNLOAD_BUDGET)
        except HubUnreachableError as e:
            return Verdict(reference, "unreachable", f"the Hub could not be asked for the model signature of {reference} ({e.message}); denied while it is unreachable")  # fmt: skip
        except MlbomError as e:
            return Verdict(reference, "not-verified", f"the model signature of {reference} could not be read: {e.message}", store=where)  # fmt: skip
        found = _first_verifying(oms.signers, lambda signer: verify_listing(
            signature, signer, listing, signature_name=name,
            trusted_root=self.policy.trusted_root, trust_config=self.policy.trust_config,
        ))  # fmt: skip
        if isinstance(found, list):
            return Verdict(reference, "not-verified", f"the OpenSSF model signature {where}/{name} is not signed by a trusted OMS signer ({'; '.join(found)[:1500]})", store=f"{where}/{name}")  # fmt: skip
        named, result = found
        return Verdict(
            reference, "oms",
            f"{reference} has no ML-BOM; its OpenSSF model signature {name} is signed by {named.name} ({result.signer}) and covers its {len(listing)} files",
            named.name, f"{where}/{name}",
        )  # fmt: skip

    def _verify(
        self, ref: ModelRef, reference: str, bom_bytes: bytes, bundle: bytes, store: str
    ) -> Verdict:
        try:
            bom = parse_bom(bom_bytes, f"the BOM of {reference}")
        except MlbomError as e:
            return Verdict(reference, "not-verified", e.message, store=store)
        found = _first_verifying(self.policy.signers, lambda signer: verify(
            bom, bundle, signer, trusted_root=self.policy.trusted_root,
            trust_config=self.policy.trust_config, offline=True,
        ))  # fmt: skip
        if isinstance(found, list):
            detail = "; ".join(found) or "the policy trusts no signer"
            return Verdict(
                reference,
                "not-verified",
                f"the attestation of {reference} in {store} is not signed by a trusted signer ({detail})",
                store=store,
            )
        named, result = found
        if not describes(bom, ref):
            return Verdict(reference, "not-verified", f"the attestation filed under {reference} describes {bom_reference(bom)}, not this model", store=store)  # fmt: skip
        problems = self.policy.bom_problems(bom)
        pin = bom_sha256(bom)
        if problems:
            return Verdict(reference, "policy", f"the BOM of {reference} (signed by {named.name}) does not meet the policy: {'; '.join(problems)}", named.name, store, bom, pin)  # fmt: skip
        return Verdict(reference, "verified", f"{reference} is signed by {named.name} ({result.signer})", named.name, store, bom, pin)  # fmt: skip


def _first_verifying(signers: Sequence[Any], attempt: Callable[[Any], T]) -> tuple[Any, T] | list[str]:  # fmt: skip
    """The first of the named `signers` whose signer `attempt` accepts, with its result; else
    why each refused. A signature the libraries choke on is a refusal like any other."""
    failures = []
    for named in signers:
        try:
            return named, attempt(named.signer)
        except NotVerifiedError as e:
            failures.append(f"{named.name}: {e.check}: {e.reason}")
        except MlbomError as e:
            failures.append(f"{named.name}: {e.message}")
        except Exception as e:  # hostile input inside cryptography or sigstore
            failures.append(f"{named.name}: unreadable ({type(e).__name__})")
    return failures


def verdict_record(verdict: Verdict) -> dict[str, Any]:
    """What the decision log keeps of a verdict (not the BOM); an `oms` verdict's store is
    the signature it rests on."""
    evidence = {"oms": "oms-signature"}.get(verdict.outcome, "ml-bom" if verdict.bom else None)
    return {
        "model": verdict.reference,
        "outcome": verdict.outcome,
        "signer": verdict.signer,
        "store": verdict.store,
        "evidence": evidence,
    }
