// Reference JavaScript verifier (and signer) that credledger's test suite runs against its credentials.
//
//   node verify.mjs verify DOCUMENTS.json CREDENTIAL.json
//       Verifies CREDENTIAL with @digitalbazaar/vc (DataIntegrityProof, eddsa-rdfc-2022, assertionMethod) and,
//       when it has credentialStatus, checks it with @digitalbazaar/vc-bitstring-status-list. Prints
//       {"verified": bool, "errors": [...], "status": [...]} and exits 0 if verified, 1 if not.
//   node verify.mjs verifier-core CREDENTIAL.json
//       Verifies CREDENTIAL with @digitalcredentials/verifier-core, the Digital Credentials Consortium's wallet and
//       verifier library. It has its own document loader (bundled contexts, did:key resolved locally) and no
//       way to pass ours, so fetch is disabled for it: anything it would fetch (did:web documents, Open Badges
//       JSON schemas) fails and is reported in its log. Prints {"verified": bool, "log": [{id, valid}]}, where
//       verified = valid signature and not expired; exits 0 if verified, 1 if not.
//   node verify.mjs verifier-core-live ORIGINS.json REGISTRY_URL CREDENTIAL.json
//       The same against live nodes, with one known-issuer registry (dcc-legacy at REGISTRY_URL): fetch reaches only
//       the origins ORIGINS.json maps to loopback nodes and the registry. Prints {"log": [{id, valid}], "errors"}.
//   node verify.mjs sign DOCUMENTS.json UNSIGNED.json KEY.json
//       Signs UNSIGNED with the Multikey in KEY ({id, controller, publicKeyMultibase, secretKeyMultibase,
//       created}) and prints the signed credential.
//
// DOCUMENTS.json maps URL -> JSON document: the JSON-LD contexts credledger ships, DID documents and status list
// credentials. It is the only source of documents: anything else is refused, so nothing touches the network.
// Exit status 2: bad usage or input.
import {readFile} from 'node:fs/promises';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';

function offlineLoader(documents) {
  return async url => {
    if(Object.hasOwn(documents, url)) {
      return {contextUrl: null, documentUrl: url, document: structuredClone(documents[url])};
    }
    // A verification method id (<did>#<fragment>) is served out of its DID document.
    const [base] = url.split('#');
    const holder = Object.hasOwn(documents, base) ? documents[base] : null;
    const method = holder && (holder.verificationMethod || []).find(m => m.id === url);
    if(method) {
      return {contextUrl: null, documentUrl: url, document: {'@context': holder['@context'], ...method}};
    }
    throw new Error(`document ${url} is not available offline`);
  };
}

async function readJson(path) {
  return JSON.parse(await readFile(path, 'utf8'));
}

function messages(result) {
  const found = [];
  const walk = error => {
    if(!error) {
      return;
    }
    if(Array.isArray(error)) {
      error.forEach(walk);
      return;
    }
    found.push(String(error.message || error));
    walk(error.errors);
  };
  walk(result.error);
  for(const r of result.results || []) {
    walk(r.error);
  }
  return found;
}

async function verify(documentsPath, credentialPath) {
  const documentLoader = offlineLoader(await readJson(documentsPath));
  const credential = await readJson(credentialPath);
  const suite = new DataIntegrityProof({cryptosuite});
  const result = await vc.verifyCredential({
    credential, suite, documentLoader,
    checkStatus: options => checkStatus({...options, suite, documentLoader}),
  });
  const status = (result.statusResult?.results || []).map(r => ({
    purpose: r.credentialStatus?.statusPurpose, status: r.status, verified: r.verified,
  }));
  const errors = messages(result);
  if(result.statusResult && !result.statusResult.verified) {
    errors.push(...messages(result.statusResult));
  }
  process.stdout.write(JSON.stringify({verified: result.verified, errors, status}) + '\n');
  return result.verified ? 0 : 1;
}

async function verifyWithVerifierCore(credentialPath) {
  globalThis.fetch = async url => {
    throw new Error(`network disabled: ${url}`);
  };
  // verifier-core logs its diagnostics to stdout; keep stdout for our one line of JSON.
  console.log = console.error;
  const {verifyCredential} = await import('@digitalcredentials/verifier-core');
  const credential = await readJson(credentialPath);
  const result = await verifyCredential({credential, knownDIDRegistries: []});
  const log = (result.log || []).map(({id, valid}) => ({id, valid}));
  const valid = id => log.some(entry => entry.id === id && entry.valid);
  const verified = valid('valid_signature') && valid('expiration');
  process.stdout.write(JSON.stringify({verified, log, errors: result.errors || []}) + '\n');
  return verified ? 0 : 1;
}

// Verifies CREDENTIAL with verifier-core against live nodes: fetch reaches exactly the origins in ORIGINS.json
// ({"https://m0.test": "http://127.0.0.1:8701", ...}: did:web documents and status lists, rewritten to the loopback
// node) and the registry URL (a loopback node's /v1/registry.json, the one known-issuer registry configured).
async function verifyWithVerifierCoreLive(originsPath, registryUrl, credentialPath) {
  const origins = await readJson(originsPath);
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    if(url === registryUrl) {
      return realFetch(url, init);
    }
    for(const [origin, local] of Object.entries(origins)) {
      if(url.startsWith(origin + '/')) {
        return realFetch(local + url.slice(origin.length), init);
      }
    }
    throw new Error(`network disabled: ${url}`);
  };
  console.log = console.error;
  const {verifyCredential} = await import('@digitalcredentials/verifier-core');
  const credential = await readJson(credentialPath);
  const knownDIDRegistries = [{type: 'dcc-legacy', name: 'credledger members', url: registryUrl}];
  const result = await verifyCredential({credential, knownDIDRegistries});
  const log = (result.log || []).map(({id, valid}) => ({id, valid}));
  process.stdout.write(JSON.stringify({log, errors: result.errors || []}) + '\n');
  return 0;
}

async function sign(documentsPath, unsignedPath, keyPath) {
  const documentLoader = offlineLoader(await readJson(documentsPath));
  const credential = await readJson(unsignedPath);
  const {created, ...multikey} = await readJson(keyPath);
  const keyPair = await Ed25519Multikey.from({type: 'Multikey', ...multikey});
  const suite = new DataIntegrityProof({signer: keyPair.signer(), cryptosuite, date: created});
  const signed = await vc.issue({credential, suite, documentLoader});
  process.stdout.write(JSON.stringify(signed) + '\n');
  return 0;
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  verify: [verify, 2],
  'verifier-core': [verifyWithVerifierCore, 1],
  'verifier-core-live': [verifyWithVerifierCoreLive, 3],
  sign: [sign, 3],
};
if(!Object.hasOwn(commands, command) || args.length !== commands[command][1]) {
  process.stderr.write(
    'usage: node verify.mjs verify DOCUMENTS CREDENTIAL | verifier-core CREDENTIAL | ' +
    'verifier-core-live ORIGINS REGISTRY_URL CREDENTIAL | sign DOCUMENTS UNSIGNED KEY\n');
  process.exit(2);
}
try {
  process.exitCode = await commands[command][0](...args);
} catch(error) {
  process.stderr.write(`${command} failed: ${error.message}\n`);
  process.exitCode = 2;
}
