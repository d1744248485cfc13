// JSON-LD 1.1 expansion and deserialization to RDF for the verification page, in "safe mode" as
// ledger/vc/canon.py runs pyld: what JSON-LD would drop silently (a term or type no context defines, an @id that
// is not an absolute IRI) is an error naming it, because a signature cannot protect what canonicalization ignores.
//
// Written from the JSON-LD 1.1 Processing Algorithms (Context Processing §4.1, Create Term Definition §4.2, IRI
// Expansion §5.2, Expansion §5.1, Value Expansion §5.3, Node Map Generation §7.2, Deserialize JSON-LD to RDF
// §8.1). It implements what the contexts credledger ships use -- protected terms, type- and property-scoped
// contexts, @vocab, @type @id / @vocab / @json, containers @set, @list, @graph and @language -- and refuses the
// rest (@reverse, @nest, @index and @id / @type maps, @import) with a message naming the feature. Contexts come
// only from `documents` (URL -> context document), which the page fills with the contexts the node ships.
"use strict";

const JSONLD = (() => {
  const RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
  const XSD = "http://www.w3.org/2001/XMLSchema#";
  const KEYWORDS = new Set(["@base", "@container", "@context", "@default", "@direction", "@embed", "@explicit",
    "@graph", "@id", "@import", "@included", "@index", "@json", "@language", "@list", "@nest", "@none",
    "@omitDefault", "@prefix", "@preserve", "@propagate", "@protected", "@requireAll", "@reverse", "@set", "@type",
    "@value", "@version", "@vocab"]);
  const TERM_KEYS = new Set(["@id", "@reverse", "@container", "@context", "@direction", "@index", "@language",
    "@nest", "@prefix", "@protected", "@type"]);
  const CONTAINERS = new Set(["@graph", "@language", "@list", "@set"]);
  // What pyld counts as an absolute IRI for a property, and what canon.py counts as one for @id and @type.
  const PROPERTY_IRI = /^([A-Za-z][A-Za-z0-9+,.-]*|_):[^\s]*$/;
  const ABSOLUTE_IRI = /^[A-Za-z][A-Za-z0-9+.-]*:/;
  const MAX_CONTEXT_URLS = 10; // as pyld: remote contexts loaded while processing one context
  const MAX_DEPTH = 512; // nesting of the document, so a hostile one cannot exhaust the stack
  const MAX_DOCUMENT_BYTES = 256 * 1024; // as ledger/vc/canon.py, measured as Python's json.dumps writes it
  const utf8 = new TextEncoder();

  class JsonLdError extends Error {}

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const asArray = (v) => (Array.isArray(v) ? v : [v]);
  const asList = (v) => (v === null ? [] : asArray(v)); // an expansion result as an array (null: nothing)
  const isKeyword = (v) => typeof v === "string" && KEYWORDS.has(v);
  const hasKeywordForm = (v) => typeof v === "string" && /^@[a-zA-Z]+$/.test(v);
  const isScalar = (v) => typeof v === "string" || typeof v === "number" || typeof v === "boolean"
    || typeof v === "bigint";
  const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  const sortedKeys = (o) => Object.keys(o).sort(byCodePoint);
  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

  // Python's repr() of a string, so the page names a term exactly as the command line does.
  function repr(text) {
    const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
    let out = "";
    for (const ch of text) {
      const code = ch.codePointAt(0);
      if (ch === "\\" || ch === quote) out += `\\${ch}`;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
      else out += ch;
    }
    return `${quote}${out}${quote}`;
  }

  // Deep equality of JSON values (term definitions, values in the node map).
  function same(a, b) {
    if (a === b) return true;
    if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
    if (isObject(a) && isObject(b)) {
      const ka = Object.keys(a);
      return ka.length === Object.keys(b).length && ka.every((k) => own(b, k) && same(a[k], b[k]));
    }
    return false;
  }

  // --- contexts ---------------------------------------------------------------------------------------------

  const emptyContext = () => ({ terms: new Map(), vocab: null, language: null, direction: null, previous: null });

  function cloneContext(ctx) {
    return { ...ctx, terms: new Map(ctx.terms) };
  }

  class Processor {
    constructor(documents) {
      this.documents = documents;
      this.overriding = false; // whether the context being processed may redefine protected terms
    }

    load(url, remote) {
      if (!own(this.documents, url)) {
        throw new JsonLdError(`document ${repr(url)} is not shipped with credledger; refusing to load it`);
      }
      if (remote.length >= MAX_CONTEXT_URLS) {
        throw new JsonLdError(`not valid JSON-LD: more than ${MAX_CONTEXT_URLS} remote contexts`);
      }
      const document = this.documents[url];
      if (!isObject(document) || !own(document, "@context")) {
        throw new JsonLdError(`not valid JSON-LD: ${url} is not a context document`);
      }
      return document["@context"];
    }

    // Context Processing (§4.1.2).
    processContext(active, local, { remote = [], overrideProtected = false, propagate = true, validate = true } = {}) {
      let result = cloneContext(active);
      if (isObject(local) && own(local, "@propagate")) {
        if (typeof local["@propagate"] !== "boolean") throw new JsonLdError("not valid JSON-LD: invalid @propagate value");
        propagate = local["@propagate"];
      }
      if (!propagate && result.previous === null) result.previous = active;
      for (const context of asArray(local)) {
        if (context === null) {
          if (!overrideProtected && [...result.terms.values()].some((t) => t.protected)) {
            throw new JsonLdError("not valid JSON-LD: a context cannot be set to null while it holds protected terms");
          }
          const previous = result.previous;
          result = emptyContext();
          if (!propagate) result.previous = previous;
          continue;
        }
        if (typeof context === "string") {
          if (!validate && remote.includes(context)) continue;
          const loaded = this.load(context, remote);
          result = this.processContext(result, loaded, { remote: [...remote, context], validate });
          continue;
        }
        if (!isObject(context)) throw new JsonLdError("not valid JSON-LD: a context must be an object, a URL or null");
        if (own(context, "@version") && context["@version"] !== 1.1) {
          throw new JsonLdError(`not valid JSON-LD: invalid @version value ${JSON.stringify(context["@version"])}`);
        }
        if (own(context, "@import")) throw new JsonLdError("@import in a context is not supported here");
        if (own(context, "@base") && context["@base"] !== null) {
          throw new JsonLdError("@base in a context is not supported here: identifiers must be absolute IRIs");
        }
        if (own(context, "@vocab")) {
          const vocab = context["@vocab"];
          if (vocab === null) result.vocab = null;
          else if (typeof vocab !== "string") throw new JsonLdError("not valid JSON-LD: invalid @vocab mapping");
          else {
            const iri = this.expandIri(result, vocab, { vocab: true, documentRelative: true });
            if (typeof iri !== "string" || !(PROPERTY_IRI.test(iri) || iri.startsWith("_:"))) {
              throw new JsonLdError(`not valid JSON-LD: @vocab ${repr(vocab)} is not an absolute IRI`);
            }
            result.vocab = iri;
          }
        }
        if (own(context, "@language")) {
          const language = context["@language"];
          if (language !== null && typeof language !== "string") {
            throw new JsonLdError("not valid JSON-LD: invalid default language");
          }
          result.language = language === null ? null : language.toLowerCase();
        }
        if (own(context, "@direction")) {
          const direction = context["@direction"];
          if (direction !== null && direction !== "ltr" && direction !== "rtl") {
            throw new JsonLdError("not valid JSON-LD: invalid base direction");
          }
          result.direction = direction;
        }
        const defined = new Map();
        const overriding = this.overriding;
        this.overriding = overrideProtected;
        for (const term of Object.keys(context)) {
          if (["@base", "@direction", "@import", "@language", "@propagate", "@protected", "@version", "@vocab"]
            .includes(term)) continue;
          this.defineTerm(result, context, term, defined);
        }
        this.overriding = overriding;
      }
      return result;
    }

    // Create Term Definition (§4.2.2).
    defineTerm(active, local, term, defined) {
      const protectedDefault = Boolean(local["@protected"]); // truthiness, as pyld reads it
      const overrideProtected = this.overriding;
      if (defined.get(term) === true) return;
      if (defined.get(term) === false) throw new JsonLdError(`not valid JSON-LD: cyclic IRI mapping for ${repr(term)}`);
      if (term === "") throw new JsonLdError("not valid JSON-LD: invalid term definition (empty term)");
      defined.set(term, false);
      let value = local[term];
      if (term === "@type" && isObject(value)
          && Object.keys(value).every((k) => (k === "@container" && value[k] === "@set") || k === "@protected")) {
        // JSON-LD 1.1 lets @type be declared a set (and protected); it changes nothing in expanded form.
      } else if (isKeyword(term)) {
        throw new JsonLdError(`not valid JSON-LD: keyword redefinition of ${term}`);
      } else if (hasKeywordForm(term)) {
        defined.set(term, true);
        return;
      }
      const previous = active.terms.get(term);
      active.terms.delete(term);
      let simple = false;
      if (value === null) value = { "@id": null };
      else if (typeof value === "string") {
        value = { "@id": value };
        simple = true;
      } else if (!isObject(value)) {
        throw new JsonLdError(`not valid JSON-LD: invalid term definition for ${repr(term)}`);
      }
      for (const key of Object.keys(value)) {
        if (!TERM_KEYS.has(key)) throw new JsonLdError(`not valid JSON-LD: invalid term definition for ${repr(term)} (${key})`);
      }
      const def = {
        id: null, prefix: false, protected: own(value, "@protected") ? Boolean(value["@protected"]) : protectedDefault,
        type: null, container: [], hasContext: false, context: undefined, language: undefined, direction: undefined,
      };
      if (own(value, "@type")) {
        const type = value["@type"];
        if (typeof type !== "string") throw new JsonLdError(`not valid JSON-LD: invalid type mapping for ${repr(term)}`);
        const iri = this.expandIri(active, type, { vocab: true, local, defined });
        if (!["@id", "@json", "@none", "@vocab"].includes(iri) && !(typeof iri === "string" && PROPERTY_IRI.test(iri))) {
          throw new JsonLdError(`not valid JSON-LD: invalid type mapping ${repr(type)} for ${repr(term)}`);
        }
        def.type = iri;
      }
      if (own(value, "@reverse")) throw new JsonLdError(`@reverse (in the definition of ${repr(term)}) is not supported here`);
      if (own(value, "@nest")) throw new JsonLdError(`@nest (in the definition of ${repr(term)}) is not supported here`);
      if (own(value, "@index")) throw new JsonLdError(`@index (in the definition of ${repr(term)}) is not supported here`);
      if (own(value, "@id") && value["@id"] !== term) {
        const id = value["@id"];
        if (id === null) def.id = null;
        else if (typeof id !== "string") throw new JsonLdError(`not valid JSON-LD: invalid IRI mapping for ${repr(term)}`);
        else if (!isKeyword(id) && hasKeywordForm(id)) {
          defined.set(term, true); // a reserved keyword-like value: the term stays undefined, as the spec asks
          return;
        } else {
          const iri = this.expandIri(active, id, { vocab: true, local, defined });
          if (!isKeyword(iri) && !(typeof iri === "string" && (PROPERTY_IRI.test(iri) || iri.startsWith("_:")))) {
            throw new JsonLdError(`not valid JSON-LD: invalid IRI mapping ${repr(id)} for ${repr(term)}`);
          }
          if (iri === "@context") throw new JsonLdError("not valid JSON-LD: invalid keyword alias @context");
          if (term.slice(1, -1).includes(":") || term.includes("/")) {
            defined.set(term, true);
            const own_ = this.expandIri(active, term, { vocab: true, local, defined });
            if (own_ !== iri) throw new JsonLdError(`not valid JSON-LD: invalid IRI mapping for ${repr(term)}`);
          }
          def.id = iri;
          if (!term.includes(":") && !term.includes("/") && simple && (/[:/?#[\]@]$/.test(iri) || iri.startsWith("_:"))) {
            def.prefix = true;
          }
        }
      } else if (term.slice(1).includes(":")) {
        const at = term.indexOf(":", 1);
        const prefix = term.slice(0, at);
        const suffix = term.slice(at + 1);
        if (own(local, prefix)) this.defineTerm(active, local, prefix, defined);
        const prefixDef = active.terms.get(prefix);
        def.id = prefixDef && prefixDef.id !== null ? prefixDef.id + suffix : term;
      } else if (term.includes("/")) {
        throw new JsonLdError(`not valid JSON-LD: invalid IRI mapping for ${repr(term)}`);
      } else if (term === "@type") {
        def.id = "@type";
      } else if (active.vocab !== null) {
        def.id = active.vocab + term;
      } else {
        throw new JsonLdError(`not valid JSON-LD: ${repr(term)} has no IRI mapping and no @vocab applies`);
      }
      if (own(value, "@container")) {
        const container = asArray(value["@container"]);
        for (const c of container) {
          if (typeof c !== "string") throw new JsonLdError(`not valid JSON-LD: invalid container mapping for ${repr(term)}`);
          if (!CONTAINERS.has(c)) throw new JsonLdError(`@container ${c} (in the definition of ${repr(term)}) is not supported here`);
        }
        if (container.includes("@list") && container.length > 1) {
          throw new JsonLdError(`not valid JSON-LD: invalid container mapping for ${repr(term)}`);
        }
        def.container = [...container].sort(byCodePoint);
      }
      if (own(value, "@context")) {
        def.hasContext = true;
        def.context = value["@context"];
      }
      if (own(value, "@language") && !own(value, "@type")) {
        const language = value["@language"];
        if (language !== null && typeof language !== "string") {
          throw new JsonLdError(`not valid JSON-LD: invalid language mapping for ${repr(term)}`);
        }
        def.language = language === null ? null : language.toLowerCase();
      }
      if (own(value, "@direction") && !own(value, "@type")) def.direction = value["@direction"];
      if (own(value, "@prefix")) {
        if (term.includes(":") || term.includes("/") || typeof value["@prefix"] !== "boolean") {
          throw new JsonLdError(`not valid JSON-LD: invalid @prefix value for ${repr(term)}`);
        }
        def.prefix = value["@prefix"];
      }
      if (!overrideProtected && previous && previous.protected) {
        const { protected: _a, ...was } = previous;
        const { protected: _b, ...now } = def;
        if (!same(was, now)) {
          throw new JsonLdError(`not valid JSON-LD: protected term redefinition of ${repr(term)}`);
        }
        active.terms.set(term, previous);
      } else {
        active.terms.set(term, def);
      }
      defined.set(term, true);
    }

    // IRI Expansion (§5.2.2). With no base IRI (as canon.py runs pyld), a relative reference stays relative.
    expandIri(active, value, { documentRelative = false, vocab = false, local = null, defined = null } = {}) {
      if (value === null || isKeyword(value)) return value;
      if (hasKeywordForm(value)) return null;
      if (local !== null && own(local, value) && defined.get(value) !== true) this.defineTerm(active, local, value, defined);
      const def = active.terms.get(value);
      if (def && isKeyword(def.id)) return def.id;
      if (vocab && def) return def.id;
      const colon = value.indexOf(":", 1);
      if (colon > 0) {
        const prefix = value.slice(0, colon);
        const suffix = value.slice(colon + 1);
        if (prefix === "_" || suffix.startsWith("//")) return value;
        if (local !== null && own(local, prefix) && defined.get(prefix) !== true) {
          this.defineTerm(active, local, prefix, defined);
        }
        const prefixDef = active.terms.get(prefix);
        if (prefixDef && prefixDef.id !== null && prefixDef.prefix) return prefixDef.id + suffix;
        if (PROPERTY_IRI.test(value)) return value;
      }
      if (vocab && active.vocab !== null) return active.vocab + value;
      return value; // documentRelative: no base to resolve against
    }

    // --- expansion (§5.1.2) ---------------------------------------------------------------------------------

    expand(active, property, element, depth) {
      if (depth > MAX_DEPTH) throw new JsonLdError(`not valid JSON-LD: nested more than ${MAX_DEPTH} deep`);
      if (element === null) return null;
      const propertyDef = property === null ? undefined : active.terms.get(property);
      const scoped = propertyDef && propertyDef.hasContext ? propertyDef.context : undefined;
      if (isScalar(element)) {
        if (property === null || property === "@graph") return null;
        if (scoped !== undefined) active = this.processContext(active, scoped, { overrideProtected: true });
        return this.expandValue(active, property, element);
      }
      if (Array.isArray(element)) {
        const result = [];
        const container = propertyDef ? propertyDef.container : [];
        for (const item of element) {
          let expanded = this.expand(active, property, item, depth + 1);
          if (container.includes("@list") && Array.isArray(expanded)) expanded = { "@list": expanded };
          if (Array.isArray(expanded)) result.push(...expanded);
          else if (expanded !== null) result.push(expanded);
        }
        return result;
      }
      if (!isObject(element)) throw new JsonLdError("not valid JSON-LD: unexpected value");
      // A type-scoped context does not reach into a new node object (step 7).
      if (active.previous !== null) {
        const keys = Object.keys(element).map((k) => this.expandIri(active, k, { vocab: true }));
        if (!keys.includes("@value") && !(keys.length === 1 && keys[0] === "@id")) active = active.previous;
      }
      if (scoped !== undefined) active = this.processContext(active, scoped, { overrideProtected: true });
      if (own(element, "@context")) active = this.processContext(active, element["@context"]);
      const typeScoped = active;
      let inputType = null;
      for (const key of sortedKeys(element)) {
        if (this.expandIri(active, key, { vocab: true }) !== "@type") continue;
        const types = asArray(element[key]).filter((t) => typeof t === "string").sort(byCodePoint);
        for (const type of types) {
          const def = typeScoped.terms.get(type);
          if (def && def.hasContext) active = this.processContext(active, def.context, { propagate: false });
        }
        if (inputType === null) {
          const last = asArray(element[key]);
          inputType = typeof last[last.length - 1] === "string"
            ? this.expandIri(active, last[last.length - 1], { vocab: true }) : null;
        }
      }
      const result = {};
      for (const key of sortedKeys(element)) {
        if (key === "@context") continue;
        const value = element[key];
        const expandedProperty = this.expandIri(active, key, { vocab: true });
        if (expandedProperty === null || !(PROPERTY_IRI.test(expandedProperty) || isKeyword(expandedProperty))) {
          // Safe mode: JSON-LD would drop this entry without a word.
          throw new JsonLdError(`term ${repr(key)} is not defined by the document's contexts (it would be ignored)`);
        }
        if (isKeyword(expandedProperty)) {
          this.expandKeyword(active, typeScoped, property, expandedProperty, value, result, inputType, depth);
          continue;
        }
        const def = active.terms.get(key);
        const container = def ? def.container : [];
        let expanded;
        if (def && def.type === "@json") {
          expanded = { "@value": value, "@type": "@json" };
        } else if (container.includes("@language") && isObject(value)) {
          expanded = [];
          for (const language of sortedKeys(value)) {
            const tag = this.expandIri(active, language, { vocab: true }) === "@none" ? null : language.toLowerCase();
            for (const item of asArray(value[language])) {
              if (item === null) continue;
              if (typeof item !== "string") throw new JsonLdError("not valid JSON-LD: invalid language map value");
              expanded.push(tag === null ? { "@value": item } : { "@value": item, "@language": tag });
            }
          }
        } else {
          expanded = this.expand(active, key, value, depth + 1);
        }
        if (expanded === null) continue;
        if (container.includes("@list") && !(isObject(expanded) && own(expanded, "@list"))) {
          expanded = { "@list": asArray(expanded) };
        }
        if (container.includes("@graph")) {
          expanded = asArray(expanded).map((item) => ({ "@graph": asArray(item) }));
        }
        if (!own(result, expandedProperty)) result[expandedProperty] = [];
        result[expandedProperty].push(...asArray(expanded));
      }
      return this.finishNode(result, property);
    }

    expandKeyword(active, typeScoped, property, keyword, value, result, inputType, depth) {
      if (own(result, keyword) && keyword !== "@included" && keyword !== "@type") {
        throw new JsonLdError(`not valid JSON-LD: colliding keywords (${keyword})`);
      }
      let expanded;
      switch (keyword) {
        case "@id":
          if (typeof value !== "string") throw new JsonLdError("not valid JSON-LD: invalid @id value");
          expanded = this.expandIri(active, value, { documentRelative: true });
          break;
        case "@type": {
          if (!asArray(value).every((t) => typeof t === "string")) throw new JsonLdError("not valid JSON-LD: invalid type value");
          const types = asArray(value).map((t) => this.expandIri(typeScoped, t, { vocab: true, documentRelative: true }));
          expanded = own(result, "@type") ? [...asArray(result["@type"]), ...types] : types;
          if (!Array.isArray(value) && !own(result, "@type")) expanded = types[0];
          break;
        }
        case "@graph":
          if (isScalar(value)) throw new JsonLdError("not valid JSON-LD: invalid @graph value");
          expanded = asList(this.expand(active, "@graph", value, depth + 1));
          break;
        case "@index":
          if (typeof value !== "string") throw new JsonLdError("not valid JSON-LD: invalid @index value");
          expanded = value; // an index has no place in RDF
          break;
        case "@included":
          expanded = asList(this.expand(active, property, value, depth + 1));
          if (!expanded.every((item) => isObject(item) && !["@value", "@list", "@set"].some((k) => own(item, k)))) {
            throw new JsonLdError("not valid JSON-LD: values of @included must expand to node objects");
          }
          if (own(result, "@included")) expanded = [...result["@included"], ...expanded];
          break;
        case "@value":
          if (inputType === "@json") expanded = value;
          else if (value !== null && !isScalar(value)) throw new JsonLdError("not valid JSON-LD: invalid value object value");
          else expanded = value;
          break;
        case "@language":
          if (typeof value !== "string") throw new JsonLdError("not valid JSON-LD: invalid language-tagged string");
          expanded = value.toLowerCase();
          break;
        case "@direction":
          if (value !== "ltr" && value !== "rtl") throw new JsonLdError("not valid JSON-LD: invalid base direction");
          expanded = value;
          break;
        case "@list":
          // JSON-LD drops a free-floating list silently (pyld drops its whole node): refused, so nothing unsigned hides.
          if (property === null || property === "@graph") throw new JsonLdError("@list outside a property would be ignored");
          expanded = asList(this.expand(active, property, value, depth + 1));
          break;
        case "@set":
          expanded = this.expand(active, property, value, depth + 1);
          break;
        default:
          throw new JsonLdError(`${keyword} in a document is not supported here`);
      }
      result[keyword] = expanded;
    }

    // Steps 15 to 20 of §5.1.2: check value, list and set objects; drop what cannot stand alone.
    finishNode(result, property) {
      const keys = Object.keys(result);
      if (own(result, "@value")) {
        if (keys.some((k) => !["@direction", "@index", "@language", "@type", "@value"].includes(k))) {
          throw new JsonLdError("not valid JSON-LD: invalid value object");
        }
        if (own(result, "@type") && (own(result, "@language") || own(result, "@direction"))) {
          throw new JsonLdError("not valid JSON-LD: a value cannot have both a type and a language");
        }
        if (result["@value"] === null) return null;
        if (result["@type"] === "@json") return result;
        if (own(result, "@language") && typeof result["@value"] !== "string") {
          throw new JsonLdError("not valid JSON-LD: invalid language-tagged value");
        }
        if (own(result, "@type") && typeof result["@type"] !== "string") {
          throw new JsonLdError("not valid JSON-LD: invalid typed value");
        }
      } else if (own(result, "@type") && !Array.isArray(result["@type"])) {
        result["@type"] = [result["@type"]];
      } else if (own(result, "@set") || own(result, "@list")) {
        if (keys.length > (own(result, "@index") ? 2 : 1)) throw new JsonLdError("not valid JSON-LD: invalid set or list object");
        if (own(result, "@set")) return result["@set"];
      }
      if (keys.length === 1 && own(result, "@language")) return null;
      if (property === null || property === "@graph") {
        if (keys.length === 0 || own(result, "@value") || own(result, "@list")) return null;
        if (keys.length === 1 && own(result, "@id")) return null;
      }
      return result;
    }

    // Value Expansion (§5.3.2).
    expandValue(active, property, value) {
      const def = active.terms.get(property);
      const type = def ? def.type : null;
      if (type === "@id" && typeof value === "string") return { "@id": this.expandIri(active, value, { documentRelative: true }) };
      if (type === "@vocab" && typeof value === "string") {
        return { "@id": this.expandIri(active, value, { vocab: true, documentRelative: true }) };
      }
      const result = { "@value": value };
      if (type !== null && type !== "@id" && type !== "@vocab" && type !== "@none") result["@type"] = type;
      else if (typeof value === "string") {
        const language = def && def.language !== undefined ? def.language : active.language;
        if (language !== null) result["@language"] = language;
        const direction = def && def.direction !== undefined ? def.direction : active.direction;
        if (direction !== null && direction !== undefined) result["@direction"] = direction;
      }
      return result;
    }

    expandDocument(document) {
      let expanded = this.expand(emptyContext(), null, document, 0);
      if (isObject(expanded) && Object.keys(expanded).length === 1 && own(expanded, "@graph")) expanded = expanded["@graph"];
      return expanded === null ? [] : asArray(expanded);
    }
  }

  // Safe mode on the expanded document (canon.py's _refuse_relative): an @id or @type that is not an absolute
  // IRI or a blank node would be left out of the RDF.
  const absoluteOrBlank = (iri) => typeof iri === "string" && (iri.startsWith("_:") || ABSOLUTE_IRI.test(iri));

  function refuseRelative(node) {
    const work = [node];
    while (work.length) {
      const item = work.pop();
      if (Array.isArray(item)) {
        for (let i = item.length - 1; i >= 0; i--) work.push(item[i]);
      } else if (isObject(item)) {
        const later = [];
        for (const [key, value] of Object.entries(item)) {
          if (key === "@id" && !absoluteOrBlank(value)) {
            throw new JsonLdError(`${repr(String(value))} is not an absolute IRI (it would be ignored)`);
          }
          if (key === "@type") {
            for (const kind of asArray(value)) {
              if (!absoluteOrBlank(kind)) throw new JsonLdError(`type ${repr(String(kind))} is not defined by the document's contexts`);
            }
          } else if (key !== "@value") later.push(value);
        }
        for (let i = later.length - 1; i >= 0; i--) work.push(later[i]);
      }
    }
  }

  // --- to RDF (§7.2 node map, §8.1 deserialization) ----------------------------------------------------------

  class BlankNodes {
    constructor() {
      this.map = new Map();
      this.count = 0;
    }

    label(id = null) {
      if (id !== null && this.map.has(id)) return this.map.get(id);
      const label = `_:b${this.count++}`;
      if (id !== null) this.map.set(id, label);
      return label;
    }
  }

  const isBlank = (id) => typeof id === "string" && id.startsWith("_:");

  function addValue(list, value, { duplicates = false } = {}) {
    if (!duplicates && list.some((existing) => same(existing, value))) return;
    list.push(value);
  }

  function nodeMap(element, map, blanks, graphName, subject, property, list) {
    if (Array.isArray(element)) {
      for (const item of element) nodeMap(item, map, blanks, graphName, subject, property, list);
      return;
    }
    if (!map.has(graphName)) map.set(graphName, new Map());
    const graph = map.get(graphName);
    const subjectNode = subject === null ? null : graph.get(subject);
    if (own(element, "@type")) {
      const relabel = (t) => (isBlank(t) ? blanks.label(t) : t);
      element["@type"] = Array.isArray(element["@type"]) ? element["@type"].map(relabel) : relabel(element["@type"]);
    }
    if ((own(element, "@value") || own(element, "@list")) && list === null && subjectNode === null) {
      return; // a value or list directly in a graph, with no node to belong to, has no triple (as pyld)
    }
    if (own(element, "@value")) {
      if (list === null) addValue(subjectNode[property] ||= [], element);
      else list["@list"].push(element);
    } else if (own(element, "@list")) {
      const result = { "@list": [] };
      nodeMap(element["@list"], map, blanks, graphName, subject, property, result);
      if (list === null) addValue(subjectNode[property] ||= [], result, { duplicates: true });
      else list["@list"].push(result);
    } else {
      let id = own(element, "@id") ? element["@id"] : null;
      id = id === null ? blanks.label() : isBlank(id) ? blanks.label(id) : id;
      if (!graph.has(id)) graph.set(id, { "@id": id });
      const node = graph.get(id);
      if (property !== null) {
        const reference = { "@id": id };
        if (list === null) addValue(subjectNode[property] ||= [], reference);
        else list["@list"].push(reference);
      }
      if (own(element, "@type")) for (const t of asArray(element["@type"])) addValue(node["@type"] ||= [], t);
      if (own(element, "@graph")) nodeMap(element["@graph"], map, blanks, id, null, null, null);
      if (own(element, "@included")) nodeMap(element["@included"], map, blanks, graphName, null, null, null);
      for (const key of sortedKeys(element)) {
        if (isKeyword(key)) continue;
        const name = isBlank(key) ? blanks.label(key) : key;
        node[name] ||= [];
        nodeMap(element[key], map, blanks, graphName, id, name, null);
      }
    }
  }

  const iriTerm = (id) => (isBlank(id) ? { type: "blank", value: id.slice(2) } : { type: "iri", value: id });
  const wellFormed = (id) => isBlank(id) || ABSOLUTE_IRI.test(id);

  // xsd:double's canonical form as pyld writes it: 16 significant digits, trailing zeros cut to one ("1.5E0").
  function canonicalDouble(value) {
    return value.toExponential(15).replace(/(\d)0*e\+?(-)?0*(\d)/, "$1E$2$3");
  }

  function literal(value, datatype) {
    return { type: "literal", value, datatype, language: null };
  }

  function objectToRdf(item, triples, blanks) {
    if (own(item, "@id")) return wellFormed(item["@id"]) ? iriTerm(item["@id"]) : null;
    if (own(item, "@list")) return listToRdf(item["@list"], triples, blanks);
    const value = item["@value"];
    const datatype = own(item, "@type") ? item["@type"] : null;
    if (datatype !== null && !wellFormed(datatype)) return null;
    if (typeof value === "boolean") return literal(value ? "true" : "false", datatype || `${XSD}boolean`);
    if (typeof value === "bigint") {
      const big = value >= 10n ** 21n || value <= -(10n ** 21n);
      if (!big) return literal(value.toString(), datatype || `${XSD}integer`);
      return literal(canonicalDouble(Number(value)), datatype || `${XSD}double`);
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new JsonLdError("not valid JSON-LD: a number that is not finite");
      if (!Number.isInteger(value) || datatype === `${XSD}double` || Math.abs(value) >= 1e21) {
        return literal(canonicalDouble(value), datatype || `${XSD}double`);
      }
      return literal(BigInt(value).toString(), datatype || `${XSD}integer`);
    }
    if (own(item, "@language")) {
      return { type: "literal", value, datatype: RDFC.RDF_LANG_STRING, language: item["@language"] };
    }
    return literal(value, datatype || RDFC.XSD_STRING);
  }

  function listToRdf(list, triples, blanks) {
    if (list.length === 0) return { type: "iri", value: `${RDF}nil` };
    const nodes = list.map(() => iriTerm(blanks.label()));
    list.forEach((item, i) => {
      const object = objectToRdf(item, triples, blanks);
      if (object !== null) triples.push({ subject: nodes[i], predicate: { type: "iri", value: `${RDF}first` }, object });
      const rest = i + 1 < nodes.length ? nodes[i + 1] : { type: "iri", value: `${RDF}nil` };
      triples.push({ subject: nodes[i], predicate: { type: "iri", value: `${RDF}rest` }, object: rest });
    });
    return nodes[0];
  }

  function toRdf(expanded) {
    const blanks = new BlankNodes();
    const map = new Map([["@default", new Map()]]);
    nodeMap(expanded, map, blanks, "@default", null, null, null);
    const quads = [];
    for (const graphName of [...map.keys()].sort(byCodePoint)) {
      if (graphName !== "@default" && !wellFormed(graphName)) continue;
      const graph = graphName === "@default" ? { type: "default", value: "" } : iriTerm(graphName);
      const triples = [];
      for (const subject of [...map.get(graphName).keys()].sort(byCodePoint)) {
        if (!wellFormed(subject)) continue;
        const node = map.get(graphName).get(subject);
        for (const property of sortedKeys(node)) {
          if (property === "@type") {
            for (const type of node["@type"]) {
              if (wellFormed(type)) {
                triples.push({ subject: iriTerm(subject), predicate: { type: "iri", value: `${RDF}type` }, object: iriTerm(type) });
              }
            }
            continue;
          }
          if (isKeyword(property) || isBlank(property) || !wellFormed(property)) continue;
          for (const item of node[property]) {
            const listTriples = [];
            const object = objectToRdf(item, listTriples, blanks);
            if (object !== null) triples.push({ subject: iriTerm(subject), predicate: { type: "iri", value: property }, object });
            triples.push(...listTriples);
          }
        }
      }
      for (const t of triples) quads.push({ ...t, graph });
    }
    return quads;
  }

  // The size of `value` as Python's json.dumps(ensure_ascii=False) writes it (", " and ": " separators).
  function jsonBytes(value) {
    let size = 0;
    const work = [value];
    while (work.length) {
      const item = work.pop();
      if (Array.isArray(item)) {
        size += 2 + 2 * Math.max(0, item.length - 1);
        work.push(...item);
      } else if (isObject(item)) {
        const keys = Object.keys(item);
        size += 2 + 2 * Math.max(0, keys.length - 1);
        for (const key of keys) {
          size += utf8.encode(JSON.stringify(key)).length + 2;
          work.push(item[key]);
        }
      } else if (typeof item === "string") size += utf8.encode(JSON.stringify(item)).length;
      else size += String(item).length;
    }
    return size;
  }

  // The RDF dataset of a JSON-LD document (a parsed JSON object), loading contexts only from `documents`, with
  // the safe-mode refusals of ledger/vc/canon.py. Throws JsonLdError naming what was refused.
  function toDataset(document, documents) {
    if (!isObject(document)) {
      throw new JsonLdError(`expected a JSON object, got ${Array.isArray(document) ? "list" : typeof document}`);
    }
    const size = jsonBytes(document);
    if (size > MAX_DOCUMENT_BYTES) {
      throw new JsonLdError(`document is ${size} bytes, more than the ${MAX_DOCUMENT_BYTES} allowed`);
    }
    const expanded = new Processor(documents).expandDocument(document);
    refuseRelative(expanded);
    return toRdf(expanded);
  }

  // The RDFC-1.0 canonical N-Quads of a JSON-LD document, as ledger/vc/canon.py's canonicalize() computes them.
  function canonicalize(document, documents) {
    return RDFC.canonicalize(toDataset(document, documents));
  }

  // JSON text to a value in which integers beyond 2^53 keep every digit (as BigInt), as Python's json module
  // keeps them: a credential's number must mean the same here as where it was signed.
  function parseJson(text) {
    return JSON.parse(text, (key, value, context) => {
      if (typeof value === "number" && context && typeof context.source === "string"
          && /^-?\d+$/.test(context.source) && !Number.isSafeInteger(value)) {
        return BigInt(context.source);
      }
      return value;
    });
  }

  return { JsonLdError, toDataset, canonicalize, parseJson };
})();
