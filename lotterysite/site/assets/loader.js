// The one script a page written by `lotterysite render` references. It loads the pinned Vega builds, the Arrow
// loader and lotterysite.js once per tab, in order, from the folder it was itself served from, so the pages work
// with any builder and any folder layout. Under instant navigation (mkdocs-material, Zensical) the builder runs
// this script again on every generated page: the flag makes that a no-op, and lotterysite.js redraws the new
// page through document$.
(function () {
  if (window.lotterysiteLoader) return;
  window.lotterysiteLoader = true;
  const scripts = /*SCRIPTS*/[];  // filled in by lotterysite.site.render.loader_js
  const style = /*STYLE*/"";
  const base = document.currentScript.src;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL(style, base).href;
  document.head.appendChild(link);
  for (const name of scripts) {
    const script = document.createElement("script");
    script.src = new URL(name, base).href;
    script.async = false;  // inserted scripts run in insertion order: vega before vega-lite before ...
    document.head.appendChild(script);
  }
})();
