// The browser side of bokeh_nb_client's live inline views.
//
// Shipped as package data and inlined, once per view, in the view's HTML output
// (bokeh_nb_client/jupyter/display.py), followed by one call:
//
//     window.bokehNbClient.render(config)
//
// `config` is a JSON object written by the kernel (see ViewConfig in display.py).
// Every rendering of a view carries the view's key (its IPython display id). The
// kernel renders a view again (update_display) when its session reconnects (with
// a fresh token, minted by the kernel with the session's token_expiration), when
// the session stops following the server, and when it is closed; each new
// rendering first disposes of the previous one's BokehJS connection, so a page
// never keeps a connected document that no longer follows its kernel.
//
// Why not BokehJS's embed as it is: it keeps one client session per server
// session and page (embed/server's _get_session cache) and reuses it for every
// later view, even after its websocket died, so a re-shown view showed stale data
// without a banner. Each of our views therefore pulls its own client session:
// the server's autoload script (or the proxy's) still loads BokehJS and its CSS,
// but its call to embed/server's add_document_from_session is routed here for
// elements inside our views, and we pull with the kernel's token.
//
// BokehJS >= 3.8 reports lost connections itself with toasts over the page
// (Notifications, driven by document.config.notify_connection_status), and
// reconnects by itself (config.reconnect_session). Our views report them in their
// own banner and reconnect themselves (a new client session with a renewed token,
// a few attempts, then a Reconnect link), so both settings are turned off,
// silently (no change event, so nothing is sent to the server), on each document
// we pull. Before 3.8 BokehJS does neither.
//
// Must stay self-contained (no imports) and tolerate BokehJS not being loaded yet.
(function () {
  "use strict";
  const VERSION = 3;
  if (window.bokehNbClient != null && window.bokehNbClient.version === VERSION) { return; }
  if (window.bokehNbClient != null) { window.bokehNbClient.disposeAll(); }

  const byKey = new Map();   // view key -> entry
  const byBox = new Map();   // box element id -> entry
  // A box that stays out of the page for this many checks is gone (its notebook
  // was closed or its output cleared): its connection is closed.
  const MISSING_CHECKS = 3;
  const CHECK_MS = 2000;

  function banner(entry) { return entry.box.querySelector(".bnc-banner"); }

  function say(entry, state, text, action) {
    const el = banner(entry);
    entry.box.dataset.state = state;
    if (el == null) { return; }
    el.className = "bnc-banner bnc-" + state;
    el.textContent = text;
    el.hidden = text === "";
    if (action != null) {
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = action.label;
      link.addEventListener("click", function (event) { event.preventDefault(); action.run(); });
      el.append(" ", link);
    }
  }

  function dispose(entry) {
    if (entry.disposed) { return; }
    entry.disposed = true;
    if (byKey.get(entry.key) === entry) { byKey.delete(entry.key); }
    if (byBox.get(entry.box.id) === entry) { byBox.delete(entry.box.id); }
    if (entry.timer != null) { clearTimeout(entry.timer); }
    if (entry.retryTimer != null) { clearTimeout(entry.retryTimer); }
    if (entry.session != null) {
      entry.session.close();
      entry.session = null;
    }
  }

  function live(entry) { return !entry.disposed && byKey.get(entry.key) === entry; }

  // BokehJS >= 3.8: no toasts of its own for this document, and no reconnects of
  // its own (see the header): its reconnect re-pulls without the binary buffers the
  // server sends ("buffer for id=... not found" on 3.9, the view then stays
  // stale) and with the token it started with, expired for a view older than its
  // token lifetime. The view reconnects itself instead (autoReconnect).
  function quiet(doc) {
    const config = doc.config;
    if (config == null || config.properties == null) { return; }
    const off = {};
    if (config.properties.notify_connection_status != null) {
      off.notify_connection_status = false;
    }
    if (config.properties.reconnect_session != null) { off.reconnect_session = false; }
    config.setv(off, {silent: true});
  }

  // The view connected again: counted in the box's data-reconnects, for users and
  // tests who wonder.
  function reconnected(entry) {
    entry.attempts = 0;
    entry.box.dataset.reconnects = String(Number(entry.box.dataset.reconnects || "0") + 1);
    say(entry, "live", "");
  }

  function watch(entry, doc) {
    doc.on_event("connection_lost", function () {
      // BokehJS does not retry (quiet() turned reconnect_session off where it exists,
      // and before 3.8 it never retries): the view does.
      if (!live(entry) || entry.session == null || entry.session.document !== doc) { return; }
      autoReconnect(entry);
    });
    doc.on_event("client_reconnected", function () {
      if (live(entry)) { reconnected(entry); }
    });
  }

  // After a lost connection the view tries to connect again by itself, a few
  // times, backing off (a `bokeh serve --dev` reload takes 1 to 3 s); then the
  // banner offers Reconnect. Whenever the kernel's session reconnects, the kernel
  // renders the view again anyway, with a fresh token.
  const RETRY_DELAYS_MS = [0, 1000, 2000, 4000, 8000];

  function autoReconnect(entry) {
    const c = entry.config;
    const attempt = entry.attempts;
    if (attempt >= RETRY_DELAYS_MS.length) {
      entry.attempts = 0;
      say(entry, "disconnected",
          "Disconnected from the Bokeh server at " + c.appUrl + ": this view of session " +
          c.sessionLabel + " no longer updates. It follows the kernel's session again " +
          "when that session reconnects.",
          {label: "Reconnect", run: function () { reconnect(entry, false); }});
      return;
    }
    entry.attempts = attempt + 1;
    const delay = RETRY_DELAYS_MS[attempt];
    say(entry, "disconnected",
        "Disconnected from the Bokeh server at " + c.appUrl + "; reconnecting" +
        (delay > 0 ? " in " + Math.round(delay / 1000) + " s" : "") + " (attempt " +
        entry.attempts + " of " + RETRY_DELAYS_MS.length + ").");
    entry.retryTimer = setTimeout(function () {
      entry.retryTimer = null;
      if (live(entry)) { reconnect(entry, true); }
    }, delay);
  }

  // The token a view pulls with. The kernel's token may have expired by now
  // (the view is older than the session's token_expiration; the server refuses it
  // with "Token is expired"). An unsigned token (bokeh's default, no
  // BOKEH_SECRET_KEY) is nothing but its payload, base64url-encoded JSON, which the
  // server reads for the session id and the expiry; so it is renewed here: its
  // expiry moves on by the time since the kernel's token reached this page (the
  // kernel's clock stays the reference, whatever this browser's clock says). Every
  // other field is kept. A signed token ("payload.signature") needs the server's
  // secret key: it is returned as it is, and if the server refuses it the banner
  // says how to get a fresh one from the kernel.
  function renewedToken(token, receivedAtMs, nowMs) {
    if (typeof token !== "string" || token.indexOf(".") >= 0) { return token; }
    const base64 = token.replace(/-/g, "+").replace(/_/g, "/");
    let payload = null;
    try {
      payload = JSON.parse(atob(base64 + "===".slice((base64.length + 3) % 4)));
    } catch (error) {
      return token;  // not a token this code can read: the server judges it as it is
    }
    if (payload == null || typeof payload.session_expiry !== "number") { return token; }
    const elapsedS = Math.max(0, Math.ceil((nowMs - receivedAtMs) / 1000));
    payload.session_expiry += elapsedS;
    return btoa(JSON.stringify(payload))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // A new client session for the view (pullInto renews the kernel's token). The
  // old content stays until the new
  // document is there. ``automatic``: an attempt of autoReconnect, which tries
  // again when it fails; else the user's click.
  function reconnect(entry, automatic) {
    if (entry.retryTimer != null) { clearTimeout(entry.retryTimer); entry.retryTimer = null; }
    const old = entry.session;
    entry.session = null;
    if (old != null) { old.close(); }
    const anchor = entry.anchor;  // the element BokehJS rendered the roots into
    if (anchor == null || entry.wsUrl == null) { return; }
    if (!automatic) {
      entry.attempts = 0;
      say(entry, "loading", "Reconnecting to " + entry.config.appUrl + " …");
    }
    pullInto(entry, entry.wsUrl, anchor, [], false, true).then(function () {
      if (live(entry)) { reconnected(entry); }
    }, function (error) {
      if (!live(entry)) { return; }
      if (automatic) {
        autoReconnect(entry);
      } else {
        say(entry, "failed", "Could not reconnect this view of session " +
            entry.config.sessionLabel + " (" + error + "). If the kernel's session is " +
            "connected, run %bokeh_show again for a view with a fresh token (a signed " +
            "token cannot be renewed in the browser).");
      }
    });
  }

  async function pullInto(entry, wsUrl, element, roots, useForTitle, replace) {
    const Bokeh = window.Bokeh;
    const connection = Bokeh.require("client/connection");
    const standalone = Bokeh.require("embed/standalone");
    entry.wsUrl = wsUrl;
    // No page query string: it is the notebook page's (it may carry its token).
    // Every pull renews the kernel's token (see renewedToken): a reconnect, and a
    // first load that took long, must not find it expired.
    const token = renewedToken(entry.config.token, entry.receivedAtMs, Date.now());
    const session = await connection.pull_session(wsUrl, token, null);
    if (!live(entry)) {
      session.close();
      throw new Error("the view was replaced");
    }
    entry.session = session;
    quiet(session.document);
    watch(entry, session.document);
    if (replace === true) { element.replaceChildren(); }
    return standalone.add_document_standalone(session.document, element, roots, useForTitle);
  }

  // Route BokehJS's embedding of elements inside our views to pullInto.
  function install(Bokeh) {
    if (Bokeh == null || typeof Bokeh.require !== "function") { return; }
    let server = null;
    try { server = Bokeh.require("embed/server"); } catch (error) { return; }
    if (server == null || server.__bokeh_nb_client_version === VERSION) { return; }
    const original = server.__bokeh_nb_client_original || server.add_document_from_session;
    server.__bokeh_nb_client_original = original;
    server.add_document_from_session = function (wsUrl, token, element, roots, useForTitle) {
      const box = element != null && typeof element.closest === "function" ?
        element.closest(".bnc-view") : null;
      const entry = box != null ? byBox.get(box.id) : undefined;
      if (entry == null) { return original.apply(this, arguments); }
      entry.anchor = element;
      return pullInto(entry, wsUrl, element, roots || [], useForTitle === true).then(
        function (viewManager) {
          entry.loaded = true;
          if (live(entry)) { say(entry, "live", ""); }
          return viewManager;
        },
        function (error) {
          if (live(entry)) {
            say(entry, "failed", "The live view of session " + entry.config.sessionLabel +
                " could not connect to " + entry.config.appUrl + " (" + error + ").");
          }
          throw error;
        });
    };
    server.__bokeh_nb_client_version = VERSION;
  }

  function installWhenLoaded() {
    if (window.Bokeh != null) {
      install(window.Bokeh);
    } else {
      // BokehJS is not loaded yet: run before the autoload's own callbacks.
      if (window._bokeh_onload_callbacks === undefined) { window._bokeh_onload_callbacks = []; }
      window._bokeh_onload_callbacks.push(function () { install(window.Bokeh); });
    }
  }

  function loadTimedOut(entry) {
    if (!live(entry) || entry.loaded) { return; }
    const c = entry.config;
    if (entry.box.dataset.route === "proxy") {
      say(entry, "failed",
          "The live view of session " + c.sessionLabel + " did not load through the " +
          "Jupyter server's Bokeh proxy (" + entry.box.dataset.viewUrl + "). Check that the " +
          "Bokeh server at " + c.appUrl + " is running on the Jupyter server's host.");
    } else if (entry.box.dataset.state !== "failed") {
      say(entry, "failed",
          "The live view of session " + c.sessionLabel + " did not load. Check that " + c.appUrl +
          " is reachable from this browser and that the Bokeh server accepts this page's " +
          "websocket origin: bokeh serve ... --allow-websocket-origin=" + window.location.host);
    }
  }

  // -- the route through the Jupyter server's Bokeh proxy ----------------------------

  // The Jupyter server's base URL as this page knows it: JupyterLab and Notebook 7
  // publish it in #jupyter-config-data, the classic notebook on <body data-base-url>.
  // null: not a Jupyter page (an exported notebook, VS Code...).
  function jupyterBaseUrl() {
    const data = document.getElementById("jupyter-config-data");
    let base = null;
    if (data != null) {
      try {
        const config = JSON.parse(data.textContent);
        if (typeof config.baseUrl === "string") { base = config.baseUrl; }
      } catch (error) {
        base = null;  // not JSON: not Jupyter's page config
      }
    }
    const body = document.body;
    if (base == null && body != null && typeof body.dataset.baseUrl === "string") {
      base = body.dataset.baseUrl;
    }
    if (base == null) { return null; }
    return new URL(base.endsWith("/") ? base : base + "/", window.location.href).href;
  }

  // What the server's autoload tag does (an XHR for autoload.js with the session id
  // in a header), at a URL computed here: <Jupyter base URL>bokeh-proxy/<port><app>.
  function loadAutoload(entry, appUrl, route) {
    const c = entry.config;
    const anchor = document.getElementById(c.proxy.elementId);
    entry.box.dataset.route = route;
    entry.box.dataset.viewUrl = appUrl;
    const pathname = new URL(appUrl).pathname.replace(/\/+$/, "");
    // bokeh-app-path becomes the websocket's path, bokeh-absolute-url its host and
    // (behind the proxy, see server_extension.handlers) the resources' root.
    const query = [
      ["bokeh-autoload-element", anchor.id],
      ["bokeh-app-path", pathname === "" ? "/" : pathname],
      ["bokeh-absolute-url", appUrl],
    ].map(function (pair) { return pair[0] + "=" + encodeURIComponent(pair[1]); }).join("&");
    const where = route === "proxy" ? " through the Jupyter server's Bokeh proxy" : "";
    const xhr = new XMLHttpRequest();
    xhr.responseType = "blob";
    xhr.open("GET", appUrl.replace(/\/+$/, "") + "/autoload.js?" + query, true);
    xhr.setRequestHeader("Bokeh-Session-Id", c.sessionId);
    xhr.onload = function () {
      if (!live(entry)) { return; }
      if (xhr.status !== 200) {
        say(entry, "failed", "The live view of session " + c.sessionLabel +
            " could not be loaded from " + appUrl + where + " (HTTP " + xhr.status +
            (xhr.status === 403 && route === "proxy" ? ": the proxy does not allow port " +
             c.proxy.port + ", see c.BokehProxy.allowed_ports" : "") + ").");
        return;
      }
      const script = document.createElement("script");
      script.src = URL.createObjectURL(xhr.response);
      document.body.appendChild(script);
    };
    xhr.onerror = function () {
      if (live(entry)) {
        say(entry, "failed", "The live view of session " + c.sessionLabel +
            " could not reach " + appUrl + where + ".");
      }
    };
    xhr.send();
  }

  function loadThroughProxy(entry) {
    const p = entry.config.proxy;
    const base = jupyterBaseUrl();
    if (base == null) {
      if (p.fallback) {
        loadAutoload(entry, entry.config.appUrl, "direct");
      } else {
        say(entry, "failed", "This page is not served by a Jupyter server, so there is no " +
            "Bokeh proxy to load session " + entry.config.sessionLabel + " through: " +
            "%config BokehClient.view_url = \"direct\" shows it from " + entry.config.appUrl + ".");
      }
      return;
    }
    const proxiedUrl = new URL(p.proxyPath + p.port + p.appPath, base).href;
    if (!p.fallback) {
      loadAutoload(entry, proxiedUrl, "proxy");
      return;
    }
    // "auto": use the proxy when this page's Jupyter server has it and allows the port.
    fetch(new URL(p.proxyPath + p.statusPath + "?port=" + p.port, base).href,
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) { return status != null && status.port_allowed === true; },
            function () { return false; })
      .then(function (useProxy) {
        if (!live(entry)) { return; }
        loadAutoload(entry, useProxy ? proxiedUrl : entry.config.appUrl,
                     useProxy ? "proxy" : "direct");
      });
  }

  // -- the entry point --------------------------------------------------------------

  function render(config) {
    const box = document.getElementById(config.boxId);
    const previous = byKey.get(config.key);
    if (previous != null) { dispose(previous); }
    if (box == null) { return; }
    const entry = {key: config.key, box: box, config: config, session: null,
                   disposed: false, loaded: false, missing: 0, timer: null, wsUrl: null,
                   receivedAtMs: Date.now(), attempts: 0, retryTimer: null};
    if (config.state !== "live") {
      // closed or no longer following the kernel: the notice is the whole view
      say(entry, config.state, config.notice);
      return;
    }
    byKey.set(config.key, entry);
    byBox.set(box.id, entry);
    installWhenLoaded();
    entry.timer = setTimeout(function () { loadTimedOut(entry); }, config.loadTimeoutMs);
    if (config.proxy != null) { loadThroughProxy(entry); }
    // else: the server's autoload tag follows this script in the box
  }

  function checkBoxes() {
    byKey.forEach(function (entry) {
      entry.missing = entry.box.isConnected ? 0 : entry.missing + 1;
      if (entry.missing >= MISSING_CHECKS) { dispose(entry); }
    });
  }

  function disposeAll() {
    clearInterval(checker);
    Array.from(byKey.values()).forEach(dispose);
  }

  const checker = setInterval(checkBoxes, CHECK_MS);

  window.bokehNbClient = {
    version: VERSION,
    render: render,
    disposeAll: disposeAll,
    renewedToken: renewedToken,  // for tests
    // for tests and for users who wonder what is connected
    connectedViews: function () {
      return Array.from(byKey.values()).filter(function (entry) {
        return entry.session != null;
      }).map(function (entry) { return entry.key; });
    },
  };
})();
