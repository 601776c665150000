#!/usr/bin/env node
// A local Sigstore instance for mlbom's tests: Fulcio (POST /api/v2/signingCert) and Rekor v1
// (POST /api/v1/log/entries) on 127.0.0.1, built from @sigstore/mock's CA, CT log and
// transparency log, speaking the wire protocol sigstore-python 4.x speaks.
//
// On start it prints one JSON line on stdout and then serves until killed:
//   {"url": BASE, "trustConfig": {ClientTrustConfig}, "tlogs": {"late": URL, "early": URL}}
// The trust config's signing config points at BASE; "late" and "early" are the same
// transparency log (same key, same trusted root) whose clock runs one hour ahead or behind,
// for bundles whose integrated time falls outside the signing certificate's validity.
//
// The @sigstore/mock handlers are written for sigstore-js; sigstore-python differs on the
// wire, and this server adapts the requests before handing them on:
//   - the identity token comes as `Authorization: Bearer`, the handler wants it in
//     `credentials.oidcIdentityToken`;
//   - the CSR comes base64-encoded, the handler wants PEM;
//   - a Rekor `dsse` entry comes as `proposedContent`, the handler stores the body as given,
//     while Rekor stores (and clients check) the canonical {envelopeHash, payloadHash,
//     signatures}.
// It also does what real Fulcio and Rekor do and the mock leaves out: the CSR's signature
// (proof of possession) and the DSSE signatures are checked, expired tokens and tokens not
// for the `sigstore` audience are refused, and the identity goes into the SAN as Fulcio puts
// it (a verified `email` as an RFC 822 name, GitHub's `job_workflow_ref` as a
// https://github.com/ URI, else `sub` as a URI). The token's own signature is not checked:
// there is no identity provider whose keys this Fulcio could trust.
'use strict';

require('reflect-metadata');
const crypto = require('crypto');
const http = require('http');
const path = require('path');
const {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  rekorHandler,
} = require('@sigstore/mock');

// The mock's own copies of its dependencies, wherever npm put them: the SAN patch below must
// reach the very module the mock's CA uses.
const fromMock = (name) =>
  require(require.resolve(name, { paths: [path.dirname(require.resolve('@sigstore/mock'))] }));
const x509 = fromMock('@peculiar/x509');
const jose = fromMock('jose');

const HOUR = 3600 * 1000;
const MAX_BODY = 1 << 20;
const OPERATOR = 'mlbom-tests';
const TEST_ISSUER = 'https://accounts.example.com';

// The mock CA writes every SAN as a URI. Fulcio writes email identities as RFC 822 names:
// a SAN value carrying this marker (set below, never from a request) becomes one.
const EMAIL_MARKER = '\u0000rfc822\u0000';
const OriginalSAN = x509.SubjectAlternativeNameExtension;
x509.SubjectAlternativeNameExtension = class extends OriginalSAN {
  constructor(names, ...rest) {
    if (Array.isArray(names)) {
      names = names.map((n) =>
        n.type === 'url' && n.value.startsWith(EMAIL_MARKER)
          ? { type: 'email', value: n.value.slice(EMAIL_MARKER.length) }
          : n
      );
    }
    super(names, ...rest);
  }
};

const ecKeyPair = (namedCurve) => crypto.generateKeyPairSync('ec', { namedCurve });
const spki = (publicKey) => publicKey.export({ format: 'der', type: 'spki' });
const sha256 = (data) => crypto.createHash('sha256').update(data).digest();
const b64 = (data) => Buffer.from(data).toString('base64');

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// -- Fulcio --------------------------------------------------------------------------------

// The SAN Fulcio would write for these claims, and why it would refuse them.
function identityOf(claims) {
  if (typeof claims.email === 'string') {
    if (claims.email_verified !== true) {
      throw new HttpError(400, 'email identity is not verified (email_verified)');
    }
    return EMAIL_MARKER + claims.email;
  }
  if (typeof claims.job_workflow_ref === 'string') {
    return `https://github.com/${claims.job_workflow_ref}`;
  }
  if (typeof claims.sub === 'string' && claims.sub) {
    return claims.sub;
  }
  throw new HttpError(400, 'the token has no identity claim (email, job_workflow_ref, sub)');
}

function checkToken(token) {
  let claims;
  try {
    claims = jose.decodeJwt(token);
  } catch (e) {
    throw new HttpError(401, `malformed identity token: ${e.message}`);
  }
  const now = Date.now() / 1000;
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes('sigstore')) {
    throw new HttpError(401, 'the identity token is not for the sigstore audience');
  }
  if (typeof claims.exp !== 'number' || claims.exp <= now) {
    throw new HttpError(401, 'the identity token has expired');
  }
  if (typeof claims.nbf === 'number' && claims.nbf > now + 5) {
    throw new HttpError(401, 'the identity token is not valid yet');
  }
  if (typeof claims.iss !== 'string' || !claims.iss) {
    throw new HttpError(401, 'the identity token has no issuer');
  }
  return claims;
}

async function csrPem(encoded) {
  if (typeof encoded !== 'string') {
    throw new HttpError(400, 'no certificateSigningRequest');
  }
  const pem = encoded.includes('-----BEGIN')
    ? encoded
    : Buffer.from(encoded, 'base64').toString('utf8');
  let csr;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new HttpError(400, `malformed CSR: ${e.message}`);
  }
  if (!(await csr.verify())) {
    throw new HttpError(400, 'the CSR is not signed by its own key (no proof of possession)');
  }
  return pem;
}

