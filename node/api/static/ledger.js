// credledger's proof verifier for the browser: a credledger-proof/v1 bundle checked against a genesis file,
// the same steps as ledger/bundle.py (DESIGN §8), with nothing but the browser's WebCrypto (SHA-256, Ed25519).
//
// Written from the specifications the Python code cites: canonical msgpack (nil, bool, int, str, bin, array
// only), RFC 6962 / RFC 9162 Merkle inclusion proofs, the sparse Merkle map of DESIGN §5, C2SP signed notes and
// checkpoints, and RFC 8785 JSON canonicalisation for credential digests. Every check either passes and is
// recorded, or throws a ProofError naming its step -- never a silent false.
"use strict";

const LEDGER = (() => {
  const utf8 = new TextEncoder();
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });

  // Domain-separation prefixes and hash tags, as in ledger/domains.py.
  const LOG_LEAF = Uint8Array.of(0x00);
  const LOG_NODE = Uint8Array.of(0x01);
  const SMT_LEAF = Uint8Array.of(0x02);
  const SMT_NODE = Uint8Array.of(0x03);
  const EVENT = utf8.encode("credledger/event/v1\0");
  const HEADER = utf8.encode("credledger/header/v1\0");
  const VALIDATOR_SET = utf8.encode("credledger/validator-set/v1\0");
  const GENESIS = utf8.encode("credledger/genesis/v1\0");
  const STATE_CRED = utf8.encode("cred\0");
  const STATE_MEMBER = utf8.encode("member\0");
  const STATE_KEY = utf8.encode("key\0");
  const FORMAT = "credledger-proof/v1";
  const HASH_SIZE = 32;
  const KEY_BITS = 256;

  class ProofError extends Error {
    constructor(step, detail) {
      super(`${step}: ${detail}`);
      this.step = step;
      this.detail = detail;
    }
  }

  // --- bytes --------------------------------------------------------------------------------------------------

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fromHex(text) {
    if (!/^([0-9a-fA-F]{2})*$/.test(text)) throw new Error("not hexadecimal");
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }

  function toBase64(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  function fromBase64(text, what) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw new ProofError("format", `${what} is not standard base64`);
    }
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }

  // --- canonical msgpack ----------------------------------------------------------------------------------------

  // Decodes one value, refusing anything the project's codec would not have written: other types, integers or
  // lengths not in their shortest form, trailing bytes. Arrays come back with the byte span of each item, which
  // is how an event's signed bytes are cut out of its encoding.
  function unpack(bytes, what) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    const fail = (detail) => {
      throw new ProofError("format", `${what}: ${detail} at byte ${at}`);
    };
    const need = (n) => {
      if (at + n > bytes.length) fail("truncated");
    };
    const uint = (size) => {
      need(size);
      let v;
      if (size === 1) v = view.getUint8(at);
      else if (size === 2) v = view.getUint16(at);
      else if (size === 4) v = view.getUint32(at);
      else {
        const big = view.getBigUint64(at);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) fail("integer beyond 2^53");
        v = Number(big);
      }
      at += size;
      return v;
    };
    const minimal = (value, smallest) => {
      if (value < smallest) fail("non-canonical length or integer encoding");
      return value;
    };
    const raw = (n) => {
      need(n);
      const out = bytes.slice(at, at + n);
      at += n;
      return out;
    };
    const str = (n) => {
      try {
        return utf8Strict.decode(raw(n));
      } catch {
        return fail("string is not UTF-8");
      }
    };
    const array = (n) => {
      const items = [];
      const spans = [];
      for (let i = 0; i < n; i++) {
        const start = at;
        items.push(value());
        spans.push([start, at]);
      }
      items.spans = spans;
      return items;
    };
    const value = () => {
      need(1);
      const tag = bytes[at++];
      if (tag <= 0x7f) return tag;
      if (tag >= 0x90 && tag <= 0x9f) return array(tag & 0x0f);
      if (tag >= 0xa0 && tag <= 0xbf) return str(tag & 0x1f);
      switch (tag) {
        case 0xc0: return null;
        case 0xc2: return false;
        case 0xc3: return true;
        case 0xc4: return raw(uint(1));
        case 0xc5: return raw(minimal(uint(2), 0x100));
        case 0xc6: return raw(minimal(uint(4), 0x10000));
        case 0xcc: return minimal(uint(1), 0x80);
        case 0xcd: return minimal(uint(2), 0x100);
        case 0xce: return minimal(uint(4), 0x10000);
        case 0xcf: return minimal(uint(8), 0x100000000);
        case 0xd9: return str(minimal(uint(1), 0x20));
        case 0xda: return str(minimal(uint(2), 0x100));
        case 0xdb: return str(minimal(uint(4), 0x10000));
        case 0xdc: return array(minimal(uint(2), 0x10));
        case 0xdd: return array(minimal(uint(4), 0x10000));
        default: return fail(`type 0x${tag.toString(16)} is never written by the codec`);
      }
    };
    const result = value();
    if (at !== bytes.length) fail(`${bytes.length - at} trailing bytes`);
    return result;
  }

  // Encodes nil, booleans, non-negative integers, strings, bytes and arrays in the shortest form (as msgpack-python
  // with use_bin_type does), for hashing the genesis and validator sets the page is given.
  function pack(value) {
    const out = [];
    const head = (tag, size, n) => {
      out.push(Uint8Array.of(tag));
      const b = new Uint8Array(size);
      const v = new DataView(b.buffer);
      if (size === 1) v.setUint8(0, n);
      else if (size === 2) v.setUint16(0, n);
      else if (size === 4) v.setUint32(0, n);
      else v.setBigUint64(0, BigInt(n));
      out.push(b);
    };
    const length = (n, fix, fixMax, tags, allow8) => {
      if (fix !== null && n <= fixMax) out.push(Uint8Array.of(fix | n));
      else if (allow8 && n < 0x100) head(tags[0], 1, n);
      else if (n < 0x10000) head(tags[1], 2, n);
      else head(tags[2], 4, n);
    };
    const put = (v) => {
      if (v === null) out.push(Uint8Array.of(0xc0));
      else if (v === true || v === false) out.push(Uint8Array.of(v ? 0xc3 : 0xc2));
      else if (typeof v === "number") {
        if (!Number.isSafeInteger(v) || v < 0) throw new Error(`cannot encode ${v}`);
        if (v <= 0x7f) out.push(Uint8Array.of(v));
        else if (v < 0x100) head(0xcc, 1, v);
        else if (v < 0x10000) head(0xcd, 2, v);
        else if (v < 0x100000000) head(0xce, 4, v);
        else head(0xcf, 8, v);
      } else if (typeof v === "string") {
        const b = utf8.encode(v);
        length(b.length, 0xa0, 31, [0xd9, 0xda, 0xdb], true);
        out.push(b);
      } else if (v instanceof Uint8Array) {
        length(v.length, null, 0, [0xc4, 0xc5, 0xc6], true);
        out.push(v);
      } else if (Array.isArray(v)) {
        length(v.length, 0x90, 15, [null, 0xdc, 0xdd], false);
        v.forEach(put);
      } else throw new Error(`cannot encode ${typeof v}`);
    };
    put(value);
    return concat(...out);
  }

  // Field order of each record, as declared in the Python dataclasses (ledger/block.py, ledger/state.py, ...).
  const RECORDS = {
    header: ["origin", "height", "round", "time_ms", "prev_hash", "proposer", "log_size", "log_root",
      "state_root", "event_count", "validators_hash", "next_validators_hash"],
    credential: ["issuer", "key_id", "issue_index", "issued_height", "issued_ms", "status", "expires_ms",
      "status_index", "status_height"],
    member: ["id", "name", "power", "node_key", "active", "since", "issuer_keys", "did"],
    key: ["member", "key_id", "public_key", "valid_from", "retired_at", "compromised_since"],
    validator: ["member_id", "power", "node_key"],
  };
  const PAYLOADS = {
    issue: ["digest", "issuer", "expires_ms", "components"],
    revoke: ["digest", "reason"],
    suspend: ["digest", "reason"],
    reinstate: ["digest"],
  };

  function record(kind, items, what) {
    const fields = RECORDS[kind];
    if (!Array.isArray(items) || items.length !== fields.length) {
      throw new ProofError("format", `${what}: expected an array of ${fields.length} fields`);
    }
    return Object.fromEntries(fields.map((f, i) => [f, items[i]]));
  }

  function decodeRecord(kind, bytes, what) {
    return record(kind, unpack(bytes, what), what);
  }

  function decodeValidatorSet(bytes, what) {
    const top = unpack(bytes, what);
    if (!Array.isArray(top) || top.length !== 1 || !Array.isArray(top[0])) {
      throw new ProofError("format", `${what}: not a validator set`);
    }
    return makeValidatorSet(top[0].map((v, i) => record("validator", v, `${what}.validators[${i}]`)));
  }

  // An event, its payload by kind, and the bytes its signatures cover: the unsigned event is the same array
  // without its last item (the signatures), so it is the 3-item array header followed by the first three items.
  function decodeEvent(bytes, what) {
    const items = unpack(bytes, what);
    if (!Array.isArray(items) || items.length !== 4 || !Array.isArray(items[2]) || !Array.isArray(items[3])) {
      throw new ProofError("format", `${what}: not an event`);
    }
    const [origin, timeMs, rawPayload, rawSignatures] = items;
    const kind = rawPayload[0];
    const fields = PAYLOADS[kind] || [];
    const payload = { kind };
    fields.forEach((f, i) => {
      payload[f] = rawPayload[i + 1];
    });
    const signatures = rawSignatures.map((s) => ({ member: s[0], keyId: s[1], sig: s[2] }));
    const [start] = items.spans[0];
    const [, end] = items.spans[2];
    const signed = concat(Uint8Array.of(0x93), bytes.slice(start, end));
    return { origin, timeMs, payload, signatures, signed };
  }

  // --- keys, validator sets, genesis ----------------------------------------------------------------------------

  async function keyId(name, publicKey) {
    return (await sha256(utf8.encode(name), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
  }

  async function parseVkey(text, member) {
    // <name>+<hex key id>+<base64 key>: the base64 may itself hold "+", so split at the first two only.
    const first = text.indexOf("+");
    const second = text.indexOf("+", first + 1);
    const parts = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
    if (first < 0 || second < 0 || parts[0] !== member) throw new Error(`bad verifier key for ${member}`);
    const blob = fromBase64(parts[2], "verifier key");
    if (blob.length !== 33 || blob[0] !== 0x01) throw new Error(`verifier key of ${member} is not Ed25519`);
    const key = blob.slice(1);
    if (toHex(await keyId(member, key)) !== parts[1]) throw new Error(`key id of ${member}'s key does not match`);
    return key;
  }

  function makeValidatorSet(validators) {
    const byId = new Map(validators.map((v) => [v.member_id, v]));
    const total = validators.reduce((n, v) => n + v.power, 0);
    return { validators, byId, total, quorum: Math.floor((total * 2) / 3) + 1 };
  }

  async function validatorSetHash(set) {
    const encoded = pack([set.validators.map((v) => [v.member_id, v.power, v.node_key])]);
    return sha256(VALIDATOR_SET, encoded);
  }

  // The genesis JSON the page was served with (members sorted by id, params in declaration order), its hash over
  // the canonical encoding (ledger/genesis.py), and the validator set of heights 1 and 2.
  async function loadGenesis(doc) {
    const members = [];
    for (const m of doc.members) {
      members.push({
        id: m.id,
        name: m.name,
        power: m.power,
        nodeKey: await parseVkey(m.node_key, m.id),
        issuerKeys: await Promise.all(m.issuer_keys.map((k) => parseVkey(k, m.id))),
        did: m.did === undefined ? null : m.did,
      });
    }
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const encoded = pack([
      doc.origin,
      doc.genesis_time_ms,
      // A trailing field that is absent (a DID left to its default) is left out, as the canonical codec does.
      members.map((m) => [m.id, m.name, m.power, m.nodeKey, m.issuerKeys, ...(m.did === null ? [] : [m.did])]),
      Object.values(doc.params),
    ]);
    const validators = makeValidatorSet(
      members.filter((m) => m.power > 0).map((m) => ({ member_id: m.id, power: m.power, node_key: m.nodeKey })),
    );
    return { origin: doc.origin, hash: await sha256(GENESIS, encoded), validators, members };
  }

  // --- C2SP signed notes and checkpoints ------------------------------------------------------------------------

  function parseNote(text, what) {
    const split = text.lastIndexOf("\n\n");
    if (split < 0) throw new ProofError("certificate", `${what}: no blank line before the signatures`);
    const body = text.slice(0, split + 1);
    const block = text.slice(split + 2);
    if (!block.endsWith("\n")) throw new ProofError("certificate", `${what}: signatures must end with a newline`);
    const signatures = block.slice(0, -1).split("\n").map((line) => {
      const m = /^\u2014 ([^ +]+) ([A-Za-z0-9+/=]+)$/.exec(line);
      if (!m) throw new ProofError("certificate", `${what}: malformed signature line`);
      const blob = fromBase64(m[2], "note signature");
      if (blob.length <= 4) throw new ProofError("certificate", `${what}: signature too short`);
      return { name: m[1], keyId: blob.slice(0, 4), sig: blob.slice(4) };
    });
    return { text: body, signatures };
  }

  function parseCheckpoint(body) {
    const lines = body.slice(0, -1).split("\n");
    const ext = (lines[3] || "").split(" ");
    const decimal = /^(0|[1-9][0-9]*)$/;
    if (lines.length !== 4 || ext.length !== 4 || ext[0] !== "credledger" || !decimal.test(lines[1])
        || !decimal.test(ext[1]) || !decimal.test(ext[2])) {
      throw new ProofError("certificate", "the note is not a credledger checkpoint");
    }
    return {
      origin: lines[0],
      size: Number(lines[1]),
      root: fromBase64(lines[2], "checkpoint root"),
      height: Number(ext[1]),
      round: Number(ext[2]),
      headerHash: fromBase64(ext[3], "checkpoint header hash"),
    };
  }

  const keyCache = new Map();

  async function ed25519(publicKey, message, signature) {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    const id = toHex(publicKey);
    let key = keyCache.get(id);
    if (!key) {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      keyCache.set(id, key);
    }
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  // A commit certificate: signatures of validators holding more than 2/3 of the power. Signers outside the set
  // (or with another key id) are ignored, each validator counts once, and one bad signature from a validator's
  // key rejects the whole certificate (ledger/block.py verify_certificate).
  async function verifyCertificate(note, set, step) {
    const message = utf8.encode(note.text);
    const counted = new Set();
    let power = 0;
    for (const sig of note.signatures) {
      const v = set.byId.get(sig.name);
      if (!v || counted.has(sig.name)) continue;
      if (!equal(sig.keyId, await keyId(v.member_id, v.node_key))) continue;
      if (!(await ed25519(v.node_key, message, sig.sig))) {
        throw new ProofError(step, `signature of validator ${sig.name} is invalid`);
      }
      counted.add(sig.name);
      power += v.power;
    }
    if (power < set.quorum) {
      throw new ProofError(step, `signers hold ${power} of ${set.total} voting power, need more than 2/3 (${set.quorum})`);
    }
    return power;
  }

  // The certificate must certify exactly this header (ledger/block.py verify_certified_header).
  async function verifyCertifiedHeader(headerBytes, header, noteText, set, step) {
    if (!equal(header.validators_hash, await validatorSetHash(set))) {
      throw new ProofError(step, `header ${header.height} names another validator set than the one certifying it`);
    }
    const note = parseNote(noteText, "certificate");
    await verifyCertificate(note, set, step);
    const cp = parseCheckpoint(note.text);
    const hash = await sha256(HEADER, headerBytes);
    if (cp.origin !== header.origin || cp.size !== header.log_size || !equal(cp.root, header.log_root)
        || cp.height !== header.height || !equal(cp.headerHash, hash)) {
      throw new ProofError(step, `certificate is for height ${cp.height} size ${cp.size}; expected height `
        + `${header.height} size ${header.log_size} and this header's hash`);
    }
    return cp;
  }

  // --- RFC 9162 inclusion proofs --------------------------------------------------------------------------------

  const bitLength = (n) => (n === 0 ? 0 : Math.floor(Math.log2(n)) + 1);
  const half = (n) => Math.floor(n / 2);
  const odd = (n) => n % 2 === 1;

  function inclusionProofLength(index, size) {
    // Bits below the level where the paths to `index` and the last leaf meet, plus the right-edge left siblings.
    let inner = 0;
    for (let a = index, b = size - 1; a !== b; a = half(a), b = half(b)) inner++;
    let rest = index;
    for (let i = 0; i < inner; i++) rest = half(rest);
    let ones = 0;
    for (; rest > 0; rest = half(rest)) if (odd(rest)) ones++;
    return inner + ones;
  }

  async function verifyInclusion(leafHash, index, size, proof, root) {
    if (!(index >= 0 && index < size)) throw new ProofError("inclusion", `leaf ${index} is outside a tree of ${size}`);
    const expected = inclusionProofLength(index, size);
    if (proof.length !== expected) {
      throw new ProofError("inclusion", `proof for leaf ${index} of ${size}: expected ${expected} hashes, got ${proof.length}`);
    }
    let fn = index;
    let sn = size - 1;
    let r = leafHash;
    for (const p of proof) {
      if (p.length !== HASH_SIZE) throw new ProofError("inclusion", "proof hash is not 32 bytes");
      if (odd(fn) || fn === sn) {
        r = await sha256(LOG_NODE, p, r);
        while (fn !== 0 && !odd(fn)) {
          fn = half(fn);
          sn = half(sn);
        }
      } else {
        r = await sha256(LOG_NODE, r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    if (sn !== 0) throw new ProofError("inclusion", `proof for leaf ${index} of ${size} is too short`);
    if (!equal(r, root)) throw new ProofError("inclusion", `proof for leaf ${index} of ${size} leads to another root`);
  }

  // --- sparse Merkle state proofs (DESIGN §5, ledger/smt.py) ---------------------------------------------------

  function keyBit(key, depth) {
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1;
  }

  function commonPrefixBits(a, b) {
    for (let i = 0; i < KEY_BITS; i++) if (keyBit(a, i) !== keyBit(b, i)) return i;
    return KEY_BITS;
  }

  async function verifyState(root, key, value, proof, step) {
    const depth = proof.siblings.length;
    if (depth > KEY_BITS) throw new ProofError(step, "the proof is deeper than a key has bits");
    const leaf = proof.leaf;
    let current;
    if (leaf === null) {
      current = new Uint8Array(HASH_SIZE);
    } else {
      if (commonPrefixBits(leaf.key, key) < depth) throw new ProofError(step, "the proof's leaf is not on the key's path");
      current = await sha256(SMT_LEAF, leaf.key, leaf.valueHash);
    }
    if (depth && proof.siblings[0].every((b) => b === 0)) {
      throw new ProofError(step, "non-canonical proof: its lowest sibling is empty");
    }
    for (let i = 0; i < depth; i++) {
      const sibling = proof.siblings[i];
      current = keyBit(key, depth - 1 - i) ? await sha256(SMT_NODE, sibling, current) : await sha256(SMT_NODE, current, sibling);
    }
    if (!equal(current, root)) throw new ProofError(step, "the state proof does not lead to the certified state root");
    const present = leaf !== null && equal(leaf.key, key);
    if (value === null) {
      if (present) throw new ProofError(step, "the proof shows the key present, the bundle says absent");
      return;
    }
    if (!present) throw new ProofError(step, "the proof does not end in this key's leaf");
    if (!equal(leaf.valueHash, await sha256(value))) throw new ProofError(step, "the record does not match the proven value hash");
  }

  // --- the bundle ---------------------------------------------------------------------------------------------

  function parseEntry(raw, where) {
    if (!raw || typeof raw !== "object" || !raw.proof) throw new ProofError("format", `${where} is missing`);
    const leaf = raw.proof.leaf
      ? { key: fromBase64(raw.proof.leaf.key, `${where} leaf key`), valueHash: fromBase64(raw.proof.leaf.value_hash, `${where} leaf`) }
      : null;
    return {
      value: raw.value === null ? null : fromBase64(raw.value, `${where}.value`),
      proof: { leaf, siblings: raw.proof.siblings.map((s) => fromBase64(s, `${where} sibling`)) },
    };
  }

  function parseBundle(doc) {
    if (!doc || doc.format !== FORMAT) throw new ProofError("format", `not a ${FORMAT} bundle`);
    return {
      origin: doc.origin,
      genesis: fromHex(doc.genesis),
      digest: fromHex(doc.digest),
      checkpoint: doc.checkpoint,
      header: fromBase64(doc.header, "header"),
      validators: doc.validators.map((v, i) => ({
        header: fromBase64(v.header, `validators[${i}].header`),
        certificate: v.certificate,
        next: fromBase64(v.next, `validators[${i}].next`),
      })),
      credential: parseEntry(doc.credential, "credential"),
      events: doc.events.map((e, i) => ({
        index: e.index,
        event: fromBase64(e.event, `events[${i}]`),
        proof: e.proof.map((h) => fromBase64(h, `events[${i}].proof`)),
      })),
      member: doc.issuer ? parseEntry(doc.issuer.member, "issuer.member") : null,
      key: doc.issuer ? parseEntry(doc.issuer.key, "issuer.key") : null,
    };
  }

  async function stateKey(prefix, ...parts) {
    return sha256(prefix, ...parts);
  }

  // Step 1 of verifyBundle: the validator-set chain from genesis, the checkpoint's certificate, the header.
  // `anchors` (a Map, for one genesis) keeps what it proved for each anchor -- the checkpoint, header and
  // validator chain as the document gives them, compared as text -- so that the many bundles of one record, which
  // share one anchor, have it checked once; its checks are reported again for each.
  async function verifyAnchor(doc, bundle, genesis, ok, anchors) {
    const key = anchors ? JSON.stringify([doc.checkpoint, doc.header, doc.validators]) : null;
    const known = key === null ? undefined : anchors.get(key);
    if (known) {
      for (const [step, detail] of known.checks) ok(step, detail);
      return known;
    }
    const proved = [];
    const note = (step, detail) => {
      proved.push([step, detail]);
      ok(step, detail);
    };
    const header = decodeRecord("header", bundle.header, "header");
    let set = genesis.validators;
    let starts = 1;
    for (const [i, link] of bundle.validators.entries()) {
      const linkHeader = decodeRecord("header", link.header, `validators[${i}].header`);
      if (linkHeader.height < starts || linkHeader.height >= header.height) {
        throw new ProofError("validators", `link ${i} is at height ${linkHeader.height}, out of order`);
      }
      if (!equal(linkHeader.validators_hash, await validatorSetHash(set))) {
        throw new ProofError("validators", `gap in the validator-set chain at link ${i} (height ${linkHeader.height})`);
      }
      await verifyCertifiedHeader(link.header, linkHeader, link.certificate, set, "validators");
      const next = decodeValidatorSet(link.next, `validators[${i}].next`);
      if (!equal(await validatorSetHash(next), linkHeader.next_validators_hash)) {
        throw new ProofError("validators", `link ${i}: the new set is not the one the certified header names`);
      }
      set = next;
      starts = linkHeader.height + 1;
    }
    note("validators", `the validator-set chain links genesis to the set certifying height ${header.height} `
      + `(${bundle.validators.length} changes)`);
    const checkpoint = await verifyCertifiedHeader(bundle.header, header, bundle.checkpoint, set, "certificate");
    if (header.origin !== genesis.origin) throw new ProofError("header", "the header is for another network");
    note("certificate", `the checkpoint at height ${header.height} (log size ${header.log_size}) carries signatures `
      + `of more than 2/3 of the voting power of its ${set.validators.length} validators`);

    const result = { header, checkpoint, checks: proved };
    if (key !== null) anchors.set(key, result);
    return result;
  }

  // Verify `doc` (bundle JSON) for `digest` against `genesis` (from loadGenesis). `checks` receives each check
  // as {step, ok, detail}; the result is {status, ...facts} or a thrown ProofError naming the failed step.
  async function verifyBundle(doc, genesis, { digest = null, nowMs = Date.now(), checks = [], anchors = null } = {}) {
    const ok = (step, detail) => checks.push({ step, ok: true, detail });
    const bundle = parseBundle(doc);
    if (digest !== null && !equal(bundle.digest, digest)) {
      throw new ProofError("digest", `the node sent the proof of credential ${toHex(bundle.digest)}, not ${toHex(digest)}`);
    }
    if (bundle.origin !== genesis.origin || !equal(bundle.genesis, genesis.hash)) {
      throw new ProofError("network", `the proof is for network ${bundle.origin}, not ${genesis.origin}`);
    }
    ok("network", `the proof belongs to ${genesis.origin} (genesis ${toHex(genesis.hash).slice(0, 16)})`);

    // Step 1: the validator-set chain, the certificate, the header (once per anchor, given `anchors`).
    const { header, checkpoint } = await verifyAnchor(doc, bundle, genesis, ok, anchors);

    // Step 2: the credential's state record.
    const facts = { height: header.height, asOfMs: header.time_ms, digest: toHex(bundle.digest) };
    await verifyState(header.state_root, await stateKey(STATE_CRED, bundle.digest), bundle.credential.value,
      bundle.credential.proof, "state");
    if (bundle.credential.value === null) {
      ok("state", "the certified state proves no credential with this fingerprint was ever issued");
      return { status: "unknown", ...facts };
    }
    const rec = decodeRecord("credential", bundle.credential.value, "credential record");
    ok("state", `the certified state holds the credential's record (status ${rec.status})`);

    // Step 2b: the issue event is in the log.
    if (bundle.events.length === 0) throw new ProofError("inclusion", "the proof carries no issue event");
    const issueEntry = bundle.events[0];
    if (issueEntry.index !== rec.issue_index) {
      throw new ProofError("inclusion", `issue event at index ${issueEntry.index}, the record says ${rec.issue_index}`);
    }
    await verifyInclusion(await sha256(LOG_LEAF, issueEntry.event), issueEntry.index, header.log_size,
      issueEntry.proof, checkpoint.root);
    const issue = decodeEvent(issueEntry.event, "issue event");
    ok("inclusion", `the issue event is in the certified log at position ${issueEntry.index} of ${header.log_size}`);
    if (issue.payload.kind !== "issue" || !equal(issue.payload.digest, bundle.digest)) {
      throw new ProofError("digest", "the included event is not the issue of this credential");
    }
    if (issue.payload.issuer !== rec.issuer) throw new ProofError("record", "the issue names another issuer");

    // Step 3: the issue signature, under an issuer key valid at the issue height.
    if (!bundle.member || !bundle.key) throw new ProofError("issuer-key", "the proof carries no issuer records");
    await verifyState(header.state_root, await stateKey(STATE_MEMBER, utf8.encode(rec.issuer)), bundle.member.value,
      bundle.member.proof, "issuer-key");
    await verifyState(header.state_root, await stateKey(STATE_KEY, utf8.encode(rec.issuer), Uint8Array.of(0), rec.key_id),
      bundle.key.value, bundle.key.proof, "issuer-key");
    if (bundle.member.value === null || bundle.key.value === null) {
      throw new ProofError("issuer-key", `the state holds no record of issuer ${rec.issuer} or its key`);
    }
    const member = decodeRecord("member", bundle.member.value, "member record");
    const key = decodeRecord("key", bundle.key.value, "issuer key record");
    if (issue.signatures.length !== 1) throw new ProofError("issue-signature", "an issue carries exactly one signature");
    const sig = issue.signatures[0];
    if (sig.member !== rec.issuer || !equal(sig.keyId, key.key_id)) {
      throw new ProofError("issue-signature", "the issue is not signed with the record's issuer key");
    }
    if (!(await ed25519(key.public_key, concat(EVENT, issue.signed), sig.sig))) {
      throw new ProofError("issue-signature", `the signature of ${rec.issuer} does not verify`);
    }
    ok("issue-signature", `the issue is signed by ${member.name} (${rec.issuer}) with issuer key ${toHex(key.key_id)}`);
    const h = rec.issued_height;
    if (h < key.valid_from) throw new ProofError("issuer-key", `the key became valid at ${key.valid_from}, after the issue (${h})`);
    if (key.compromised_since !== null && key.compromised_since <= h) {
      throw new ProofError("issuer-key", `the key is marked compromised since height ${key.compromised_since}, at or before the issue (${h})`);
    }
    if (key.retired_at !== null && key.retired_at <= h) {
      throw new ProofError("issuer-key", `the key was retired at height ${key.retired_at}, before the issue (${h})`);
    }
    ok("issuer-key", `the key was valid at the issue (block ${h}) and is not marked compromised`);

    // Step 4: the status, and the event that set it.
    let changedMs = null;
    let reason = null;
    if (rec.status_index !== null) {
      const entry = bundle.events[1];
      if (!entry) throw new ProofError("inclusion", `the record says ${rec.status} but no status event is included`);
      if (entry.index !== rec.status_index) throw new ProofError("inclusion", "the status event is not the one the record names");
      await verifyInclusion(await sha256(LOG_LEAF, entry.event), entry.index, header.log_size, entry.proof, checkpoint.root);
      const event = decodeEvent(entry.event, "status event");
      const expected = { revoked: "revoke", suspended: "suspend", active: "reinstate" }[rec.status];
      if (event.payload.kind !== expected || !equal(event.payload.digest, bundle.digest)) {
        throw new ProofError("record", `the status event is not a ${expected} of this credential`);
      }
      ok("inclusion", `the ${expected} event is in the certified log at position ${entry.index}`);
      changedMs = event.timeMs;
      reason = event.payload.reason === undefined ? null : event.payload.reason;
    }
    let status = "valid";
    if (rec.status === "revoked") status = "revoked";
    else if (rec.status === "suspended") status = "suspended";
    else if (rec.expires_ms !== null && rec.expires_ms <= nowMs) status = "expired";
    return {
      status,
      ...facts,
      issuer: rec.issuer,
      issuerName: member.name,
      issuerRecords: { member, key }, // the certified records, for a signed credential's own proof (dataintegrity.js)
      issuedMs: rec.issued_ms,
      issuedHeight: h,
      expiresMs: rec.expires_ms,
      changedMs,
      reason,
    };
  }

  // --- C2SP tlog-proof files (ledger/tlogproof.py) -----------------------------------------------------------------

  const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1\n";
  const TLOG_MAX_PROOF_LINES = 64;

  // A tlog-proof written by `credledger proof`: its extra data is the credential's issue event, its checkpoint the
  // commit certificate. Checked against the genesis validators: the issue event is in the certified log. It says
  // nothing about revocation -- the page asks the node for that. Returns {digest, issuer, index, height}.
  async function verifyTlogProof(text, genesis, { checks = [] } = {}) {
    const fail = (detail) => {
      throw new ProofError("tlog-proof", detail);
    };
    const split = text.indexOf("\n\n");
    if (split < 0) fail("no blank line before the checkpoint");
    const lines = text.slice(0, split).split("\n").slice(1);
    const extra = lines.length && lines[0].startsWith("extra ")
      ? fromBase64(lines.shift().slice("extra ".length), "tlog-proof extra data") : null;
    if (!lines.length || !/^index (0|[1-9][0-9]{0,15})$/.test(lines[0])) fail("expected an 'index <decimal>' line");
    const index = Number(lines.shift().slice("index ".length));
    if (lines.length > TLOG_MAX_PROOF_LINES) fail(`${lines.length} proof lines, more than ${TLOG_MAX_PROOF_LINES}`);
    const proof = lines.map((line) => fromBase64(line, "tlog-proof inclusion hash"));
    if (extra === null) fail("it carries no extra data: the issue event it proves is not in the file");
    const note = parseNote(text.slice(split + 2), "tlog-proof checkpoint");
    const checkpoint = parseCheckpoint(note.text);
    if (checkpoint.origin !== genesis.origin) fail(`the checkpoint is for network ${checkpoint.origin}, not ${genesis.origin}`);
    await verifyCertificate(note, genesis.validators, "certificate");
    checks.push({ step: "certificate", ok: true, detail: `the checkpoint at height ${checkpoint.height} (log size `
      + `${checkpoint.size}) carries signatures of more than 2/3 of the genesis validators' voting power` });
    await verifyInclusion(await sha256(LOG_LEAF, extra), index, checkpoint.size, proof, checkpoint.root);
    const event = decodeEvent(extra, "tlog-proof event");
    if (event.payload.kind !== "issue" || !(event.payload.digest instanceof Uint8Array)) {
      fail("the proven entry is not the issue of a credential");
    }
    checks.push({ step: "inclusion", ok: true, detail: `the issue of credential ${toHex(event.payload.digest)} by `
      + `${event.payload.issuer} is in the certified log at position ${index} of ${checkpoint.size}` });
    return { digest: event.payload.digest, issuer: event.payload.issuer, index, height: checkpoint.height };
  }

  // --- credential digests (RFC 8785 JCS + SHA-256 for JSON objects, SHA-256 of the bytes otherwise) -------------

  // The same reading as ledger/jcs.py and ledger/digest.py, token for token and refusal for refusal, so the page
  // and the command line give one file one digest. Parsing and writing use explicit stacks, not recursion, so a
  // document nested thousands deep canonicalises here as it does there. Objects are Maps: a member named
  // "__proto__" is just a name.
  const JCS_REFUSAL = "the JSON cannot be canonicalised (RFC 8785)";
  const DIGEST_METHODS = { jcs: "RFC 8785 JSON", raw: "SHA-256 of the file's bytes" };
  const TOKEN = new RegExp(
    '[ \\t\\n\\r]*(?:("[^"\\\\\\x00-\\x1f]*(?:\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\\\\x00-\\x1f]*)*")'
      + "|(-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(true|false|null)|([\\[\\]{},:]))",
    "y",
  );
  const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const LITERALS = { true: true, false: false, null: null };
  const QUOTE_LIMIT = 24;
  const [VALUE, FIRST_VALUE, FIRST_NAME, NAME, COLON, AFTER, END] = [0, 1, 2, 3, 4, 5, 6];

  class NotJson extends Error {}

  class NotCanonicalJson extends Error {}

  const escapeKey = (key) => `/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const childKey = (frame) => (frame.container instanceof Map ? frame.names[frame.names.length - 1]
    : String(frame.container.length));
  const pointer = (stack) => stack.slice(0, -1).map((f) => escapeKey(childKey(f))).join("");
  const objectAt = (stack) => (pointer(stack) ? `the object at ${pointer(stack)}` : "the top-level object");
  const valueAt = (stack) => (stack.length ? `at ${pointer(stack)}${escapeKey(childKey(stack[stack.length - 1]))}`
    : "at the top level");
  const escapeUnit = (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`;
  const abbreviate = (t) => (t.length <= QUOTE_LIMIT ? t : `${t.slice(0, 20)}\u2026 (${t.length} characters)`);

  // Parse JSON text into Maps, arrays, strings, numbers, booleans and null, refusing what I-JSON forbids.
  function parseJson(text) {
    const stack = []; // {container, names}: an open container and its pending member names
    let state = VALUE;
    let root = null;
    let position = 0;
    while (state !== END) {
      TOKEN.lastIndex = position;
      const m = TOKEN.exec(text);
      if (!m) throw new NotJson(`unexpected character at offset ${position}`);
      position = TOKEN.lastIndex;
      const [, string, number, literal] = m;
      const token = m[1] ?? m[2] ?? m[3] ?? m[4];
      let value;
      if (state === COLON) {
        if (token !== ":") throw new NotJson(`expected ':' before offset ${position}`);
        state = VALUE;
        continue;
      }
      if (state === AFTER) {
        const top = stack[stack.length - 1];
        const closer = top.container instanceof Map ? "}" : "]";
        if (token === ",") {
          state = top.container instanceof Map ? NAME : VALUE;
          continue;
        }
        if (token !== closer) throw new NotJson(`expected ',' or '${closer}' before offset ${position}`);
        value = stack.pop().container;
      } else if (state === FIRST_NAME || state === NAME) {
        if (state === FIRST_NAME && token === "}") {
          value = stack.pop().container;
        } else if (string !== undefined) {
          const name = JSON.parse(string);
          const lone = LONE_SURROGATE.exec(name);
          if (lone) {
            throw new NotCanonicalJson(`${JCS_REFUSAL}: a member name in ${objectAt(stack)} holds a lone surrogate `
              + `(${escapeUnit(lone[0])}), which is not Unicode text`);
          }
          const top = stack[stack.length - 1];
          if (top.container.has(name)) {
            throw new NotCanonicalJson(`${JCS_REFUSAL}: member name ${JSON.stringify(name)} appears twice in `
              + `${objectAt(stack)}`);
          }
          top.names.push(name);
          state = COLON;
          continue;
        } else {
          throw new NotJson(`expected a member name before offset ${position}`);
        }
      } else if (token === "{") {
        stack.push({ container: new Map(), names: [] });
        state = FIRST_NAME;
        continue;
      } else if (token === "[") {
        stack.push({ container: [], names: [] });
        state = FIRST_VALUE;
        continue;
      } else if (state === FIRST_VALUE && token === "]") {
        value = stack.pop().container;
      } else if (string !== undefined) {
        value = JSON.parse(string);
        const lone = LONE_SURROGATE.exec(value);
        if (lone) {
          throw new NotCanonicalJson(`${JCS_REFUSAL}: the string ${valueAt(stack)} holds a lone surrogate `
            + `(${escapeUnit(lone[0])}), which is not Unicode text`);
        }
      } else if (number !== undefined) {
        value = Number(number);
        if (!Number.isFinite(value)) {
          throw new NotCanonicalJson(`${JCS_REFUSAL}: the number ${abbreviate(number)} ${valueAt(stack)} is beyond `
            + "the range of an IEEE 754 double");
        }
      } else if (literal !== undefined) {
        value = LITERALS[literal];
      } else {
        throw new NotJson(`expected a value before offset ${position}`);
      }
      // A value is complete: it becomes the root or goes into its container.
      if (stack.length === 0) {
        root = value;
        state = END;
        continue;
      }
      const parent = stack[stack.length - 1];
      if (parent.container instanceof Map) parent.container.set(parent.names.pop(), value);
      else parent.container.push(value);
      state = AFTER;
    }
    if (/[^ \t\n\r]/.test(text.slice(position))) throw new NotJson(`text after the JSON value at offset ${position}`);
    return root;
  }

  // The RFC 8785 canonical form of a parsed value. Member names sort by UTF-16 code units, which is what
  // Array.prototype.sort compares (§3.2.3); JSON.stringify writes strings and numbers exactly as §3.2.2 asks
  // (ECMAScript Number serialisation) once lone surrogates and non-finite numbers have been refused.
  function serialise(root) {
    const out = [];
    const work = [root];
    const emit = (text) => ({ emit: text });
    while (work.length) {
      const item = work.pop();
      if (item instanceof Map) {
        const names = [...item.keys()].sort();
        work.push(emit("}"));
        for (let i = names.length - 1; i >= 0; i--) {
          work.push({ value: item.get(names[i]) }, emit(`${JSON.stringify(names[i])}:`));
          if (i) work.push(emit(","));
        }
        out.push("{");
      } else if (Array.isArray(item)) {
        work.push(emit("]"));
        for (let i = item.length - 1; i >= 0; i--) {
          work.push({ value: item[i] });
          if (i) work.push(emit(","));
        }
        out.push("[");
      } else if (item !== null && typeof item === "object" && "emit" in item) {
        out.push(item.emit);
      } else if (item !== null && typeof item === "object" && "value" in item) {
        work.push(item.value);
      } else {
        out.push(JSON.stringify(item));
      }
    }
    return out.join("");
  }

  // The RFC 8785 canonical form (a string) of JSON text; throws NotJson or NotCanonicalJson.
  function canonicalJson(text) {
    return serialise(parseJson(text));
  }

  // What a dropped file is: {bundle} for a kept proof bundle, {tlogProof} for a C2SP tlog-proof, {refused} for
  // JSON that RFC 8785 cannot canonicalise, else {digest, method}. With `raw`, any file is hashed as bytes.
  async function readDocument(bytes, { raw = false } = {}) {
    let text = null;
    try {
      text = utf8Strict.decode(bytes); // drops a byte-order mark, as the Python side does
    } catch {
      text = null;
    }
    if (!raw && text !== null && text.startsWith(TLOG_PROOF_HEADER)) return { tlogProof: text };
    if (!raw && text !== null && text.replace(/^[ \t\n\r]+/, "").startsWith("{")) {
      let value;
      try {
        value = parseJson(text);
      } catch (error) {
        if (error instanceof NotCanonicalJson) return { refused: error.message };
        if (!(error instanceof NotJson)) throw error;
        value = undefined;
      }
      if (value instanceof Map) {
        if (value.get("format") === FORMAT) return { bundle: JSON.parse(text) };
        return { digest: await sha256(utf8.encode(serialise(value))), method: DIGEST_METHODS.jcs };
      }
    }
    return { digest: await sha256(bytes), method: DIGEST_METHODS.raw };
  }

  // --- learners' records (ledger/record.py) -------------------------------------------------------------------------

  // A credledger-record/v1 holds one anchor -- network, checkpoint, header, validator-set chain -- shared by every
  // credential, and per credential what its own bundle would hold plus, when its issue names an achievement, the
  // state proof of that achievement version. As verify_record: every credential is checked under the one anchor,
  // its achievement version against the same certified state root, and the valid ones are summed up.
  const RECORD_FORMAT = "credledger-record/v1";
  const MAX_RECORD_CREDENTIALS = 1000;
  const STATE_ACHIEVEMENT = utf8.encode("achievement\0");
  const RECORD_ANCHOR = ["origin", "genesis", "checkpoint", "header", "validators"];
  const ACHIEVEMENT_FIELDS = ["member", "id", "version", "definition", "published_index", "published_height",
    "published_ms", "retired_height"];
  // Where an issue payload ([kind, digest, issuer, expires, components, list, index, achievement, version]) holds
  // the achievement it awards; the canonical encoding leaves trailing absent fields out.
  const ISSUE_ACHIEVEMENT = 7;
  const CREDIT_UNIT = 100;

  // Hundredths of a credit as people write them: 750 -> "7.5" (stacking.format_credits).
  function formatCredits(amount) {
    const whole = Math.floor(amount / CREDIT_UNIT);
    const cents = amount % CREDIT_UNIT;
    return cents === 0 ? String(whole) : `${whole}.${String(cents).padStart(2, "0")}`.replace(/0+$/, "");
  }

  // What the ledger reads from a published definition (achievement.parse_definition): name, type, credits in
  // hundredths, level, field and skills. The definition was validated by every node when it was published.
  function readDefinition(bytes, where) {
    let obj;
    try {
      obj = JSON.parse(utf8Strict.decode(bytes));
    } catch (error) {
      throw new ProofError("achievement", `${where}: the definition is not JSON (${error.message})`);
    }
    const credits = typeof obj.creditsAvailable === "number" && typeof obj.creditSystem === "string"
      ? { system: obj.creditSystem, amount: Math.round(obj.creditsAvailable * CREDIT_UNIT) } : null;
    const level = obj.level && typeof obj.level === "object" ? `${obj.level.framework} ${obj.level.value}` : null;
    const skills = Array.isArray(obj.alignment)
      ? obj.alignment.map((a) => ({ name: String(a.targetName), url: String(a.targetUrl) })) : [];
    return { id: obj.id, name: String(obj.name), type: obj.achievementType, credits, level, field: obj.fieldOfStudy ?? null, skills };
  }

  function u64(n) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(n));
    return out;
  }

  // The achievement version a credential's issue names, proven against the certified state, or null.
  async function recordAchievement(item, stateRoot, verdict, definitions, where) {
    if (verdict.status === "unknown") return { achievement: null, definition: null };
    const raw = unpack(fromBase64(item.events[0].event, `${where} issue event`), `${where} issue event`)[2];
    const named = raw[ISSUE_ACHIEVEMENT] ?? null;
    const version = raw[ISSUE_ACHIEVEMENT + 1] ?? null;
    const issuer = raw[2];
    if (named === null) {
      if (item.achievement !== null && item.achievement !== undefined) {
        throw new ProofError("achievement", "an achievement proof for an issue that names none");
      }
      return { achievement: null, definition: null };
    }
    const entry = item.achievement ? parseEntry(item.achievement, `${where}.achievement`) : null;
    if (entry === null || entry.value === null) throw new ProofError("achievement", `no proof of achievement ${issuer}/${named}`);
    const key = await sha256(STATE_ACHIEVEMENT, utf8.encode(issuer), Uint8Array.of(0), utf8.encode(named), Uint8Array.of(0),
      u64(version));
    await verifyState(stateRoot, key, entry.value, entry.proof, "achievement");
    const fields = unpack(entry.value, `${where} achievement record`);
    if (!Array.isArray(fields) || fields.length !== ACHIEVEMENT_FIELDS.length) {
      throw new ProofError("achievement", `${where}: not an achievement record`);
    }
    const rec = Object.fromEntries(ACHIEVEMENT_FIELDS.map((f, i) => [f, fields[i]]));
    if (rec.member !== issuer || rec.id !== named || rec.version !== version) {
      throw new ProofError("achievement", "the achievement record is not the version the issue names");
    }
    const cacheKey = `${rec.member}\0${rec.id}\0${rec.version}`; // a version's definition never changes
    if (!definitions.has(cacheKey)) definitions.set(cacheKey, readDefinition(rec.definition, `${issuer}/${named}`));
    return { achievement: { member: rec.member, id: rec.id, version: rec.version }, definition: definitions.get(cacheKey) };
  }

  // Verify a record against `genesis`: {origin, height, asOfMs, results: [{verdict, achievement, definition}],
  // credits: {system: hundredths}, levels, skills, checks}, or a ProofError naming the credential and the check.
  // Statuses are as of the certified time, as on the command line.
  async function verifyRecord(doc, genesis, { checks = [] } = {}) {
    if (!doc || doc.format !== RECORD_FORMAT) throw new ProofError("format", `not a ${RECORD_FORMAT} file`);
    const items = doc.credentials;
    if (!Array.isArray(items) || items.length < 1 || items.length > MAX_RECORD_CREDENTIALS) {
      throw new ProofError("format", `a record holds 1..${MAX_RECORD_CREDENTIALS} credentials`);
    }
    const anchor = Object.fromEntries(RECORD_ANCHOR.map((k) => [k, doc[k]]));
    const header = decodeRecord("header", fromBase64(doc.header, "header"), "header");
    const definitions = new Map(); // many credentials award the same achievement version
    const anchors = new Map(); // ... and every credential shares the record's anchor: checked once
    const results = [];
    for (const [i, item] of items.entries()) {
      const where = `credential ${i}`;
      if (!item || typeof item !== "object") throw new ProofError("format", `${where}: expected an object`);
      const own = [];
      try {
        // Each item is verified as the bundle it is under the record's one anchor.
        const bundle = { format: FORMAT, ...anchor, digest: item.digest, credential: item.credential, events: item.events,
          issuer: item.issuer };
        const verdict = await verifyBundle(bundle, genesis, { nowMs: header.time_ms, checks: own, anchors });
        const { achievement, definition } = await recordAchievement(item, header.state_root, verdict, definitions, where);
        results.push({ verdict, achievement, definition });
      } catch (error) {
        if (error instanceof ProofError) throw new ProofError(error.step, `${where} (${item.digest}): ${error.detail}`);
        throw error;
      }
      if (i === 0) checks.push(...own.filter((c) => ["network", "validators", "certificate"].includes(c.step)));
    }
    checks.push({ step: "record", ok: true, detail: `${results.length} credentials verified against the one `
      + `checkpoint at height ${header.height}, each with its issue, issuer key, status and achievement` });
    const valid = results.filter((r) => r.verdict.status === "valid");
    const credits = {};
    for (const r of valid) {
      if (r.definition && r.definition.credits) {
        const { system, amount } = r.definition.credits;
        credits[system] = (credits[system] || 0) + amount;
      }
    }
    const levels = [...new Set(valid.filter((r) => r.definition && r.definition.level).map((r) => r.definition.level))].sort();
    const skillNames = new Map();
    for (const r of valid) for (const s of (r.definition ? r.definition.skills : [])) skillNames.set(s.url, s.name);
    const skills = [...skillNames.keys()].sort().map((url) => ({ url, name: skillNames.get(url) }));
    return { origin: header.origin, height: header.height, asOfMs: header.time_ms, results, credits, levels, skills, checks };
  }

  return {
    ProofError, loadGenesis, verifyBundle, verifyTlogProof, readDocument, canonicalJson, toHex, fromHex, unpack, pack,
    verifyRecord, formatCredits, RECORD_FORMAT,
  };
})();
