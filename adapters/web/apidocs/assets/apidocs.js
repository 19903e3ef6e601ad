// Renders the OpenAPI 3 document named by <body data-spec> as a list of
// operations and schemas. Plain DOM, no dependencies: the page must work
// without network access beyond this service. All text from the document is
// inserted with textContent, never as HTML.
(function () {
  "use strict";
  var METHODS = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function refName(ref) { return ref.split("/").pop(); }

  // typeOf describes a schema in one line, linking to named schemas.
  function typeOf(s) {
    if (!s) return el("span", {}, ["any"]);
    if (s.$ref) return el("a", { href: "#schema-" + refName(s.$ref) }, [refName(s.$ref)]);
    var parts = [];
    if (s.type === "array") {
      var inner = el("span", {}, ["array of "]);
      inner.appendChild(typeOf(s.items));
      parts.push(inner);
    } else if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object") {
      var m = el("span", {}, ["map of "]);
      m.appendChild(typeOf(s.additionalProperties));
      parts.push(m);
    } else {
      parts.push(document.createTextNode(s.type || "any"));
    }
    if (s.format) parts.push(document.createTextNode(" (" + s.format + ")"));
    if (s.enum) parts.push(document.createTextNode(": " + s.enum.join(" | ")));
    if (s.nullable) parts.push(document.createTextNode(", nullable"));
    return el("span", {}, parts);
  }

  function schemaTable(s) {
    if (!s || s.$ref || !s.properties) return el("p", {}, [typeOf(s)]);
    var req = s.required || [];
    var rows = [el("tr", {}, [el("th", {}, ["field"]), el("th", {}, ["type"]), el("th", {}, ["required"]), el("th", {}, ["notes"])])];
    Object.keys(s.properties).forEach(function (name) {
      var p = s.properties[name];
      var notes = p.description || "";
      if (p["default"] !== undefined) notes += (notes ? "; " : "") + "default " + JSON.stringify(p["default"]);
      if (p.maxLength !== undefined) notes += (notes ? "; " : "") + "at most " + p.maxLength + " characters";
      rows.push(el("tr", {}, [el("td", {}, [el("code", {}, [name])]), el("td", {}, [typeOf(p)]),
        el("td", {}, [req.indexOf(name) >= 0 ? "yes" : ""]), el("td", {}, [notes])]));
    });
    return el("table", {}, rows);
  }

  function content(c) {
    var out = el("div");
    Object.keys(c || {}).forEach(function (mt) {
      out.appendChild(el("div", { "class": "muted" }, [mt]));
      out.appendChild(schemaTable(c[mt].schema));
    });
    return out;
  }

  function operation(path, method, op, shared) {
    var body = el("div");
    if (op.description) body.appendChild(el("p", {}, [op.description]));
    var params = (shared || []).concat(op.parameters || []);
    if (params.length) {
      body.appendChild(el("h4", {}, ["Parameters"]));
      var rows = [el("tr", {}, [el("th", {}, ["name"]), el("th", {}, ["in"]), el("th", {}, ["type"]), el("th", {}, ["notes"])])];
      params.forEach(function (p) {
        if (p.$ref) p = window.__spec.components.parameters[refName(p.$ref)];
        rows.push(el("tr", {}, [el("td", {}, [el("code", {}, [p.name])]), el("td", {}, [p["in"] + (p.required ? ", required" : "")]),
          el("td", {}, [typeOf(p.schema)]), el("td", {}, [p.description || ""])]));
      });
      body.appendChild(el("table", {}, rows));
    }
    if (op.requestBody) {
      body.appendChild(el("h4", {}, ["Request body"]));
      body.appendChild(content(op.requestBody.content));
    }
    body.appendChild(el("h4", {}, ["Responses"]));
    Object.keys(op.responses || {}).sort().forEach(function (code) {
      var r = op.responses[code];
      body.appendChild(el("p", {}, [el("span", { "class": "status" }, [code]), " " + (r.description || "")]));
      if (code.charAt(0) === "2" && r.content) body.appendChild(content(r.content));
    });
    var tags = (op.tags || []).join(" ");
    var d = el("details", { "class": "op", "data-search": (method + " " + path + " " + tags + " " + (op.summary || "")).toLowerCase() }, [
      el("summary", {}, [el("span", { "class": "method " + method }, [method]), el("code", {}, [path]), " ", el("span", { "class": "muted" }, [op.summary || ""])]),
      body]);
    return d;
  }

  function render(spec) {
    window.__spec = spec;
    var root = document.getElementById("doc");
    root.textContent = "";
    var info = spec.info || {};
    root.appendChild(el("p", {}, [(info.title || "") + " " + (info.version || "") + " (OpenAPI " + spec.openapi + ")"]));
    if (info.description) root.appendChild(el("p", {}, [info.description]));
    root.appendChild(el("h2", {}, ["Operations"]));
    Object.keys(spec.paths || {}).sort().forEach(function (path) {
      var item = spec.paths[path];
      METHODS.forEach(function (m) {
        if (item[m]) root.appendChild(operation(path, m, item[m], item.parameters));
      });
    });
    var schemas = (spec.components || {}).schemas || {};
    root.appendChild(el("h2", {}, ["Schemas"]));
    Object.keys(schemas).sort().forEach(function (name) {
      var s = schemas[name];
      root.appendChild(el("h3", { id: "schema-" + name }, [name]));
      if (s.description) root.appendChild(el("p", {}, [s.description]));
      root.appendChild(schemaTable(s));
    });
  }

  function filter(q) {
    q = q.toLowerCase();
    document.querySelectorAll("details.op").forEach(function (d) {
      d.style.display = d.getAttribute("data-search").indexOf(q) >= 0 ? "" : "none";
    });
  }

  document.getElementById("filter").addEventListener("input", function (e) { filter(e.target.value); });
  fetch(document.body.getAttribute("data-spec"), { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(render)
    .catch(function (err) {
      var root = document.getElementById("doc");
      root.textContent = "Could not load the OpenAPI document: " + err.message;
    });
})();
