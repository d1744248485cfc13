// The verification page: take a dropped credential (or a pasted digest, or a kept proof bundle), fetch its proof
// from the node that served this page, verify it here with ledger.js, and show the answer in plain words.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const FRESH_MS = 15 * 60 * 1000; // as `credledger verify`: an answer that can still change needs a recent checkpoint
  const WORDS = {
    valid: ["Valid", "This credential was issued on the ledger and has not been revoked."],
    revoked: ["Revoked", "The issuer has revoked this credential. It is no longer valid."],
    suspended: ["Suspended", "The issuer has put this credential on hold. It is not valid for now."],
    expired: ["Expired", "This credential was issued on the ledger but its validity has ended."],
    unknown: ["Not found", "No credential with this fingerprint was ever issued on this ledger."],
    failed: ["Could not be verified", "The proof the node sent failed a check. Do not rely on this credential's status."],
    error: ["Could not check", ""],
  };

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

  function show(status, { headline, summary, facts = [], checks = [], elapsed = null }) {
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
    $("checks-summary").textContent = `${checks.length} checks made in your browser`
      + (failed ? `, ${failed} failed` : ", all passed") + (elapsed === null ? "" : ` (${elapsed} ms)`);
    $("checks").hidden = checks.length === 0;
    $("checks").open = failed > 0;
    result.dataset.status = status; // set last: the browser tests wait for it
  }

  async function fetchBundle(digest) {
    const response = await fetch(`/v1/credentials/${LEDGER.toHex(digest)}`, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : `the node answered ${response.status}`;
      throw new Error(detail);
    }
    return body;
  }

  async function verify({ digest = null, bundle = null, how = null }) {
    const started = performance.now();
    const checks = [];
    if (digest) checks.push({ step: "digest", ok: true, detail: `fingerprint ${LEDGER.toHex(digest)} (${how})` });
    show("error", { headline: "Checking\u2026", summary: "Fetching the proof and checking it in your browser." });
    $("result").dataset.status = "checking";
    try {
      await genesisReady;
      const doc = bundle || (await fetchBundle(digest));
      const nowMs = Date.now();
      const verdict = await LEDGER.verifyBundle(doc, genesis, { digest, nowMs, checks });
      const elapsed = Math.round(performance.now() - started);
      const final = verdict.status === "revoked" || verdict.status === "expired";
      const stale = !final && nowMs - verdict.asOfMs > FRESH_MS;
      checks.push({
        step: "freshness",
        ok: !stale,
        detail: final
          ? `${verdict.status} is final`
          : `the certified checkpoint is from ${age(nowMs - verdict.asOfMs)}`
            + (stale ? "; newer events (such as a revocation) could be missing" : ""),
      });
      const [word] = WORDS[verdict.status];
      show(verdict.status, {
        headline: stale ? `${word} (as of ${date(verdict.asOfMs)})` : word,
        summary: verdict.issuer
          ? `${WORDS[verdict.status][1]} Issued by ${verdict.issuerName}.`
          : WORDS[verdict.status][1],
        facts: [
          ["Issued by", verdict.issuer ? `${verdict.issuerName} (${verdict.issuer})` : null],
          ["Issued on", date(verdict.issuedMs)],
          ["Expires", verdict.issuer ? date(verdict.expiresMs) || "never" : null],
          [verdict.status === "valid" ? "Reinstated on" : "Status changed on", date(verdict.changedMs)],
          ["True as of", `${date(verdict.asOfMs)} (block ${verdict.height})`],
          ["Fingerprint", verdict.digest],
        ],
        checks,
        elapsed,
      });
    } catch (error) {
      if (error instanceof LEDGER.ProofError) {
        checks.push({ step: error.step, ok: false, detail: error.detail });
        show("failed", { checks, elapsed: Math.round(performance.now() - started) });
      } else {
        show("error", { summary: `${error.message || error}`, checks });
      }
    }
  }

  async function takeFile(file) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const read = await LEDGER.readDocument(bytes);
    if (read.bundle) await verify({ bundle: read.bundle, digest: null, how: null });
    else if (read.refused) show("error", { summary: `${file.name}: ${read.refused}.` });
    else await verify({ digest: read.digest, how: `${file.name}, digest (${read.method})` });
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
    if (e.dataTransfer.files.length) takeFile(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => {
    if (e.target.files.length) takeFile(e.target.files[0]);
  });
  $("digest-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("digest").value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(text)) {
      show("error", { summary: "A fingerprint is 64 hexadecimal digits (0-9, a-f)." });
      return;
    }
    verify({ digest: LEDGER.fromHex(text), how: "pasted" });
  });
  if (!window.crypto || !crypto.subtle) {
    show("error", { summary: "This browser offers no WebCrypto here: open the page over HTTPS (or on localhost)." });
  }
})();
