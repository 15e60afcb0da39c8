/*
 * The parent side of the Bitrix24 frame protocol (reference §7.6), as the b24jssdk frame expects it:
 * the frame posts "<command>:<paramsJSON?>:<callbackKey>:<APP_SID>" to this window, and we answer
 * with event.source.postMessage(callbackKey + ':' + JSON.stringify(result), event.origin).
 * Each app iframe on the page has its data in <script type="application/json" class="sandbox-frame-data">.
 */
/* global window, document, fetch, console, URL */
(function () {
  'use strict';

  /** sid -> { data, iframe, wrap } */
  var frames = {};

  function readFrames() {
    var nodes = document.querySelectorAll('script.sandbox-frame-data');
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var data;
      try {
        data = JSON.parse(node.textContent || 'null');
      } catch (e) {
        console.error('sandbox: bad frame data', e);
        continue;
      }
      if (!data || !data.sid) continue;
      var wrap = node.closest('[data-frame-sid]');
      var iframe = wrap ? wrap.querySelector('iframe') : null;
      frames[data.sid] = { data: data, iframe: iframe, wrap: wrap };
    }
  }

  function submitForms() {
    var forms = document.querySelectorAll('form[data-frame-form]');
    for (var i = 0; i < forms.length; i++) forms[i].submit();
  }

  /** Splits a string message: command first, callback key and APP_SID last, params in between (may hold ':'). */
  function parseMessage(raw) {
    if (typeof raw === 'string') {
      var parts = raw.split(':');
      if (parts.length < 3) return null;
      var command = parts[0];
      var sid = parts[parts.length - 1];
      var key = parts[parts.length - 2];
      var paramsText = parts.slice(1, parts.length - 2).join(':');
      var params = {};
      if (paramsText) {
        try {
          params = JSON.parse(paramsText);
        } catch {
          params = paramsText; // a raw value (singleOption / setValue)
        }
      }
      return { command: command, params: params, key: key, sid: sid };
    }
    // Commands whose name holds ':' are sent as an object (MessageManager.send).
    if (raw && typeof raw === 'object' && typeof raw.method === 'string') {
      return { command: raw.method, params: raw.params || {}, key: String(raw.callback || ''), sid: String(raw.appSid || '') };
    }
    return null;
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.json().then(function (json) {
        if (!res.ok) throw new Error((json && json.error) || 'HTTP ' + res.status);
        return json;
      });
    });
  }

  function setStatus(frame, text, kind) {
    var nodes = document.querySelectorAll('[data-testid="install-status"]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = text;
      nodes[i].className = 'status status-' + kind;
    }
    var after = document.querySelectorAll('[data-show-when-installed]');
    for (var j = 0; j < after.length; j++) after[j].hidden = kind !== 'installed';
  }

  function navigate(path) {
    var url = new URL(String(path || '/'), window.location.origin);
    url.searchParams.delete('IFRAME');
    url.searchParams.delete('IFRAME_TYPE');
    if (url.origin !== window.location.origin) {
      window.open(url.toString(), '_blank');
      return;
    }
    window.location.assign(url.pathname + url.search + url.hash);
  }

  /** Returns the result (or a promise of it) answered to the frame; `after` runs once the answer is sent. */
  function handle(frame, msg) {
    var data = frame.data;
    var init = data.init;
    var p = msg.params && typeof msg.params === 'object' ? msg.params : {};
    switch (msg.command) {
      case 'getInitData':
        return { result: init };
      case 'refreshAuth':
        return {
          result: post('/_sandbox/frame/auth', { clientId: data.clientId }).then(function (auth) {
            init.AUTH_ID = auth.AUTH_ID;
            init.REFRESH_ID = auth.REFRESH_ID;
            init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
            return auth;
          }),
        };
      case 'setInstallFinish':
        return {
          result: post('/_sandbox/frame/install-finish', { clientId: data.clientId }).then(
            function () {
              init.INSTALL = false;
              setStatus(frame, 'Приложение установлено', 'installed');
              return {};
            },
            function (err) {
              setStatus(frame, 'Ошибка установки: ' + err.message, 'failed');
              return {};
            },
          ),
        };
      case 'setInstall':
        return { result: {} };
      case 'resizeWindow': {
        if (frame.iframe) {
          var h = parseInt(p.height, 10);
          if (h > 0) frame.iframe.style.height = h + 'px';
          var w = p.width;
          if (typeof w === 'number' && w > 0) frame.iframe.style.maxWidth = w + 'px';
          else if (typeof w === 'string' && /%$/.test(w)) frame.iframe.style.maxWidth = '';
        }
        return { result: {} };
      }
      case 'setTitle': {
        var title = String(p.title == null ? '' : p.title);
        var titleNode = frame.wrap ? frame.wrap.querySelector('.app-frame-title') : null;
        if (titleNode) titleNode.textContent = title;
        if (data.context !== 'tab') document.title = title + ' — Песочница Битрикс24';
        return { result: {} };
      }
      case 'setScroll':
        window.scrollTo(0, parseInt(p.scroll, 10) || 0);
        return { result: {} };
      case 'reloadWindow':
        return { result: {}, after: function () { window.location.reload(); } };
      case 'setAppOption':
      case 'setUserOption': {
        var bag = msg.command === 'setAppOption' ? 'APP_OPTIONS' : 'USER_OPTIONS';
        if (!init[bag] || typeof init[bag] !== 'object' || Array.isArray(init[bag])) init[bag] = {};
        init[bag][p.name] = p.value;
        return {
          result: post('/_sandbox/frame/option', {
            clientId: data.clientId,
            scope: msg.command === 'setAppOption' ? 'app' : 'user',
            name: p.name,
            value: p.value,
          }).then(function () { return {}; }, function () { return {}; }),
        };
      }
      case 'openPath':
        return { result: {}, after: function () { navigate(p.path); } };
      case 'openApplication':
        return { result: {}, after: function () { navigate('/marketplace/app/' + encodeURIComponent(data.clientId) + '/'); } };
      case 'closeApplication':
        return {
          result: {},
          after: function () {
            if (data.context === 'tab') navigate(data.closeUrl || window.location.pathname);
            else navigate(data.closeUrl || '/marketplace/');
          },
        };
      default:
        // Selectors, im*, placement events…: answered empty so the SDK never hangs.
        return { result: {} };
    }
  }

  function onMessage(event) {
    var msg = parseMessage(event.data);
    if (!msg || !msg.key) return;
    var frame = frames[msg.sid];
    if (!frame) return; // not one of our frames
    if (frame.iframe && frame.iframe.contentWindow && event.source !== frame.iframe.contentWindow) return;
    var answer = handle(frame, msg);
    Promise.resolve(answer.result).then(
      function (result) {
        reply(event, msg.key, result);
        if (answer.after) answer.after();
      },
      function (err) {
        console.error('sandbox: ' + msg.command + ' failed', err);
        reply(event, msg.key, { error: String((err && err.message) || err) });
      },
    );
  }

  function reply(event, key, result) {
    if (!event.source) return;
    event.source.postMessage(key + ':' + JSON.stringify(result === undefined ? {} : result), event.origin);
  }

  window.addEventListener('message', onMessage);
  window.sandboxFrames = frames;

  function start() {
    readFrames();
    submitForms();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
