// A signed credential's Data Integrity proof (W3C vc-di-eddsa v1.0, cryptosuite eddsa-rdfc-2022), checked in the
// browser against the issuer records of a proof bundle ledger.js has verified: the same check, step for step and
// in the same words, as `credledger verify` makes (verifier/credential.py credential_proof_check, on top of
// ledger/vc/proof.py verify_credential).
//
// The proof must be made by the very issuer key that registered the credential on the ledger, named under the
// issuing member's DID (`<did>#<key id hex>`). Which keys count is the ledger's key history: ledger.js has already
// checked that the registering key was valid at the issue and not marked compromised at or before it, so a key
// retired later still verifies what it signed before, and a compromised one does not.
//
// The signed bytes are SHA-256(RDFC-1.0 of the proof configuration) || SHA-256(RDFC-1.0 of the document without
// its proof) (vc-di-eddsa §3.3.4 to §3.3.6), canonicalized by jsonld.js and rdfc.js with the contexts the node
// ships (`/static/contexts.json`, fetched once from this node; never a context from anywhere else).
"use strict";

const DATA_INTEGRITY = (() => {
  const PROOF_TYPE = "DataIntegrityProof";
  const CRYPTOSUITE = "eddsa-rdfc-2022";
  const ASSERTION_METHOD = "assertionMethod";
  const SIGNATURE_SIZE = 64;
  const CONTEXTS_URL = "/static/contexts.json";
  const DATETIME = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
  const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const MAX_BASE58_CHARS = 256;
  const utf8 = new TextEncoder();
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });

  // A refusal naming its check, as ledger/vc/errors.py ProofError does.
  class ProofError extends Error {
    constructor(check, detail) {
      super(`${check}: ${detail}`);
      this.check = check;
      this.detail = detail;
    }
  }

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const typeName = (v) => (v === null || v === undefined ? "NoneType" : Array.isArray(v) ? "list"
    : typeof v === "string" ? "str" : typeof v === "boolean" ? "bool" : typeof v === "number" ? "float"
      : typeof v === "bigint" ? "int" : "dict");

  function base58Decode(text) {
    if (text.length > MAX_BASE58_CHARS) {
      throw new ProofError("proof-value", `base58 value is ${text.length} characters, more than ${MAX_BASE58_CHARS}`);
    }
    let number = 0n;
    for (const char of text) {
      const digit = BASE58.indexOf(char);
      if (digit < 0) throw new ProofError("proof-value", `'${char}' is not a base58btc character`);
      number = number * 58n + BigInt(digit);
    }
    const body = [];
    for (; number > 0n; number >>= 8n) body.unshift(Number(number & 0xffn));
    const zeros = text.length - text.replace(/^1+/, "").length;
    return Uint8Array.from([...new Array(zeros).fill(0), ...body]);
  }

  let contexts = null;

  // The JSON-LD contexts credledger ships, as this node serves them (fetched on first use, then kept).
  async function shippedContexts() {
    if (contexts === null) {
      const response = await fetch(CONTEXTS_URL, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the node did not serve its JSON-LD contexts (HTTP ${response.status})`);
      contexts = await response.json();
    }
    return contexts;
  }

  function theProof(document) {
    let proof = document.proof;
    if (Array.isArray(proof) && proof.length === 1) [proof] = proof;
    if (proof === undefined || proof === null) throw new ProofError("proof-present", "the document carries no proof");
    if (!isObject(proof)) throw new ProofError("proof-present", "expected one proof object");
    return proof;
  }

  function requireString(proof, name, expected, check) {
    const value = proof[name];
    if (typeof value !== "string") throw new ProofError(check, `expected ${name} to be a string, got ${typeName(value)}`);
    if (expected !== null && value !== expected) {
      throw new ProofError(check, `expected ${name} '${expected}', got '${value}'`);
    }
    return value;
  }

  const asArray = (v) => (Array.isArray(v) ? v : [v]);

  function issuerId(document) {
    let issuer = document.issuer;
    if (isObject(issuer)) issuer = issuer.id;
    if (typeof issuer !== "string") throw new ProofError("issuer", "the credential has no issuer id");
    return issuer;
  }

  // `verifyProof` after checking that the proof's key belongs to the credential's issuer (`<issuer>#...`).
  async function verifyCredential(document, resolveKey, documents) {
    if (!isObject(document)) throw new ProofError("document", `expected a JSON object, got ${typeName(document)}`);
    const method = requireString(theProof(document), "verificationMethod", null, "verification-method");
    const controller = method.split("#")[0];
    const issuer = issuerId(document);
    if (controller !== issuer) {
      throw new ProofError("issuer-key", `signed by a key of '${controller}', but the issuer is '${issuer}'`);
    }
    return verifyProof(document, resolveKey, documents);
  }

  // Verify `document`'s eddsa-rdfc-2022 proof for purpose assertionMethod; `resolveKey(method)` gives the raw
  // Ed25519 key or throws a ProofError; `documents` are the JSON-LD contexts it may use (URL -> document).
  // Throws ProofError naming the failed check.
  async function verifyProof(document, resolveKey, documents) {
    if (!isObject(document)) throw new ProofError("document", `expected a JSON object, got ${typeName(document)}`);
    const proof = theProof(document);
    requireString(proof, "type", PROOF_TYPE, "proof-type");
    requireString(proof, "cryptosuite", CRYPTOSUITE, "cryptosuite");
    requireString(proof, "proofPurpose", ASSERTION_METHOD, "proof-purpose");
    const method = requireString(proof, "verificationMethod", null, "verification-method");
    const created = proof.created;
    if (created !== undefined && created !== null && (typeof created !== "string" || !DATETIME.test(created))) {
      throw new ProofError("created", `expected an XML Schema dateTime with a time zone, got ${JSON.stringify(created)}`);
    }
    const proofValue = requireString(proof, "proofValue", null, "proof-value");
    if (!proofValue.startsWith("z")) {
      throw new ProofError("proof-value", `expected a base58btc multibase value starting with 'z', got '${proofValue.slice(0, 20)}'`);
    }
    const signature = base58Decode(proofValue.slice(1));
    if (signature.length !== SIGNATURE_SIZE) {
      throw new ProofError("proof-value", `expected a ${SIGNATURE_SIZE}-byte signature, got ${signature.length} bytes`);
    }
    const unsecured = Object.fromEntries(Object.entries(document).filter(([k]) => k !== "proof"));
    const options = Object.fromEntries(Object.entries(proof).filter(([k]) => k !== "proofValue"));
    if ("@context" in options) {
      // vc-di-eddsa §3.3.2 step 4: the proof's contexts must open the document's, and then they are the document's.
      const proofContext = asArray(options["@context"]);
      const documentContext = asArray(unsecured["@context"]);
      if (JSON.stringify(documentContext.slice(0, proofContext.length)) !== JSON.stringify(proofContext)) {
        throw new ProofError("context", "the proof's @context does not open the document's @context");
      }
      unsecured["@context"] = options["@context"];
    }
    if (!("@context" in unsecured)) throw new ProofError("context", "the document has no @context");
    options["@context"] = unsecured["@context"];
    let publicKey;
    try {
      publicKey = resolveKey(method);
    } catch (error) {
      if (error instanceof ProofError) throw new ProofError("verification-method", `${method}: ${error.message}`);
      throw error;
    }
    let hashData;
    try {
      const configHash = RDFC.sha256Bytes(utf8.encode(JSONLD.canonicalize(options, documents)));
      const documentHash = RDFC.sha256Bytes(utf8.encode(JSONLD.canonicalize(unsecured, documents)));
      hashData = new Uint8Array([...configHash, ...documentHash]);
    } catch (error) {
      if (error instanceof JSONLD.JsonLdError || error instanceof RDFC.RdfError) {
        throw new ProofError("canonicalization", error.message);
      }
      throw error;
    }
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, signature, hashData))) {
      throw new ProofError("signature", `Ed25519 signature does not verify under ${method}`);
    }
    return { verificationMethod: method, created: created ?? null, proofPurpose: ASSERTION_METHOD };
  }

  // The credential's JSON document if `bytes` are a JSON object carrying a `proof` (a standard signed credential),
  // else null -- as verifier/credential.py signed_document() decides.
  function signedDocument(bytes) {
    try {
      const document = JSONLD.parseJson(utf8Strict.decode(bytes));
      return isObject(document) && "proof" in document ? document : null;
    } catch {
      return null;
    }
  }

  // The "credential-proof" check of a signed credential against the issuer records of a verified bundle
  // (`verdict.issuerRecords`, from LEDGER.verifyBundle): {step, ok, detail}, never a thrown ProofError.
  async function checkCredential(document, verdict, documents = null) {
    const step = "credential-proof";
    const records = verdict.issuerRecords;
    if (!records || !records.member || !records.key) {
      return { step, ok: false, detail: "the ledger holds no issuer record to check the proof against" };
    }
    const { member, key } = records;
    const expected = `${member.did}#${LEDGER.toHex(key.key_id)}`;
    const resolve = (method) => {
      if (method !== expected) {
        throw new ProofError("verification-method", `'${method}' is not the key that registered it (${expected})`);
      }
      return key.public_key;
    };
    try {
      await verifyCredential(document, resolve, documents || await shippedContexts());
    } catch (error) {
      if (error instanceof ProofError) return { step, ok: false, detail: `${error.check}: ${error.detail}` };
      return { step, ok: false, detail: `${error.message || error}` };
    }
    return { step, ok: true, detail: `${CRYPTOSUITE} proof by ${expected}, the key that registered it` };
  }

  return { ProofError, verifyProof, verifyCredential, checkCredential, signedDocument, shippedContexts };
})();
