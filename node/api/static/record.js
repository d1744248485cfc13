// The page's record view: a learner's whole record at once. Either one saved record (credledger-record/v1) is
// verified offline, or several credential files (documents or kept proof bundles) are named by their digests and
// the node serving this page is asked for their record (POST /v1/record), which is then verified here in the same
// way. The view shows each credential's status, what the valid ones add up to (credits per system, levels,
// skills) and, when the node can be asked (POST /v1/pathway), the awards the record completes and what is
// missing toward the others -- advice from the node, marked as such, since it is not checked here.
"use strict";

const RECORD_VIEW = (() => {
  const $ = (id) => document.getElementById(id);
  const MAX_FILE_BYTES = 64 * 1024 * 1024; // as ledger/record.py MAX_RECORD_BYTES and the single-file view
  const MAX_CREDENTIALS = 1000; // as ledger/record.py MAX_RECORD_CREDENTIALS
  const FRESH_MS = 15 * 60 * 1000; // as the single-credential view: older statuses may have changed since
  const STATUS_WORDS = {
    valid: "Valid", revoked: "Revoked", suspended: "Suspended", expired: "Expired", unknown: "Not found",
  };

  class Unreachable extends Error {}

  let genesisPromise = null;
  const genesis = () => {
    genesisPromise = genesisPromise || LEDGER.loadGenesis(JSON.parse($("genesis").textContent));
    return genesisPromise;
  };
  const read = new WeakMap(); // File -> its text, or null when it cannot be a record

  const date = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
  const el = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  };

  // The saved record in `file`, parsed, or null if the file is not one.
  async function recordIn(file) {
    if (!read.has(file)) {
      let doc = null;
      if (file.size <= MAX_FILE_BYTES) {
        const head = await file.slice(0, 4096).text();
        if (head.trimStart().startsWith("{") && head.includes(LEDGER.RECORD_FORMAT)) {
          try {
            const parsed = JSON.parse(await file.text());
            if (parsed && parsed.format === LEDGER.RECORD_FORMAT) doc = parsed;
          } catch {
            doc = null; // not JSON after all: the single-file view says what it is
          }
        }
      }
      read.set(file, doc);
    }
    return read.get(file);
  }

  // Whether the files are for this view: several at once, or one saved record.
  async function wants(files) {
    return files.length > 1 || (files.length === 1 && (await recordIn(files[0])) !== null);
  }

  function hide() {
    $("record").hidden = true;
  }

  async function postJson(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body),
      });
    } catch (error) {
      throw new Unreachable(`${error.message || error}`);
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(answer && answer.detail ? answer.detail : `the node answered HTTP ${response.status}`);
    }
    return answer;
  }

  // The digest each chosen credential file names, in order; throws an Error saying which file cannot be used.
  async function digestsOf(files) {
    const digests = [];
    const seen = new Map();
    const subjects = new Map(); // credentialSubject.id -> the first file naming it
    for (const file of files) {
      if (await recordIn(file)) throw new Error(`${file.name} is a saved record: drop it on its own`);
      if (file.size > MAX_FILE_BYTES) throw new Error(`${file.name}: larger than ${MAX_FILE_BYTES} bytes`);
      const doc = await LEDGER.readDocument(new Uint8Array(await file.arrayBuffer()));
      if (doc.refused) throw new Error(`${file.name}: ${doc.refused}`);
      if (doc.tlogProof) throw new Error(`${file.name} is a tlog-proof: choose the credential or its proof bundle instead`);
      const subject = doc.bundle ? null : await subjectOf(file);
      if (subject !== null && !subjects.has(subject)) subjects.set(subject, file.name);
      const hex = doc.bundle ? String(doc.bundle.digest) : LEDGER.toHex(doc.digest);
      if (seen.has(hex)) throw new Error(`${file.name} and ${seen.get(hex)} are the same credential`);
      seen.set(hex, file.name);
      digests.push(hex);
    }
    if (digests.length > MAX_CREDENTIALS) throw new Error(`a record holds at most ${MAX_CREDENTIALS} credentials`);
    if (subjects.size > 1) {
      const named = [...subjects].map(([subject, name]) => `${name}: ${subject}`).join("; ");
      throw new Error(`the credentials name different subjects (${named}); a record is one learner's`);
    }
    return digests;
  }

  // The subject a credential document names (credentialSubject.id), or null: the ledger never learns who a
  // learner is, so a record's credentials are checked to name one subject here, as on the command line.
  async function subjectOf(file) {
    try {
      const doc = JSON.parse(await file.text());
      const subject = doc && typeof doc === "object" ? doc.credentialSubject : null;
      return subject && typeof subject === "object" && typeof subject.id === "string" ? subject.id : null;
    } catch {
      return null; // not JSON: nothing names a subject
    }
  }

  // Check the chosen files as one learner's record and show the answer.
  async function take(files) {
    const started = performance.now();
    $("result").hidden = true;
    const named = files.length === 1 ? files[0].name : `${files.length} files`;
    showMessage("checking", "Checking\u2026", `Checking ${named} in your browser.`);
    let doc;
    let source;
    try {
      doc = await recordIn(files[0]);
      if (files.length === 1 && doc) {
        source = "the record file";
      } else {
        doc = await postJson("/v1/record", { digests: await digestsOf(files) });
        source = "the node's";
      }
    } catch (error) {
      if (error instanceof Unreachable) {
        showMessage("unreachable", "Could not check", "The node could not be reached, so nothing was verified.");
      } else {
        showMessage("error", "Could not check", `${error.message || error}`);
      }
      return;
    }
    const checks = [];
    let verdict;
    try {
      verdict = await LEDGER.verifyRecord(doc, await genesis(), { checks });
    } catch (error) {
      if (!(error instanceof LEDGER.ProofError)) {
        showMessage("error", "Could not check", `${error.message || error}`);
        return;
      }
      checks.push({ step: error.step, ok: false, detail: error.detail });
      const blame = source === "the record file"
        ? `The record file (${named}) failed a check: it was altered, or it was not made by this network.`
        : "The record the node sent failed a check.";
      showMessage("failed", "Could not be verified", `${blame} Do not rely on it.`, checks, elapsed(started));
      return;
    }
    const verifiedMs = elapsed(started);
    render(verdict, { checks, source, named, verifiedMs });
    $("record").dataset.status = "checking"; // until the awards are shown too
    await showAwards(verdict);
    $("record").dataset.status = statusOf(verdict); // set last: the browser tests wait for it
  }

  const elapsed = (started) => Math.round(performance.now() - started);

  const statusOf = (verdict) => (verdict.results.every((r) => r.verdict.status === "valid") ? "valid" : "partial");

  function showMessage(status, headline, summary, checks = [], ms = null) {
    const view = $("record");
    view.hidden = false;
    view.className = `record ${status}`;
    $("record-status").textContent = headline;
    $("record-summary").textContent = summary;
    for (const id of ["record-facts", "record-table", "record-awards"]) $(id).replaceChildren();
    renderChecks(checks, ms);
    view.dataset.status = status;
    if (status !== "checking") {
      view.scrollIntoView({ block: "start" });
      $("record-status").focus({ preventScroll: true });
    }
  }

  function renderChecks(checks, ms) {
    const list = $("record-check-list");
    list.replaceChildren();
    for (const c of checks) {
      const li = el("li", null, c.ok ? "ok" : "failed");
      const mark = el("span", c.ok ? "\u2713" : "\u2717", "mark");
      mark.setAttribute("aria-label", c.ok ? "passed" : "failed");
      li.append(mark, el("strong", `${c.step}: `), document.createTextNode(c.detail));
      list.append(li);
    }
    const failed = checks.filter((c) => !c.ok).length;
    $("record-checks-summary").textContent = checks.length === 0 ? ""
      : `${checks.length} checks made in your browser${failed ? `, ${failed} failed` : ", all passed"}`
        + `${ms === null ? "" : ` (${ms} ms)`}`;
    $("record-checks").hidden = checks.length === 0;
    $("record-checks").open = failed > 0;
    $("record").dataset.elapsed = ms === null ? "" : String(ms);
  }

  function render(verdict, { checks, source, named, verifiedMs }) {
    const total = verdict.results.length;
    const valid = verdict.results.filter((r) => r.verdict.status === "valid").length;
    const stale = Date.now() - verdict.asOfMs > FRESH_MS;
    showMessage(statusOf(verdict), valid === total ? `All ${total} credentials valid` : `${valid} of ${total} credentials valid`,
      `A learner's record of ${total} ${total === 1 ? "credential" : "credentials"}, every proof checked in your browser `
        + `against one certified checkpoint of ${verdict.origin}.`
        + (stale ? ` These statuses are as of ${date(verdict.asOfMs)}: a credential may have been revoked or `
          + "suspended since." : ""),
      checks, verifiedMs);
    $("record").classList.toggle("stale", stale);
    const facts = $("record-facts");
    const credits = Object.entries(verdict.credits).sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([system, amount]) => `${LEDGER.formatCredits(amount)} ${system}`);
    for (const [label, value] of [
      ["Checked", `${named} (${source === "the record file" ? "offline, from the file" : "the node's current proofs"})`],
      ["True as of", `${date(verdict.asOfMs)} (block ${verdict.height})`],
      ["Credits (valid credentials)", credits.join(", ") || "none"],
      ["Levels", verdict.levels.join(", ") || "none"],
      ["Skills", verdict.skills.map((s) => s.name).join(", ") || "none"],
    ]) {
      facts.append(el("dt", label), el("dd", value));
    }
    const table = $("record-table");
    const head = el("tr");
    for (const title of ["Status", "Achievement", "Credits", "Issued by", "Fingerprint"]) head.append(el("th", title));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    for (const r of verdict.results) {
      const row = el("tr", null, `row ${r.verdict.status}`);
      const a = r.achievement;
      const d = r.definition;
      row.append(
        el("td", STATUS_WORDS[r.verdict.status] || r.verdict.status, "state"),
        el("td", a ? `${d.name} (${a.member}/${a.id} v${a.version}${d.level ? `, ${d.level}` : ""})` : "\u2014"),
        el("td", d && d.credits ? `${LEDGER.formatCredits(d.credits.amount)} ${d.credits.system}` : "\u2014"),
        el("td", r.verdict.issuer ? `${r.verdict.issuerName} (${r.verdict.issuer})` : "\u2014"),
        el("td", `${r.verdict.digest.slice(0, 16)}\u2026`, "digest"),
      );
      row.title = r.verdict.digest;
      table.tBodies[0].append(row);
    }
  }

  // The awards the record completes and the closest others, as the node evaluates them (not verified here).
  async function showAwards(verdict) {
    const box = $("record-awards");
    box.replaceChildren(el("h3", "Awards"));
    const digests = verdict.results.map((r) => r.verdict.digest);
    let answer;
    try {
      answer = await postJson("/v1/pathway", { digests });
    } catch (error) {
      box.append(el("p", `Could not ask the node which awards this record completes (${error.message || error}); `
        + "the record itself is verified above.", "note"));
      box.dataset.state = "unavailable";
      return;
    }
    const complete = answer.pathways.filter((p) => p.complete);
    const open = answer.pathways.filter((p) => !p.complete).slice(0, 10);
    box.append(el("p", `As the node evaluates the published award rules at block ${answer.height} (advice: the ledger `
      + "checks the rule again when an award is issued).", "note"));
    if (answer.pathways.length === 0) box.append(el("p", "No published award has a stacking rule."));
    if (complete.length) {
      box.append(el("h4", "Completes"));
      const list = el("ul", null, "complete");
      for (const p of complete) list.append(el("li", `${p.name} (${p.achievement})`));
      box.append(list);
    }
    if (open.length) {
      box.append(el("h4", "Closest toward"));
      const list = el("ul", null, "missing");
      for (const p of open) list.append(standing(p));
      box.append(list);
    }
    if (answer.pathways.length) box.append(towardChooser(digests, answer.pathways));
    box.dataset.state = "shown";
  }

  // One award's standing: complete, or what is missing toward it.
  function standing(p) {
    if (p.complete) return el("li", `${p.name} (${p.achievement}): complete`, "complete");
    const li = el("li", `${p.name} (${p.achievement}): missing `);
    const what = el("ul");
    for (const m of p.missing) what.append(el("li", m));
    li.append(what);
    return li;
  }

  // A choice of one award, asked of the node with `toward`: its whole standing, however far the record is from it.
  function towardChooser(digests, pathways) {
    const part = el("div", null, "toward");
    const label = el("label", "Toward one award: ");
    const select = el("select");
    select.id = "record-toward";
    select.append(el("option", "choose an award\u2026"));
    select.options[0].value = "";
    const names = pathways.map((p) => [p.achievement, p.name]).sort((a, b) => a[1].localeCompare(b[1]));
    for (const [achievement, name] of names) {
      const option = el("option", `${name} (${achievement})`);
      option.value = achievement;
      select.append(option);
    }
    label.append(select);
    const result = el("div");
    result.id = "record-toward-result";
    select.addEventListener("change", async () => {
      const toward = select.value;
      result.replaceChildren();
      delete result.dataset.state;
      if (!toward) return;
      try {
        const answer = await postJson("/v1/pathway", { digests, toward });
        if (select.value !== toward) return; // another award was chosen meanwhile
        const list = el("ul", null, "missing");
        for (const p of answer.pathways) list.append(standing(p));
        result.append(list);
        result.dataset.state = "shown";
      } catch (error) {
        if (select.value !== toward) return;
        result.append(el("p", `Could not ask the node about ${toward} (${error.message || error}).`, "note"));
        result.dataset.state = "unavailable";
      }
    });
    part.append(label, result);
    return part;
  }

  return { wants, take, hide };
})();
