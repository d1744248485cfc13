// The page's witness policy, as ledger/witnesspolicy.py's flat policy (`--witness VKEY` repeated, `--witness-quorum
// K`): a person lists outside witnesses' cosigner vkeys and how many must have cosigned, and a proof whose
// checkpoint lacks that many valid C2SP tlog-cosignature v1 lines is refused, naming the witnesses missing. A line
// from a listed witness that does not verify refuses the proof too (c2sp.org/signed-note); lines of other keys are
// ignored. Self-contained: WebCrypto for SHA-256 and Ed25519, LEDGER only for its ProofError.
"use strict";

const WITNESSES = (() => {
  const $ = (id) => document.getElementById(id);
  const utf8 = new TextEncoder();
  const COSIGNATURE_TYPE = 0x04; // c2sp.org/signed-note: timestamped Ed25519 witness cosignatures
  const TIMESTAMPED_SIGNATURE_SIZE = 8 + 64; // tlog-cosignature: big-endian u64 timestamp, Ed25519 signature
  const MAX_WITNESSES = 256; // as ledger/witnesspolicy.py MAX_ENTRIES
  const MAX_TIMESTAMP = 2n ** 63n - 1n;
  const STEP = "witnesses";

  class PolicyError extends Error {}

  function fromBase64(text) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // tlog-cosignature: key id = SHA-256(name || "\n" || 0x04 || public key)[:4].
  async function cosignerKeyId(name, raw) {
    const message = new Uint8Array([...utf8.encode(`${name}\n`), COSIGNATURE_TYPE, ...raw]);
    return new Uint8Array(await crypto.subtle.digest("SHA-256", message)).slice(0, 4);
  }

  // A cosigner vkey `<name>+<hex key id>+<base64(0x04 || key)>`, checked as CosignerKey.from_vkey checks it.
  async function parseVkey(text) {
    const first = text.indexOf("+");
    const second = first < 0 ? -1 : text.indexOf("+", first + 1);
    const parts = second < 0 ? [text] : [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
    const shown = text.length > 60 ? `${text.slice(0, 60)}\u2026` : text;
    if (parts.length !== 3 || !parts[0] || /\s/.test(parts[0])) {
      throw new PolicyError(`witness key ${shown}: expected <name>+<hex id>+<base64 key>`);
    }
    const [name, id, encoded] = parts;
    const blob = fromBase64(encoded);
    if (!/^[0-9a-f]{8}$/.test(id) || blob === null) throw new PolicyError(`witness key ${name}: bad hex key id or base64 key`);
    if (blob.length === 0 || blob[0] !== COSIGNATURE_TYPE) {
      const kind = blob.length ? `0x${blob[0].toString(16).padStart(2, "0")}` : "nothing";
      throw new PolicyError(`witness key ${name}: expected signature type 0x04 (Ed25519 cosignature), got ${kind}`);
    }
    if (blob.length !== 33) throw new PolicyError(`witness key ${name}: expected a 32-byte Ed25519 key`);
    const raw = blob.slice(1);
    const keyId = await cosignerKeyId(name, raw);
    if (hex(keyId) !== id) throw new PolicyError(`witness key ${name}: key id ${id} does not match the key (${hex(keyId)})`);
    return { name, keyId, raw };
  }

  // The policy in the form: null when no witness is listed; a PolicyError says what is wrong with it.
  async function readPolicy() {
    const lines = $("witness-vkeys").value.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const quorumText = $("witness-quorum").value.trim();
    if (lines.length === 0) {
      if (quorumText && quorumText !== "0") throw new PolicyError("a witness quorum needs at least one witness key");
      return null;
    }
    if (lines.length > MAX_WITNESSES) throw new PolicyError(`more than ${MAX_WITNESSES} witness keys`);
    const witnesses = [];
    for (const line of lines) witnesses.push(await parseVkey(line));
    const names = witnesses.map((w) => w.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new PolicyError(`witnesses: the key name ${twice} appears twice`);
    const quorum = quorumText === "" ? witnesses.length : Number(quorumText);
    if (!/^(0|[1-9][0-9]*)$/.test(quorumText || "0") || quorum > witnesses.length) {
      throw new PolicyError(`witness quorum must be between 0 and the ${witnesses.length} witnesses, got ${quorumText}`);
    }
    return { witnesses, quorum };
  }

  // The checkpoint note's body and signature lines (c2sp.org/signed-note), as far as the cosignatures need them.
  function noteLines(note) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new LEDGER.ProofError(STEP, "the checkpoint is not a signed note");
    const body = note.slice(0, split + 1);
    const lines = note.slice(split + 2).split("\n").filter((l) => l);
    return { body, lines: lines.map((line) => /^\u2014 ([^ +]+) ([A-Za-z0-9+/=]+)$/.exec(line)).filter((m) => m) };
  }

  // tlog-cosignature: the witness signed "cosignature/v1\ntime <t>\n" || checkpoint body at time t.
  async function verifyCosignature(witness, body, blob) {
    if (blob.length !== TIMESTAMPED_SIGNATURE_SIZE) return false;
    const time = new DataView(blob.buffer, blob.byteOffset, 8).getBigUint64(0);
    if (time > MAX_TIMESTAMP) return false; // tlog-cosignature: the timestamp must not exceed 2^63 - 1
    const message = utf8.encode(`cosignature/v1\ntime ${time}\n${body}`);
    const key = await crypto.subtle.importKey("raw", witness.raw, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, blob.slice(8), message);
  }

  // Check the proof's checkpoint against `policy`; record the check, or throw a ProofError naming the missing.
  async function checkNote(note, policy, checks, source) {
    const from = source ? `${source}: ` : "";
    const { body, lines } = noteLines(note);
    const cosigned = new Set();
    for (const [, name, encoded] of lines) {
      const witness = policy.witnesses.find((w) => w.name === name);
      const blob = fromBase64(encoded);
      if (!witness || blob === null || blob.length < 4 || !sameBytes(blob.slice(0, 4), witness.keyId)) continue;
      if (cosigned.has(name)) continue; // as WitnessPolicy.check: a witness's first line is the one that counts
      if (!(await verifyCosignature(witness, body, blob.slice(4)))) {
        throw new LEDGER.ProofError(STEP, `${from}the cosignature of witness ${name} does not verify`);
      }
      cosigned.add(name);
    }
    const missing = policy.witnesses.map((w) => w.name).filter((n) => !cosigned.has(n));
    if (cosigned.size < policy.quorum) {
      throw new LEDGER.ProofError(STEP, `${from}the checkpoint carries ${cosigned.size} of the ${policy.quorum} `
        + `required witness cosignatures; missing: ${missing.join(", ")}`);
    }
    const who = cosigned.size ? [...cosigned].join(", ") : "nobody";
    checks.push({ step: STEP, ok: true, detail: `${from}cosigned by ${who} (${policy.quorum} of ${policy.witnesses.length} required)` });
  }

  // Apply the form's policy to a proof bundle (nothing to do when it lists no witness).
  // `source` names the proof in the check's detail (null: the caller names it).
  async function checkBundle(doc, checks, source) {
    const policy = await readPolicy();
    if (policy === null) return;
    if (!doc || typeof doc.checkpoint !== "string") throw new LEDGER.ProofError(STEP, "the proof carries no checkpoint");
    await checkNote(doc.checkpoint, policy, checks, source);
  }

  // Say in the form what the policy is, or what is wrong with it, as the person types.
  async function describe() {
    const state = $("witness-policy-state");
    try {
      const policy = await readPolicy();
      state.className = "";
      state.textContent = policy === null
        ? "No witness required: proofs are checked against the member institutions only."
        : `Proofs need the cosignatures of ${policy.quorum} of ${policy.witnesses.length} witnesses `
          + `(${policy.witnesses.map((w) => w.name).join(", ")}).`;
    } catch (error) {
      state.className = "policy-error";
      state.textContent = error.message;
    }
  }

  // The policy a person set is kept in this browser for this node's page, and shown open when there is one.
  const STORE_KEY = "credledger.witness-policy";

  function remember() {
    try {
      const vkeys = $("witness-vkeys").value;
      const quorum = $("witness-quorum").value;
      if (vkeys.trim() || quorum.trim()) localStorage.setItem(STORE_KEY, JSON.stringify({ vkeys, quorum }));
      else localStorage.removeItem(STORE_KEY);
    } catch {
      // no storage (a private window, or storage turned off): the policy lasts as long as the page
    }
  }

  function restore() {
    try {
      const kept = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (kept && typeof kept.vkeys === "string" && typeof kept.quorum === "string") {
        $("witness-vkeys").value = kept.vkeys;
        $("witness-quorum").value = kept.quorum;
        $("witness-details").open = true;
      }
    } catch {
      // nothing kept, or not readable: start without a policy
    }
  }

  for (const id of ["witness-vkeys", "witness-quorum"]) {
    $(id).addEventListener("input", () => {
      remember();
      describe();
    });
  }
  restore();
  describe();

  return { PolicyError, readPolicy, checkBundle };
})();
