/*
 * Glue between the locally served ipywidgets HTML manager and the rest of the
 * page. Loaded (via myst-nb's nb_ipywidgets_js in _config.yml) after
 * require.js and before html-manager/embed-amd.js, on pages with widgets only.
 */
(function () {
  "use strict";
  // This file is served from .../_static/; so are the widget manager's files.
  var staticRoot = document.currentScript.src.replace(/[^\/]*$/, "");

  // 1. The widget manager loads its fonts relative to its own AMD module name,
  //    "@jupyter-widgets/html-manager/dist/...". Without this mapping RequireJS
  //    resolves that name against the page's folder and the fonts 404.
  //    The book's widgets are anywidgets (induction_lib/widgets): the manager
  //    asks RequireJS for the module "anywidget"; it is served from the site
  //    (tools/fetch_assets.sh copies it from the anywidget wheel), so the
  //    manager never falls back to its CDN. anywidget then runs each widget's
  //    own ES module (stored in the page's widget state) from a blob: URL.
  window.require.config({
    paths: {
      "@jupyter-widgets/html-manager/dist": staticRoot + "html-manager",
      // anywidget requires "@jupyter-widgets/base" (defined inside embed-amd.js); the
      // bundle then loads its fonts relative to that module name, so map the scope too.
      "@jupyter-widgets": staticRoot + "html-manager",
      anywidget: staticRoot + "anywidget/index",
    },
  });

  // 2. @jupyter-widgets/base typesets widget labels with the MathJax 2 API
  //    (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])), but the book
  //    loads MathJax 3, which has no Hub: every labelled widget would throw.
  //    Provide that one call on top of MathJax 3. Widgets render on the window
  //    "load" event, after MathJax (a deferred script) has replaced its
  //    configuration object with itself, so install the bridge just before.
  function bridgeMathJax2() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) return;
    mj.Hub = {
      Queue: function (command) {
        var element = command && command[2];
        if (!element) return;
        mj.startup.promise
          .then(function () { return mj.typesetPromise([element]); })
          .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
      },
    };
  }
  document.addEventListener("DOMContentLoaded", bridgeMathJax2);
  window.addEventListener("load", bridgeMathJax2, { capture: true });
})();
