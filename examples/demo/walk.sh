#!/bin/sh
# `make demo`: the whole path on the built-in example, offline, one line per step.
#   walk.sh BIN OUT   (BIN: the folder holding mlbom; OUT: where everything is written)
set -eu
bin=$1
out=$2
here=$(dirname "$0")
rm -rf "$out" && mkdir -p "$out"
bom="$out/tiny-sentiment.cdx.json"

"$bin/mlbom" generate examples/tiny-sentiment --version 1.0.0 --manufacturer "mlbom example" \
    --manufacturer-contact security@example.org -o "$bom" -q
echo "1. generate  the ML-BOM of examples/tiny-sentiment         -> $bom"
"$bin/mlbom" keygen -o "$out/release" 2>/dev/null
echo "2. keygen    a fresh signing key pair                      -> $out/release.key, $out/release.pub"
"$bin/mlbom" sign "$bom" --key "$out/release.key" 2>/dev/null
echo "3. sign      the BOM as an in-toto attestation             -> $bom.sigstore.json"
key=$("$bin/mlbom" push "$bom" --to "$out/store" 2>&1 | sed -n 's/^pushed the attestation of \(sha256:[0-9a-f]*\) .*/\1/p')
echo "4. push      filed under the model's key $key -> $out/store"
cp "$here/policy.yaml" "$out/policy.yaml"
sed "s/MODEL_KEY/$key/" "$here/pods.yaml" > "$out/pods.yaml"
echo "5. review    two pods against the policy ($out/policy.yaml):"
if "$bin/mlbom" admission review "$out/pods.yaml" --policy "$out/policy.yaml" > "$out/review.txt" 2>&1; then
    echo "   expected one pod to be denied" >&2
    exit 1
fi
grep -E '^(allow|DENY)' "$out/review.txt" | cut -c1-150 | sed 's/^/   /'
echo "   (all of it -> $out/review.txt)"
"$bin/mlbom" audit export --store "$out/store" --policy "$out/policy.yaml" --product "mlbom demo" \
    --manufacturer "mlbom example" --contact security@example.org -o "$out/audit.html" 2>/dev/null
"$bin/mlbom" audit export --store "$out/store" --policy "$out/policy.yaml" --product "mlbom demo" \
    --manufacturer "mlbom example" --contact security@example.org -o "$out/audit.zip" 2>/dev/null
echo "6. audit     CRA evidence (report and ZIP package)         -> $out/audit.html, $out/audit.zip"