async function signingCert(ca, req, body) {
  const request = JSON.parse(body);
  let token = request.credentials && request.credentials.oidcIdentityToken;
  const auth = req.headers.authorization || '';
  if (!token && auth.startsWith('Bearer ')) {
    token = auth.slice('Bearer '.length).trim();
  }
  if (!token) {
    throw new HttpError(401, 'no identity token (Authorization: Bearer)');
  }
  const claims = checkToken(token);
  const subject = identityOf(claims);
  const adapted = { credentials: { oidcIdentityToken: token } };
  if (request.publicKeyRequest) {
    adapted.publicKeyRequest = request.publicKeyRequest;
  } else {
    adapted.certificateSigningRequest = await csrPem(request.certificateSigningRequest);
  }
  const issuing = {
    get rootCertificate() {
      return ca.rootCertificate;
    },
    issueCertificate: (options) => ca.issueCertificate({ ...options, subjectAltName: subject }),
  };
  return fulcioHandler(issuing).fn(JSON.stringify(adapted));
}

// -- Rekor ---------------------------------------------------------------------------------

function pae(payloadType, payload) {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

// The dsse/0.0.1 body Rekor stores for a proposed envelope, after checking its signatures.
function canonicalDsse(proposed) {
  const { envelope, verifiers } = proposed;
  if (typeof envelope !== 'string' || !Array.isArray(verifiers) || verifiers.length === 0) {
    throw new HttpError(400, 'dsse proposedContent needs an envelope and verifiers');
  }
  const env = JSON.parse(envelope);
  const payload = Buffer.from(env.payload || '', 'base64');
  const keys = verifiers.map((v) => new crypto.X509Certificate(Buffer.from(v, 'base64')).publicKey);
  const signatures = (env.signatures || []).map((s) => {
    const index = keys.findIndex((key) =>
      crypto.verify('sha256', pae(env.payloadType, payload), key, Buffer.from(s.sig, 'base64'))
    );
    if (index < 0) {
      throw new HttpError(400, 'a DSSE signature does not verify with any verifier');
    }
    return { signature: s.sig, verifier: verifiers[index] };
  });
  if (signatures.length === 0) {
    throw new HttpError(400, 'the envelope has no signatures');
  }
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelope)).toString('hex') },
      payloadHash: { algorithm: 'sha256', value: sha256(payload).toString('hex') },
      signatures,
    },
  };
}

async function createEntry(tlog, body) {
  const proposed = JSON.parse(body);
  const spec = proposed && proposed.spec;
  const adapted =
    proposed.kind === 'dsse' && spec && spec.proposedContent
      ? canonicalDsse(spec.proposedContent)
      : proposed;
  return rekorHandler(tlog).fn(JSON.stringify(adapted));
}

// -- the instance --------------------------------------------------------------------------

function trustConfig(base, ca, ctKeys, tlogKeys) {
  const validFor = { start: new Date(Date.now() - 24 * HOUR).toISOString() };
  const ctDer = spki(ctKeys.publicKey);
  const tlogDer = spki(tlogKeys.publicKey);
  const service = (url) => ({ url, majorApiVersion: 1, validFor, operator: OPERATOR });
  return {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot: {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: base,
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(tlogDer), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
          logId: { keyId: b64(sha256(tlogDer)) },
          operator: OPERATOR,
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: base,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor,
          operator: OPERATOR,
        },
      ],
      ctlogs: [
        {
          baseUrl: base,
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: b64(ctDer), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
          logId: { keyId: b64(sha256(ctDer)) },
          operator: OPERATOR,
        },
      ],
      timestampAuthorities: [],
    },
    signingConfig: {
      mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
      caUrls: [service(base)],
      oidcUrls: [service(TEST_ISSUER)],
      rekorTlogUrls: [service(base)],
      rekorTlogConfig: { selector: 'ANY' },
      tsaUrls: [],
      tsaConfig: { selector: 'ANY' },
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function main() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  const caKeys = ecKeyPair('secp384r1');
  const ctKeys = ecKeyPair('prime256v1');
  const tlogKeys = ecKeyPair('prime256v1');
  const ca = await initializeCA(caKeys, await initializeCTLog(ctKeys));
  const now = Date.now();
  // One log, three clocks: the true one, and one hour ahead or behind.
  const tlogs = {
    '': await initializeTLog(base, tlogKeys),
    '/late': await initializeTLog(base, tlogKeys, new Date(now + HOUR)),
    '/early': await initializeTLog(base, tlogKeys, new Date(now - HOUR)),
  };

  server.on('request', async (req, res) => {
    const url = new URL(req.url, base);
    let result;
    try {
      const body = req.method === 'POST' ? await readBody(req) : '';
      const rekor = url.pathname.match(/^(|\/late|\/early)\/api\/v1\/log\/entries$/);
      if (req.method === 'POST' && url.pathname === '/api/v2/signingCert') {
        result = await signingCert(ca, req, body);
      } else if (req.method === 'POST' && rekor) {
        result = await createEntry(tlogs[rekor[1]], body);
      } else {
        throw new HttpError(404, `no route for ${req.method} ${url.pathname}`);
      }
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 400;
      result = {
        statusCode: status,
        response: JSON.stringify({ code: status, message: e.message }),
        contentType: 'application/json',
      };
    }
    if (result.statusCode >= 400) {
      const said = `${result.statusCode} ${result.response}`;
      process.stderr.write(`${req.method} ${url.pathname}: ${said}\n`);
    }
    res.writeHead(result.statusCode, { 'Content-Type': result.contentType || 'text/plain' });
    res.end(result.response);
  });

  const hello = {
    url: base,
    trustConfig: trustConfig(base, ca, ctKeys, tlogKeys),
    tlogs: { late: `${base}/late`, early: `${base}/early` },
  };
  process.stdout.write(`${JSON.stringify(hello)}\n`);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
