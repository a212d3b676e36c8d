/* The workspace's shared selection store (issue 23): the one place its views' coordination happens.
 *
 * A store holds one state object. A view never calls another view: it changes the state with
 * `store.set(patch, source)`, and every view that subscribed to a key of the patch is called with
 * (state, changed keys, source). The keys named when the store is made (`linked`) are the page's link: each change
 * writes them to the URL hash (objects as base64url JSON), so a reload or a shared link reopens the same state. Other keys
 * (derived values such as the selected samples, computed from the brushes) are shared the same way but never
 * written to the link.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});

  // Objects travel in the link as base64url of their JSON: no quotes or brackets in the address, which some themes
  // read as an element id (Zensical's scroll-to-anchor builds a selector from it). Plain JSON is read too.
  function encode(v) {
    const bytes = new TextEncoder().encode(JSON.stringify(v));
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function decode(text) {
    if (/^[[{]/.test(text)) return JSON.parse(text);
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(s, (c) => c.charCodeAt(0))));
  }
  // The link's values: `json` keys decoded (a value that does not decode is dropped with a warning), others text.
  function readHash(linked, json) {
    const out = {};
    const params = new URLSearchParams(location.hash.slice(1));
    for (const [k, v] of params) {
      if (!json.includes(k)) { out[k] = v; continue; }
      try { out[k] = decode(v); } catch { (LS.warnings = LS.warnings || []).push(`${k}: not a value of the link; ignored`); }
    }
    return out;
  }

  function writeHash(state, linked, json) {
    const params = new URLSearchParams();
    for (const k of linked) {
      const v = state[k];
      if (v == null || v === "") continue;
      params.set(k, json.includes(k) ? encode(v) : String(v));
    }
    history.replaceState(history.state, "", "#" + params.toString());
  }

  function createStore(initial, linked, json) {
    const state = Object.assign({}, initial);
    const subscribers = [];
    writeHash(state, linked, json);
    return {
      get: () => state,
      // Apply `patch` (null or undefined deletes a key), write the link if a linked key changed, then tell the
      // subscribers of the changed keys, in the order they subscribed.
      set(patch, source) {
        const changed = [];
        for (const [k, v] of Object.entries(patch)) {
          if (state[k] === v || (v == null && !(k in state))) continue;
          if (v == null) delete state[k]; else state[k] = v;
          changed.push(k);
        }
        if (!changed.length) return;
        if (changed.some((k) => linked.includes(k))) writeHash(state, linked, json);
        for (const s of subscribers) if (s.keys.some((k) => changed.includes(k))) s.fn(state, changed, source);
      },
      subscribe(keys, fn) { subscribers.push({ keys, fn }); },
    };
  }

  LS.selection = { createStore, readHash, encode, decode };
})();
