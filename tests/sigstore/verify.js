#!/usr/bin/env node
// An independent check of a Sigstore bundle with sigstore-js (@sigstore/verify), for mlbom's
// tests: nothing here shares code with the Python verifier.
//
//   node verify.js --bundle B --trusted-root TR.json --identity SAN --issuer ISS
//   node verify.js --bundle B --key PUBLIC.pem
//
// Keyless: the certificate chains to the trusted root at the log's integrated time, its SCT
// and the log entry verify, and its SAN and OIDC issuer equal the given ones exactly.
// Key: the bundle's key hint names the given key, which must verify the DSSE signature; key
// bundles carry no log entry and no timestamp, so those thresholds are 0.
// Prints one JSON line; exit 0 verified, 1 not verified, 2 bad usage.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

// The protobuf-specs @sigstore/verify itself uses, wherever npm put it.
const { TrustedRoot } = require(
  require.resolve('@sigstore/protobuf-specs', {
    paths: [path.dirname(require.resolve('@sigstore/verify'))],
  })
);

const TRUSTED_ROOT_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';

function args(argv) {
  const known = new Set(['--bundle', '--trusted-root', '--identity', '--issuer', '--key']);
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!known.has(argv[i]) || argv[i + 1] === undefined) {
      usage(`unknown or incomplete option ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  if (!out.bundle) usage('--bundle is required');
  if (out.key ? out.identity || out.issuer : !(out['trusted-root'] && out.identity && out.issuer)) {
    usage('give --key, or --trusted-root with --identity and --issuer');
  }
  return out;
}

function usage(message) {
  process.stdout.write(`${JSON.stringify({ verified: false, usage: message })}\n`);
  process.exit(2);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function keyed(pem) {
  const key = crypto.createPublicKey(pem);
  const der = key.export({ format: 'der', type: 'spki' });
  const hint = crypto.createHash('sha256').update(der).digest('base64');
  const root = TrustedRoot.fromJSON({
    mediaType: TRUSTED_ROOT_TYPE,
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
  const material = toTrustMaterial(root, (wanted) => {
    if (wanted !== hint) {
      throw new Error(`the bundle names key ${wanted}, not this key (${hint})`);
    }
    return { publicKey: key, validFor: () => true };
  });
  const options = { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 };
  return { verifier: new Verifier(material, options), policy: undefined };
}

function keyless(trustedRootPath, identity, issuer) {
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(trustedRootPath, 'utf8')));
  const policy = {
    subjectAlternativeName: new RegExp(`^${escape(identity)}$`),
    extensions: { issuer },
  };
  return { verifier: new Verifier(toTrustMaterial(root)), policy };
}

function main() {
  const opts = args(process.argv.slice(2));
  let signer;
  try {
    const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(opts.bundle, 'utf8')));
    const { verifier, policy } = opts.key
      ? keyed(fs.readFileSync(opts.key))
      : keyless(opts['trusted-root'], opts.identity, opts.issuer);
    signer = verifier.verify(toSignedEntity(bundle), policy);
  } catch (e) {
    const name = e.code ? `${e.name} ${e.code}` : e.name;
    const failure = { verified: false, error: `${name}: ${e.message}` };
    process.stdout.write(`${JSON.stringify(failure)}\n`);
    process.exit(1);
  }
  const identity = signer.identity || {};
  const result = {
    verified: true,
    identity: identity.subjectAlternativeName || null,
    issuer: (identity.extensions && identity.extensions.issuer) || null,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main();
