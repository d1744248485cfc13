// The verification page: take a chosen credential (or a pasted digest, a kept proof bundle, a C2SP tlog-proof),
// fetch its current proof from the node that served this page, verify it here with ledger.js, and show the
// answer in plain words. An answer that could still have changed is never shown like a fresh one, and when
// nothing could be verified the page says so instead of showing passed checks.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const FRESH_MS = 15 * 60 * 1000; // as `credledger verify`: an answer that can still change needs a recent checkpoint
  const MAX_FILE_BYTES = 64 * 1024 * 1024; // the largest credential file the command line reads (cli/common.py)
  const WORDS = {
    valid: ["Valid", "This credential was issued on the ledger and has not been revoked."],
    revoked: ["Revoked", "The issuer has revoked this credential. It is no longer valid."],
    suspended: ["Suspended", "The issuer has put this credential on hold. It is not valid for now."],
    expired: ["Expired", "This credential was issued on the ledger but its validity has ended."],
    unknown: ["Not found", "No credential with this fingerprint was ever issued on this ledger."],
    failed: ["Could not be verified", "The proof the node sent failed a check. Do not rely on this credential's status."],
    stale: ["Could not confirm now", ""],
    issued: ["Issued \u2014 current status unknown", ""],
    unreachable: ["Could not check", "The node could not be reached, so nothing was verified. Check your connection "
      + "and try again, or ask another node of this network."],
    refused: ["Cannot compute this file's fingerprint", ""],
    error: ["Could not check", ""],
  };

  class Unreachable extends Error {}

  let genesis = null;
  const genesisReady = (async () => {
    genesis = await LEDGER.loadGenesis(JSON.parse($("genesis").textContent));
    $("genesis-hash").textContent = LEDGER.toHex(genesis.hash).slice(0, 16);
    return genesis;
  })();

  const date = (ms) => (ms === null || ms === undefined ? null : new Date(ms).toLocaleString(undefined, {
    dateStyle: "long", timeStyle: "short",
  }));

  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 10) return "a few seconds ago";
    if (s < 120) return `${s} seconds ago`;
    if (s < 7200) return `${Math.round(s / 60)} minutes ago`;
    if (s < 172800) return `${Math.round(s / 3600)} hours ago`;
    return `${Math.round(s / 86400)} days ago`;
  }

  function show(status, { headline, summary, facts = [], checks = [], elapsed = null, verdict = null }) {
    const result = $("result");
    const [word, sentence] = WORDS[status];
    result.hidden = false;
    result.className = `result ${status}`;
    $("status").textContent = headline || word;
    $("summary").textContent = summary || sentence;
    const list = $("facts");
    list.replaceChildren();
    for (const [label, value] of facts) {
      if (value === null || value === undefined) continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    const items = $("check-list");
    items.replaceChildren();
    for (const c of checks) {
      const li = document.createElement("li");
      li.className = c.ok ? "ok" : "failed";
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = c.ok ? "\u2713" : "\u2717";
      mark.setAttribute("aria-label", c.ok ? "passed" : "failed");
      const step = document.createElement("strong");
      step.textContent = `${c.step}: `;
      li.append(mark, step, document.createTextNode(c.detail));
      items.append(li);
    }
    const failed = checks.filter((c) => !c.ok).length;
    $("checks-summary").textContent = checks.length === 0 ? "" : `${checks.length} ${checks.length === 1 ? "check" : "checks"} made in your `
      + `browser${failed ? `, ${failed} failed` : ", all passed"}${elapsed === null ? "" : ` (${elapsed} ms)`}`;
    $("checks").hidden = checks.length === 0;
    $("checks").open = failed > 0;
    result.dataset.verdict = verdict || status;
    result.dataset.status = status; // set last: the browser tests wait for it
    if (status !== "checking") {
      result.scrollIntoView({ block: "start" });
      $("status").focus({ preventScroll: true });
    }
  }

  function checking(name) {
    show("error", { headline: "Checking\u2026", summary: name ? `Checking ${name} in your browser.` : "Checking in your browser." });
    $("result").className = "result checking";
    $("result").dataset.status = "checking";
  }

  // The node's current proof bundle for `digest`; Unreachable if it cannot be asked, Error if it refuses.
  async function fetchBundle(digest) {
    let response;
    try {
      response = await fetch(`/v1/credentials/${LEDGER.toHex(digest)}`, { headers: { Accept: "application/json" } });
    } catch (error) {
      throw new Unreachable(`${error.message || error}`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : `the node answered HTTP ${response.status}`;
      throw new Error(`The node could not give a proof: ${detail}`);
    }
    return body;
  }

  const isFinal = (verdict) => verdict.status === "revoked" || verdict.status === "expired";

  function freshness(verdict, nowMs, source) {
    const stale = !isFinal(verdict) && nowMs - verdict.asOfMs > FRESH_MS;
    return {
      stale,
      check: {
        step: "freshness",
        ok: !stale,
        detail: isFinal(verdict)
          ? `${verdict.status} is final`
          : `${source} certified checkpoint is from ${age(nowMs - verdict.asOfMs)}`
            + (stale ? "; newer events (such as a revocation or suspension) could be missing" : ""),
      },
    };
  }

  function verdictFacts(verdict, file, method) {
    return [
      ["Checked file", file],
      ["Issued by", verdict.issuer ? `${verdict.issuerName} (${verdict.issuer})` : null],
      ["Issued on", date(verdict.issuedMs)],
      ["Expires", verdict.issuer ? date(verdict.expiresMs) || "never" : null],
      [verdict.status === "valid" ? "Reinstated on" : "Status changed on", date(verdict.changedMs)],
      ["True as of", `${date(verdict.asOfMs)} (block ${verdict.height})`],
      [method ? `Fingerprint (${method})` : "Fingerprint", verdict.digest],
    ];
  }

  // Show a verified answer. `confirmed` says whether the node was asked successfully just now.
  function showVerdict(verdict, { checks, started, file, method, stale, confirmed, note = "" }) {
    const elapsed = Math.round(performance.now() - started);
    const [word, sentence] = WORDS[verdict.status];
    const issuedBy = verdict.issuer ? ` Issued by ${verdict.issuerName}.` : "";
    const facts = verdictFacts(verdict, file, method);
    if (stale) {
      const why = confirmed ? "the node's newest certified answer is this old" : "could not confirm now";
      show("stale", {
        headline: `${word} as of ${date(verdict.asOfMs)} \u2014 stale, ${why}`,
        summary: `This was the credential's certified status on ${date(verdict.asOfMs)}.${issuedBy} It may have `
          + `been revoked or suspended since: do not rely on it until it can be checked again.${note}`,
        facts, checks, elapsed, verdict: verdict.status,
      });
      return;
    }
    show(verdict.status, { summary: `${sentence}${issuedBy}${note}`, facts, checks, elapsed });
  }

  // A credential (by digest) checked against the node's current proof; `signed`, a signed credential's document,
  // also has its Data Integrity proof checked against the issuer key that registered it (dataintegrity.js).
  async function checkDigest(digest, { file = null, method = null, signed = null }) {
    const started = performance.now();
    const checks = [];
    checks.push({ step: "digest", ok: true, detail: `fingerprint ${LEDGER.toHex(digest)} (${method || "pasted"})` });
    checking(file);
    try {
      await genesisReady;
      const doc = await fetchBundle(digest);
      const nowMs = Date.now();
      const verdict = await LEDGER.verifyBundle(doc, genesis, { digest, nowMs, checks });
      await WITNESSES.checkBundle(doc, checks, "the node's proof");
      const { stale, check } = freshness(verdict, nowMs, "the node's");
      checks.push(check);
      const proven = signed === null || !verdict.issuer || await credentialProof(signed, verdict, { checks, started, file, method });
      if (!proven) return;
      showVerdict(verdict, { checks, started, file, method, stale, confirmed: true });
    } catch (error) {
      fail(error, { checks, started, file, blame: "node" });
    }
  }

  // The credential-proof check, as `credledger verify` makes it for a signed credential. On failure the answer is
  // shown here (the ledger's status does not make a credential whose own proof fails valid); returns whether it passed.
  async function credentialProof(signed, verdict, { checks, started, file, method }) {
    const proof = await DATA_INTEGRITY.checkCredential(signed, verdict);
    checks.push(proof);
    if (proof.ok) return true;
    show("failed", {
      headline: "Its signature does not verify",
      summary: `This credential is registered on the ledger by ${verdict.issuerName}, but its own Data Integrity proof `
        + "fails a check: it was altered after it was signed, or it was not signed by the key that registered it. "
        + "Do not rely on it.",
      facts: verdictFacts(verdict, file, method),
      checks,
      elapsed: Math.round(performance.now() - started),
      verdict: "invalid-proof",
    });
    return false;
  }

  function fail(error, { checks, started, file, blame }) {
    const elapsed = Math.round(performance.now() - started);
    const facts = [["Checked file", file]];
    if (error instanceof Unreachable) {
      show("unreachable", { facts });
    } else if (error instanceof LEDGER.ProofError) {
      checks.push({ step: error.step, ok: false, detail: error.detail });
      const summary = blame === "node"
        ? WORDS.failed[1]
        : `The file you chose (${file}) failed a check: it was altered, or it was not made by this network. `
          + "Do not rely on it.";
      show("failed", { summary, facts, checks, elapsed });
    } else {
      show("error", { summary: `${error.message || error}`, facts });
    }
  }

  // A kept proof bundle: verified offline first, then against the node's current proof, showing the newest answer.
  // With `digest` the bundle must be that credential's; `signed` (its signed document) also gets the credential-proof
  // check against the newest answer's issuer records.
  async function checkReceipt(doc, file, { digest = null, signed = null } = {}) {
    const started = performance.now();
    const checks = [];
    checking(file);
    let kept;
    try {
      await genesisReady;
      kept = await LEDGER.verifyBundle(doc, genesis, { digest, nowMs: Date.now(), checks });
      await WITNESSES.checkBundle(doc, checks, "the proof file you chose");
    } catch (error) {
      fail(error, { checks, started, file, blame: "file" });
      return;
    }
    checks.push({ step: "receipt", ok: true, detail: `the proof file you chose is genuine: certified at block ${kept.height}` });
    let current = null;
    let note = "";
    try {
      const fresh = await fetchBundle(LEDGER.fromHex(kept.digest));
      const verified = await LEDGER.verifyBundle(fresh, genesis, { digest: LEDGER.fromHex(kept.digest), nowMs: Date.now(), checks });
      await WITNESSES.checkBundle(fresh, checks, null);
      current = verified; // only a proof that meets the witness policy may replace the kept one
      checks.push({ step: "current", ok: true, detail: `the node's current proof (block ${current.height}) verifies` });
    } catch (error) {
      if (error instanceof LEDGER.ProofError) {
        checks.push({ step: error.step, ok: false, detail: `the node's current proof: ${error.detail}` });
        note = " The node's current proof failed a check, so only the proof file you chose was used.";
      } else {
        checks.push({ step: "current", ok: false, detail: `could not ask the node for the current status: ${error.message || error}` });
        note = " The node could not be reached to check the current status.";
      }
    }
    const newest = current && current.height >= kept.height ? current : kept;
    const nowMs = Date.now();
    const { stale, check } = freshness(newest, nowMs, newest === current ? "the node's" : "the proof file's");
    checks.push(check);
    const proven = signed === null || !newest.issuer || await credentialProof(signed, newest, { checks, started, file, method: null });
    if (!proven) return;
    showVerdict(newest, { checks, started, file, method: null, stale, confirmed: newest === current, note });
  }

  // A C2SP tlog-proof: the issue event is in the certified log; the current status comes from the node.
  async function checkTlogProof(text, file) {
    const started = performance.now();
    const checks = [];
    checking(file);
    let issued;
    try {
      await genesisReady;
      issued = await LEDGER.verifyTlogProof(text, genesis, { checks });
    } catch (error) {
      fail(error, { checks, started, file, blame: "file" });
      return;
    }
    try {
      const doc = await fetchBundle(issued.digest);
      const nowMs = Date.now();
      const verdict = await LEDGER.verifyBundle(doc, genesis, { digest: issued.digest, nowMs, checks });
      await WITNESSES.checkBundle(doc, checks, "the node's proof");
      const { stale, check } = freshness(verdict, nowMs, "the node's");
      checks.push(check);
      showVerdict(verdict, { checks, started, file, method: "from the tlog-proof", stale, confirmed: true });
    } catch (error) {
      if (error instanceof LEDGER.ProofError) {
        fail(error, { checks, started, file, blame: "node" });
        return;
      }
      checks.push({ step: "current", ok: false, detail: `could not ask the node for the current status: ${error.message || error}` });
      show("issued", {
        summary: `This C2SP tlog-proof shows the credential was issued on this ledger by ${issued.issuer} (in the log `
          + `certified at block ${issued.height}). It says nothing about revocation, and the node could not be `
          + "reached to check the current status.",
        facts: [["Checked file", file], ["Fingerprint", LEDGER.toHex(issued.digest)]],
        checks,
        elapsed: Math.round(performance.now() - started),
      });
    }
  }

  // Two files chosen together: a credential and the proof bundle kept for that very credential, as `credledger verify
  // CREDENTIAL --bundle FILE` takes them. Returns them read ({file, bytes, doc} each), or null if they are not such
  // a pair (then they go where several files go: the record view).
  async function readPair(files) {
    if (files.length !== 2 || files.some((f) => f.size > MAX_FILE_BYTES)) return null;
    const read = [];
    for (const file of files) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      read.push({ file, bytes, doc: await LEDGER.readDocument(bytes) });
    }
    const kept = read.find((r) => r.doc.bundle);
    const credential = read.find((r) => !r.doc.bundle);
    const same = kept && credential && credential.doc.digest && kept.doc.bundle.digest === LEDGER.toHex(credential.doc.digest);
    return same ? { kept, credential } : null;
  }

  // The credential is checked with the bundle kept for it, then against the node's current proof, as a kept bundle is.
  async function takePair({ kept, credential }) {
    const names = `${credential.file.name} and ${kept.file.name}`;
    $("file-name").textContent = names;
    const { digest } = credential.doc;
    await checkReceipt(kept.doc.bundle, names, { digest, signed: DATA_INTEGRITY.signedDocument(credential.bytes) });
  }

  async function takeFile(file) {
    $("file-name").textContent = file.name;
    if (file.size > MAX_FILE_BYTES) {
      show("refused", {
        summary: `${file.name}: larger than ${MAX_FILE_BYTES} bytes, the most a credential file may be here and on the `
          + "command line.",
        facts: [["Checked file", file.name]],
      });
      return;
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const read = await LEDGER.readDocument(bytes);
    if (read.bundle) await checkReceipt(read.bundle, file.name);
    else if (read.tlogProof) await checkTlogProof(read.tlogProof, file.name);
    else if (read.refused) {
      show("refused", {
        summary: `${file.name}: ${read.refused}. The command line refuses it in the same words; `
          + "`credledger verify --raw` hashes the file's bytes instead.",
        facts: [["Checked file", file.name]],
      });
    } else await checkDigest(read.digest, { file: file.name, method: read.method, signed: DATA_INTEGRITY.signedDocument(bytes) });
  }

  // Several files, or one learner's saved record, go to the record view (record.js); one credential stays here.
  async function takeFiles(files) {
    const chosen = [...files];
    const pair = await readPair(chosen); // a credential with the bundle kept for it (dataintegrity.js checks its proof)
    if (pair !== null) {
      RECORD_VIEW.hide();
      await takePair(pair);
      return;
    }
    if (await RECORD_VIEW.wants(chosen)) {
      $("file-name").textContent = chosen.map((f) => f.name).join(", ");
      await RECORD_VIEW.take(chosen);
      return;
    }
    RECORD_VIEW.hide();
    await takeFile(chosen[0]);
  }

  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) takeFiles(e.dataTransfer.files);
  });
  $("choose").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    if (e.target.files.length) takeFiles(e.target.files);
    e.target.value = ""; // choosing the same file again checks it again
  });
  $("digest-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("digest").value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(text)) {
      show("error", { summary: "A fingerprint is 64 hexadecimal digits (0-9, a-f)." });
      return;
    }
    RECORD_VIEW.hide();
    checkDigest(LEDGER.fromHex(text), {});
  });
  if (!window.crypto || !crypto.subtle) {
    show("error", { summary: "This browser offers no WebCrypto here: open the page over HTTPS (or on localhost)." });
  }
})();
