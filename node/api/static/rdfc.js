// RDF Dataset Canonicalization (W3C RDFC-1.0) for the verification page, with the bounds ledger/vc/canon.py sets.
//
// Written from the specification: canonical N-Quads (RDF 1.2 escaping of the characters credledger signs), Hash
// First Degree Quads (§4.6), Hash Related Blank Node (§4.7), Hash N-Degree Quads (§4.8) and the canonical issuer
// (`c14n` labels). SHA-256 is computed here, synchronously, from FIPS 180-4: the algorithm hashes thousands of
// short strings in nested loops, which WebCrypto's one-promise-per-digest would make slow and hard to follow.
//
// A dataset is an array of quads {subject, predicate, object, graph}; a term is {type: "iri" | "blank" |
// "literal" | "default", value, datatype?, language?} (blank node values carry no "_:"). Every refusal is an
// RdfError whose message says what was refused, in the words ledger/vc/canon.py uses.
"use strict";

const RDFC = (() => {
  // The bounds of ledger/vc/canon.py (one place each there; mirrored here and checked by the page tests).
  const MAX_QUADS = 10000;
  const MAX_BLANK_NODES = 1000;
  const MAX_DEEP_ITERATIONS = 10000;
  const XSD_STRING = "http://www.w3.org/2001/XMLSchema#string";
  const RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";
  // Control characters RDFC-1.0 escapes and pyld does not: credledger refuses a literal holding one.
  const UNESCAPED_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
  const UCHAR = /\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}/;

  class RdfError extends Error {}

  // --- SHA-256 (FIPS 180-4 §6.2) ------------------------------------------------------------------------------

  const K = Uint32Array.from([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const utf8 = new TextEncoder();

  // SHA-256 of bytes, as 32 bytes.
  function sha256Bytes(message) {
    const bitLength = message.length * 8;
    const padded = new Uint8Array((((message.length + 8) >> 6) + 1) << 6);
    padded.set(message);
    padded[message.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
    view.setUint32(padded.length - 4, bitLength >>> 0);
    const h = H0.slice();
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let block = 0; block < padded.length; block += 64) {
      for (let t = 0; t < 16; t++) w[t] = view.getUint32(block + 4 * t);
      for (let t = 16; t < 64; t++) {
        const s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        const s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let t = 0; t < 64; t++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g;
        g = f;
        f = e;
        e = (d + t1) >>> 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) >>> 0;
      }
      [a, b, c, d, e, f, g, hh].forEach((x, i) => {
        h[i] = (h[i] + x) >>> 0;
      });
    }
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    h.forEach((x, i) => outView.setUint32(4 * i, x));
    return out;
  }

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  // SHA-256 of a string's UTF-8 bytes, as lowercase hexadecimal (how RDFC-1.0 compares and concatenates hashes).
  const sha256Hex = (text) => hex(sha256Bytes(utf8.encode(text)));

  // --- canonical N-Quads ----------------------------------------------------------------------------------------

  const escapeLiteral = (value) => value.replace(/["\\\t\n\r]/g, (c) => ({
    '"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
  })[c]);

  function serializeTerm(term) {
    if (term.type === "iri") return `<${term.value}>`;
    if (term.type === "blank") return `_:${term.value}`;
    let out = `"${escapeLiteral(term.value)}"`;
    if (term.datatype === RDF_LANG_STRING) out += `@${term.language}`;
    else if (term.datatype !== XSD_STRING) out += `^^<${term.datatype}>`;
    return out;
  }

  function serializeQuad(q) {
    const graph = q.graph.type === "default" ? "" : ` ${serializeTerm(q.graph)}`;
    return `${serializeTerm(q.subject)} ${serializeTerm(q.predicate)} ${serializeTerm(q.object)}${graph} .\n`;
  }

  // Parse N-Quads (as the W3C rdf-canon suite writes its inputs). Like ledger/vc/canon.py, \u and \U escapes are
  // refused rather than decoded.
  const IRI = "<([^>\\s]*)>";
  const BLANK = "_:([A-Za-z0-9_][A-Za-z0-9_.\\-]*)";
  const LITERAL = '"((?:[^"\\\\]|\\\\.)*)"(?:@([a-zA-Z]+(?:-[a-zA-Z0-9]+)*)|\\^\\^<([^>\\s]*)>)?';
  const QUAD = new RegExp(`^[ \\t]*(?:${IRI}|${BLANK})[ \\t]+${IRI}[ \\t]+(?:${IRI}|${BLANK}|${LITERAL})`
    + `(?:[ \\t]+(?:${IRI}|${BLANK}))?[ \\t]*\\.[ \\t]*(?:#.*)?$`);
  const ECHAR = { t: "\t", b: "\b", n: "\n", r: "\r", f: "\f", '"': '"', "'": "'", "\\": "\\" };

  function parseNQuads(text) {
    const found = UCHAR.exec(text);
    if (found) throw new RdfError(`N-Quads escape '${found[0].replace("\\", "\\\\")}' is not supported`);
    const quads = [];
    const seen = new Set();
    text.split(/\r?\n|\r/).forEach((line, number) => {
      if (/^[ \t]*(#.*)?$/.test(line)) return;
      const m = QUAD.exec(line);
      if (!m) throw new RdfError(`not valid N-Quads: line ${number + 1}`);
      const node = (iri, blank) => (iri !== undefined ? { type: "iri", value: iri } : { type: "blank", value: blank });
      let object;
      if (m[6] !== undefined) {
        const value = m[6].replace(/\\(.)/g, (all, c) => {
          if (!(c in ECHAR)) throw new RdfError(`not valid N-Quads: line ${number + 1}: bad escape ${all}`);
          return ECHAR[c];
        });
        const language = m[7] === undefined ? null : m[7].toLowerCase();
        const datatype = language !== null ? RDF_LANG_STRING : m[8] === undefined ? XSD_STRING : m[8];
        object = { type: "literal", value, datatype, language };
      } else object = node(m[4], m[5]);
      const graph = m[9] === undefined && m[10] === undefined ? { type: "default", value: "" } : node(m[9], m[10]);
      const quad = { subject: node(m[1], m[2]), predicate: { type: "iri", value: m[3] }, object, graph };
      const key = serializeQuad(quad); // a dataset is a set: a repeated quad counts once
      if (!seen.has(key)) {
        seen.add(key);
        quads.push(quad);
      }
    });
    return quads;
  }

  // The checks ledger/vc/canon.py makes on every dataset before canonicalizing it.
  function checkDataset(quads) {
    if (quads.length > MAX_QUADS) {
      throw new RdfError(`document expands to ${quads.length} quads, more than the ${MAX_QUADS} allowed`);
    }
    const blanks = new Set();
    for (const q of quads) {
      for (const term of [q.subject, q.object, q.graph]) if (term.type === "blank") blanks.add(term.value);
      if (q.object.type === "literal") {
        const found = UNESCAPED_CONTROL.exec(q.object.value);
        if (found) {
          const code = found[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
          throw new RdfError(`a value holds control character U+${code}, which credledger does not sign`);
        }
      }
    }
    if (blanks.size > MAX_BLANK_NODES) {
      throw new RdfError(`document has ${blanks.size} blank nodes, more than the ${MAX_BLANK_NODES} allowed`);
    }
  }

  // --- RDFC-1.0 -----------------------------------------------------------------------------------------------

  // An identifier issuer (§4.5): issues prefix + counter to each new identifier, remembering the order.
  class Issuer {
    constructor(prefix, issued = new Map()) {
      this.prefix = prefix;
      this.issued = issued;
    }

    issue(id) {
      let label = this.issued.get(id);
      if (label === undefined) {
        label = `${this.prefix}${this.issued.size}`;
        this.issued.set(id, label);
      }
      return label;
    }

    has(id) {
      return this.issued.has(id);
    }

    copy() {
      return new Issuer(this.prefix, new Map(this.issued));
    }
  }

  // Every ordering of `items` (Heap's algorithm); the caller keeps the smallest path, so the order does not matter.
  function* permutations(items) {
    const a = items.slice();
    const c = new Array(a.length).fill(0);
    yield a.slice();
    let i = 1;
    while (i < a.length) {
      if (c[i] < i) {
        const j = i % 2 ? c[i] : 0;
        [a[j], a[i]] = [a[i], a[j]];
        yield a.slice();
        c[i]++;
        i = 1;
      } else {
        c[i] = 0;
        i++;
      }
    }
  }

  const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  class Canonicalizer {
    constructor(quads) {
      this.quads = quads;
      this.info = new Map(); // blank node -> {quads, hash}
      for (const q of quads) {
        for (const term of [q.subject, q.object, q.graph]) {
          if (term.type !== "blank") continue;
          if (!this.info.has(term.value)) this.info.set(term.value, { quads: [], hash: null });
          // A quad naming one blank node twice is listed twice, as pyld (which ledger/vc/canon.py runs) does.
          this.info.get(term.value).quads.push(q);
        }
      }
      this.canonical = new Issuer("_:c14n");
      this.deep = new Map();
      this.total = 0;
    }

    // §4.6: the hash of the quads that mention `id`, with `id` written _:a and every other blank node _:z.
    hashFirstDegree(id) {
      const info = this.info.get(id);
      if (info.hash === null) {
        const mark = (t) => (t.type === "blank" ? { type: "blank", value: t.value === id ? "a" : "z" } : t);
        const lines = info.quads.map((q) => serializeQuad({
          subject: mark(q.subject), predicate: q.predicate, object: mark(q.object), graph: mark(q.graph),
        }));
        info.hash = sha256Hex(lines.sort(byCodePoint).join(""));
      }
      return info.hash;
    }

    // §4.7
    hashRelated(related, quad, issuer, position) {
      let id;
      if (this.canonical.has(related)) id = this.canonical.issue(related);
      else if (issuer.has(related)) id = issuer.issue(related);
      else id = this.hashFirstDegree(related);
      return sha256Hex(position + (position === "g" ? "" : `<${quad.predicate.value}>`) + id);
    }

    // §4.8, with the work limit of §4.4 as ledger/vc/canon.py sets it: per blank node n² calls for n blank nodes,
    // and MAX_DEEP_ITERATIONS in all.
    hashNDegree(id, issuer) {
      const done = this.deep.get(id) || 0;
      if (done >= this.info.size ** 2) {
        throw new RdfError(`canonicalization work limit reached: blank node _:${id} needs more than ${done} deep iterations`);
      }
      if (this.total >= MAX_DEEP_ITERATIONS) {
        throw new RdfError(`canonicalization work limit reached: more than ${MAX_DEEP_ITERATIONS} deep iterations in all`);
      }
      this.deep.set(id, done + 1);
      this.total++;
      const related = new Map();
      for (const quad of this.info.get(id).quads) {
        for (const [position, term] of [["s", quad.subject], ["o", quad.object], ["g", quad.graph]]) {
          if (term.type !== "blank" || term.value === id) continue;
          const hash = this.hashRelated(term.value, quad, issuer, position);
          if (!related.has(hash)) related.set(hash, []);
          related.get(hash).push(term.value);
        }
      }
      let data = "";
      for (const hash of [...related.keys()].sort(byCodePoint)) {
        data += hash;
        let chosenPath = "";
        let chosenIssuer = null;
        const longer = (path) => chosenPath.length !== 0 && path.length >= chosenPath.length && path > chosenPath;
        for (const permutation of permutations(related.get(hash))) {
          let issuerCopy = issuer.copy();
          let path = "";
          const recursion = [];
          let skip = false;
          for (const node of permutation) {
            if (this.canonical.has(node)) path += this.canonical.issue(node);
            else {
              if (!issuerCopy.has(node)) recursion.push(node);
              path += issuerCopy.issue(node);
            }
            if (longer(path)) {
              skip = true;
              break;
            }
          }
          if (skip) continue;
          for (const node of recursion) {
            const result = this.hashNDegree(node, issuerCopy);
            path += issuerCopy.issue(node);
            path += `<${result.hash}>`;
            issuerCopy = result.issuer;
            if (longer(path)) {
              skip = true;
              break;
            }
          }
          if (skip) continue;
          if (chosenPath.length === 0 || path < chosenPath) {
            chosenPath = path;
            chosenIssuer = issuerCopy;
          }
        }
        data += chosenPath;
        issuer = chosenIssuer;
      }
      return { hash: sha256Hex(data), issuer };
    }

    // §4.4: label every blank node canonically and return the sorted canonical N-Quads.
    run() {
      const byHash = new Map();
      for (const id of this.info.keys()) {
        const hash = this.hashFirstDegree(id);
        if (!byHash.has(hash)) byHash.set(hash, []);
        byHash.get(hash).push(id);
      }
      const hashes = [...byHash.keys()].sort(byCodePoint);
      for (const hash of hashes) {
        const ids = byHash.get(hash);
        if (ids.length === 1) this.canonical.issue(ids[0]);
      }
      for (const hash of hashes) {
        const ids = byHash.get(hash);
        if (ids.length === 1) continue;
        const results = [];
        for (const id of ids) {
          if (this.canonical.has(id)) continue;
          const issuer = new Issuer("_:b");
          issuer.issue(id);
          results.push(this.hashNDegree(id, issuer));
        }
        results.sort((a, b) => byCodePoint(a.hash, b.hash));
        for (const result of results) for (const id of result.issuer.issued.keys()) this.canonical.issue(id);
      }
      const relabel = (t) => (t.type === "blank" ? { type: "blank", value: this.canonical.issue(t.value).slice(2) } : t);
      const lines = new Set(this.quads.map((q) => serializeQuad({
        subject: relabel(q.subject), predicate: q.predicate, object: relabel(q.object), graph: relabel(q.graph),
      })));
      return [...lines].sort(byCodePoint).join("");
    }
  }

  // The RDFC-1.0 canonical N-Quads of a dataset, after the checks credledger makes on every dataset.
  function canonicalize(quads) {
    checkDataset(quads);
    return new Canonicalizer(quads).run();
  }

  // The RDFC-1.0 canonical form of an N-Quads document (how the W3C rdf-canon suite states its tests).
  function canonicalizeNQuads(text) {
    return canonicalize(parseNQuads(text));
  }

  return {
    RdfError, canonicalize, canonicalizeNQuads, parseNQuads, serializeQuad, sha256Bytes, sha256Hex, hex,
    XSD_STRING, RDF_LANG_STRING,
  };
})();
