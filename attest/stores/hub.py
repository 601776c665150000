"""Attestations in the model's own Hub repository: `mlbom.cdx.json` and
`mlbom.cdx.json.sigstore.json` committed beside the weights, through huggingface-hub.

Pushing commits both files on top of the attested commit (the branch must not have moved
past it), so the new commit holds the model's files and their attestation; pods pin that
commit. Pulling reads both files at the commit the reference names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from attest.stores import (
    BOM_NAME,
    BUNDLE_NAME,
    MAX_ENTRY,
    Attestation,
    NoAttestationError,
    Store,
    StoreAuthError,
    StoreUnreachableError,
)
from mlbom._clients.hub import (
    Hub,
    HubAccessError,
    HubNotFoundError,
    HubUnreachableError,
    hub_errors,
)
from mlbom.errors import BadInputError
from mlbom.references import HubRef, ModelRef


class HubStore(Store):
    def __init__(self, location: str) -> None:
        ref = HubRef.parse(location)
        if ref.revision:
            raise BadInputError(f"a Hub store is a repository: drop @{ref.revision}")
        self.repo = ref.repo
        self.location = location

    def push(self, ref: ModelRef, attestation: Attestation) -> str:
        from huggingface_hub import CommitOperationAdd

        commit = self._check(ref)
        hub = Hub(HubRef(self.repo, commit))
        operations = [
            CommitOperationAdd(path_in_repo=BOM_NAME, path_or_fileobj=attestation.bom),
            CommitOperationAdd(path_in_repo=BUNDLE_NAME, path_or_fileobj=attestation.bundle),
        ]
        with _store_errors(self.location), hub_errors(hub.ref, hub.endpoint):
            info = hub.api.create_commit(
                self.repo,
                operations,
                commit_message=f"ML-BOM and its signed attestation for {commit[:12]}",
                parent_commit=commit,
            )
        return f"hf://{self.repo}@{info.oid}"

    def pull(self, ref: ModelRef) -> Attestation:
        commit = self._check(ref)
        hub = Hub(HubRef(self.repo, commit))
        with _store_errors(self.location):
            files = {f.path: f for f in hub.resolve()}
            if BOM_NAME not in files or BUNDLE_NAME not in files:
                raise NoAttestationError(
                    f"hf://{self.repo}@{commit} holds no {BOM_NAME} and {BUNDLE_NAME}",
                    hint="pin the commit that `mlbom push --to hf://…` made",
                )
            for name in (BOM_NAME, BUNDLE_NAME):
                if files[name].size > MAX_ENTRY:
                    raise BadInputError(f"{name} in hf://{self.repo}@{commit} is too large")
            return Attestation(hub.download(files[BOM_NAME]), hub.download(files[BUNDLE_NAME]))

    def _check(self, ref: ModelRef) -> str:
        if ref.kind != "hf" or ref.name.lower() != self.repo.lower():
            raise BadInputError(
                f"{self.location} holds the attestations of its own model, not of {ref}"
            )
        ref.require_pinned()
        assert ref.digest is not None
        return ref.digest


@contextmanager
def _store_errors(location: str) -> Iterator[None]:
    """The Hub's errors as the store errors the webhook tells apart."""
    try:
        yield
    except HubNotFoundError as e:
        raise NoAttestationError(f"{location}: {e.message}") from None
    except HubAccessError as e:
        raise StoreAuthError(e.message, hint=e.hint) from None
    except HubUnreachableError as e:
        raise StoreUnreachableError(e.message, hint=e.hint) from None
