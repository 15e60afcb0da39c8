/*
 * The parent side of the Bitrix24 frame protocol (reference §7.6), modelled on Bitrix24's own
 * BX.rest.AppLayout (rest/js/applayout.js, rest/install/components/bitrix/app.layout):
 * the frame posts "<command>:<paramsJSON?>:<callbackKey>:<APP_SID>" (or {method, params, callback,
 * appSid} for commands holding ':'), and the answer is posted to the frame as
 * "<callbackKey>:<JSON>" ("<callbackKey>:" when the answer carries nothing), to the app's origin.
 * Commands Bitrix24 never answers (denied ones, im*, a cancelled selector) get no answer here
 * either; the b24jssdk sends most of them "safely" and settles them itself after ~900 ms.
 * Each app iframe on the page has its data in <script type="application/json" class="sandbox-frame-data">.
 */
/* global window, document, fetch, console, URL */
(function () {
  'use strict';

  /** resizeWindow heights are kept within these bounds (px). */
  var MIN_HEIGHT = 100;
  var MAX_HEIGHT = 5000;
  /** Paths openPath may open (applayout.js BX.rest.AppLayout.openPath; `crm/type` as in today's docs). */
  var OPEN_PATH = /^\/(crm\/(deal|lead|contact|company|type)|marketplace|company\/personal\/user\/[0-9]+|workgroups\/group\/[0-9]+)\//;
  /**
   * Slider widths behind the prefixes b24jssdk's slider.openPath(url, width) puts before the path
   * (frame/slider.mjs #getBaseUrlByWidth picks a portal URL rule of about that width).
   */
  var SLIDER_WIDTHS = [
    ['/crm/type/0/details/0/', 1640],
    ['/company/personal/user/0/groups/create/', 1200],
    ['/crm/company/requisite/0/', 950],
    ['/workgroups/group/0/card/', 900],
  ];
  /** What placements (not the main page) may not call (app.layout template: denyInterface). */
  var DENIED_IN_PLACEMENT = ['setTitle', 'setScroll', 'reloadWindow'];
  var COMMANDS = [
    'getInitData', 'getInterface', 'refreshAuth', 'resizeWindow', 'setTitle', 'setScroll', 'setUserOption', 'setAppOption',
    'setInstall', 'setInstallFinish', 'selectCRM', 'reloadWindow', 'openApplication', 'openPath', 'closeApplication',
    'imCallTo', 'imPhoneTo', 'imOpenMessenger', 'imOpenHistory', 'placementBindEvent',
  ];
  var CRM_TYPE_NAMES = { lead: 'Лид', contact: 'Контакт', company: 'Компания', deal: 'Сделка', quote: 'Предложение' };
  var CRM_PREFIX = { lead: 'L', contact: 'C', company: 'CO', deal: 'D', quote: 'Q' };

  /** sid -> { data, iframe, wrap, layout } */
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
      var layout = wrap ? wrap.querySelector('.app-frame-layout') : null;
      frames[data.sid] = { data: data, iframe: iframe, wrap: wrap, layout: layout || iframe };
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

  function setStatus(text, kind) {
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

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs) if (Object.prototype.hasOwnProperty.call(attrs, name)) node.setAttribute(name, attrs[name]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---------------------------------------------------------------------------------------------
  // Sliders: Bitrix24 opens cards and apps in BX.SidePanel over the page, and answers the frame
  // when the slider closes. One stack per browser tab, kept by the top window (same origin), so a
  // frame inside a slider opens the next slider over it.
  // ---------------------------------------------------------------------------------------------
  var sliders = [];

  function topSliders() {
    try {
      if (window.top !== window && window.top.sandboxSliders) return window.top.sandboxSliders;
    } catch {
      // a foreign top window: keep our own stack
    }
    return localSliders;
  }

  function sliderWidth(rawPath) {
    for (var i = 0; i < SLIDER_WIDTHS.length; i++) if (rawPath.indexOf(SLIDER_WIDTHS[i][0]) === 0) return SLIDER_WIDTHS[i][1];
    return 1640;
  }

  var localSliders = {
    /** Opens `url` (same origin) in a slider; `onClose` runs once it is closed. */
    open: function (url, options, onClose) {
      var overlay = el('div', { class: 'sandbox-slider', 'data-testid': 'slider', role: 'dialog', 'aria-modal': 'true', 'data-url': url });
      var panel = el('div', { class: 'sandbox-slider-panel' });
      panel.style.width = (options.width || 1640) + 'px';
      var bar = el('div', { class: 'sandbox-slider-bar' });
      var title = el('span', { class: 'sandbox-slider-title', 'data-testid': 'slider-title' }, options.title || '');
      var close = el('button', { type: 'button', class: 'sandbox-slider-close', 'data-testid': 'slider-close', 'aria-label': 'Закрыть' }, '×');
      var frame = el('iframe', { class: 'sandbox-slider-frame', 'data-testid': 'slider-frame', title: options.title || 'Слайдер', src: url });
      bar.appendChild(title);
      bar.appendChild(close);
      panel.appendChild(bar);
      panel.appendChild(frame);
      overlay.appendChild(panel);
      var entry = { overlay: overlay, frame: frame, onClose: onClose };
      close.addEventListener('click', function () { localSliders.close(entry); });
      overlay.addEventListener('click', function (e) { if (e.target === overlay) localSliders.close(entry); });
      frame.addEventListener('load', function () {
        try {
          if (!options.title) title.textContent = frame.contentDocument.title.replace(/ — Песочница Битрикс24$/, '');
        } catch {
          // not our page
        }
      });
      document.body.appendChild(overlay);
      sliders.push(entry);
      close.focus();
      return entry;
    },
    close: function (entry, after) {
      var i = sliders.indexOf(entry || sliders[sliders.length - 1]);
      if (i < 0) return;
      var gone = sliders.splice(i);
      for (var j = gone.length - 1; j >= 0; j--) {
        gone[j].overlay.remove();
        if (gone[j].onClose) gone[j].onClose();
      }
      if (after) after();
    },
    /** The slider showing `win` (a window inside its iframe), if any. */
    holding: function (win) {
      for (var i = 0; i < sliders.length; i++) if (sliders[i].frame.contentWindow === win) return sliders[i];
      return null;
    },
  };

  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && sliders.length && !document.querySelector('.sandbox-modal')) localSliders.close();
  });

  // ---------------------------------------------------------------------------------------------
  // The CRM selector (selectCRM): a modal in the portal page listing its CRM items.
  // ---------------------------------------------------------------------------------------------

  /** Typed ids preset by `value` (multiple mode only): ['C_2', …] or {contact:[2], …}. */
  function presetIds(value) {
    var out = {};
    if (Array.isArray(value)) {
      for (var i = 0; i < value.length; i++) out[String(value[i])] = true;
    } else if (value && typeof value === 'object') {
      for (var type in value) {
        if (!Object.prototype.hasOwnProperty.call(value, type) || !CRM_PREFIX[type]) continue;
        var ids = Array.isArray(value[type]) ? value[type] : [];
        for (var j = 0; j < ids.length; j++) out[CRM_PREFIX[type] + '_' + ids[j]] = true;
      }
    }
    return out;
  }

  function openCrmSelector(frame, p, answer) {
    var multiple = p.multiple === true || p.multiple === 'Y';
    post('/_sandbox/frame/crm-entities', { clientId: frame.data.clientId, entityType: p.entityType }).then(
      function (lists) { showCrmSelector(lists, multiple, multiple ? presetIds(p.value) : {}, answer); },
      function (err) { console.error('sandbox: selectCRM could not load CRM items', err); },
    );
  }

  function showCrmSelector(lists, multiple, preset, answer) {
    var types = Object.keys(lists);
    var selected = {};
    var modal = el('div', { class: 'sandbox-modal', 'data-testid': 'crm-selector', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'crm-selector-title' });
    var box = el('div', { class: 'sandbox-modal-box' });
    var heading = el('h2', { id: 'crm-selector-title' }, 'Выбор элемента CRM');
    var search = el('input', { type: 'search', 'data-testid': 'crm-search', placeholder: 'Поиск по названию или имени', 'aria-label': 'Поиск' });
    var list = el('ul', { class: 'crm-selector-list', role: 'listbox', 'aria-label': 'Элементы CRM', 'aria-multiselectable': multiple ? 'true' : 'false', 'data-testid': 'crm-list' });
    var empty = el('div', { class: 'muted', 'data-testid': 'crm-empty' }, 'Ничего не найдено');
    var bar = el('div', { class: 'toolbar' });
    var choose = el('button', { type: 'button', class: 'btn', 'data-testid': 'crm-select' }, 'Выбрать');
    var cancel = el('button', { type: 'button', class: 'btn btn-light', 'data-testid': 'crm-cancel' }, 'Отмена');
    bar.appendChild(choose);
    bar.appendChild(cancel);
    box.appendChild(heading);
    box.appendChild(search);
    box.appendChild(list);
    box.appendChild(empty);
    box.appendChild(bar);
    modal.appendChild(box);

    var rows = [];
    types.forEach(function (type) {
      (lists[type] || []).forEach(function (item) {
        var li = el('li', { role: 'option', tabindex: '0', 'data-testid': 'crm-item-' + item.id, 'data-id': item.id, 'aria-selected': 'false' });
        li.appendChild(el('b', {}, item.title));
        li.appendChild(el('span', { class: 'kind' }, CRM_TYPE_NAMES[type] + (item.desc ? ' · ' + item.desc : '')));
        li.addEventListener('click', function () { toggle(item, li); });
        li.addEventListener('dblclick', function () { if (!multiple) save(); });
        li.addEventListener('keydown', function (e) {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            toggle(item, li);
          }
        });
        list.appendChild(li);
        rows.push({ item: item, li: li, text: (item.title + ' ' + item.desc + ' ' + item.id).toLowerCase() });
        if (preset[item.id]) toggle(item, li);
      });
    });

    function refresh() {
      var any = false;
      for (var id in selected) if (Object.prototype.hasOwnProperty.call(selected, id)) any = true;
      choose.disabled = !any;
    }
    function toggle(item, li) {
      if (!multiple) {
        selected = {};
        rows.forEach(function (r) { r.li.setAttribute('aria-selected', 'false'); });
      }
      if (selected[item.id] && multiple) {
        delete selected[item.id];
        li.setAttribute('aria-selected', 'false');
      } else {
        selected[item.id] = item;
        li.setAttribute('aria-selected', 'true');
      }
      refresh();
    }
    function filter() {
      var needle = search.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (r) {
        r.li.hidden = needle !== '' && r.text.indexOf(needle) < 0;
        if (!r.li.hidden) shown++;
      });
      empty.hidden = shown > 0;
    }
    function close() {
      modal.remove();
      document.removeEventListener('keydown', onKey, true);
    }
    function save() {
      var result = {};
      types.forEach(function (type) { result[type] = []; });
      rows.forEach(function (r) { if (selected[r.item.id]) result[r.item.type].push(r.item); });
      close();
      answer(result);
    }
    function onKey(e) {
      if (e.key === 'Escape') {
        e.stopPropagation();
        close();
      }
    }
    search.addEventListener('input', filter);
    choose.addEventListener('click', save);
    // Bitrix24's selector answers only on save: a cancelled selection is never reported to the frame.
    cancel.addEventListener('click', close);
    modal.addEventListener('click', function (e) { if (e.target === modal) close(); });
    document.addEventListener('keydown', onKey, true);
    document.body.appendChild(modal);
    filter();
    refresh();
    search.focus();
  }

  // ---------------------------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------------------------

  function clampHeight(value) {
    var h = parseInt(value, 10);
    if (!(h > 0)) return 0;
    return Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, h));
  }

  /** resizeWindow as applayout.js does it: size the layout box, answer its rendered size. */
  function resize(frame, p) {
    var box = frame.layout;
    if (!box) return { width: 0, height: 0 };
    var width = p.width === '100%' ? '100%' : (parseInt(p.width, 10) || 100) + 'px';
    var height = clampHeight(p.height);
    box.style.width = width;
    if (height) box.style.height = height + 'px';
    if (frame.wrap) {
      frame.wrap.setAttribute('data-frame-height', String(box.offsetHeight));
      frame.wrap.setAttribute('data-frame-width', String(box.offsetWidth));
    }
    return { width: box.offsetWidth, height: box.offsetHeight };
  }

  function setPageTitle(frame, title) {
    var node = document.getElementById('pagetitle') || document.querySelector('.bare-title');
    if (node) node.textContent = title;
    var frameTitle = frame.wrap ? frame.wrap.querySelector('.app-frame-title') : null;
    if (frameTitle) frameTitle.textContent = title;
  }

  /** The slider holding this page, when the page itself was opened in one (openApplication, openPath). */
  function ownSlider() {
    try {
      if (window.top !== window && window.top.sandboxSliders) return window.top.sandboxSliders.holding(window);
    } catch {
      // not under a sandbox page
    }
    return null;
  }

  function interfaceOf(frame) {
    var denied = deniedFor(frame);
    return { command: COMMANDS.filter(function (c) { return denied.indexOf(c) < 0; }), event: [] };
  }

  function deniedFor(frame) {
    var denied = [];
    if (frame.data.init.PLACEMENT !== 'DEFAULT') denied = denied.concat(DENIED_IN_PLACEMENT);
    if (frame.data.popup) denied.push('resizeWindow');
    return denied;
  }

  /**
   * Runs one command. `answer(value)` posts the answer (value undefined: an empty one); commands
   * Bitrix24 never answers simply never call it.
   */
  function handle(frame, msg, answer) {
    var data = frame.data;
    var init = data.init;
    var p = msg.params && typeof msg.params === 'object' ? msg.params : {};
    if (deniedFor(frame).indexOf(msg.command) >= 0) {
      console.warn('sandbox: ' + msg.command + ' is not available to ' + init.PLACEMENT + (data.popup ? ' in a slider' : '') + ' (Bitrix24 ignores it, without an answer)');
      return;
    }
    switch (msg.command) {
      case 'getInitData':
        answer(init);
        init.FIRST_RUN = false;
        return;
      case 'getInterface':
        answer(interfaceOf(frame));
        return;
      case 'refreshAuth':
        post('/_sandbox/frame/auth', { clientId: data.clientId }).then(
          function (auth) {
            init.AUTH_ID = auth.AUTH_ID;
            init.REFRESH_ID = auth.REFRESH_ID;
            init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
            answer(auth);
          },
          function (err) {
            console.error('sandbox: refreshAuth failed', err);
            answer({ error: 'REFRESH_FAILED', error_description: String(err && err.message) });
          },
        );
        return;
      case 'setInstallFinish':
        post('/_sandbox/frame/install-finish', { clientId: data.clientId }).then(
          function () {
            init.INSTALL = false;
            setStatus('Приложение установлено', 'installed');
            answer({});
          },
          function (err) {
            setStatus('Ошибка установки: ' + err.message, 'failed');
            answer({});
          },
        );
        return;
      case 'setInstall':
        answer(p);
        return;
      case 'resizeWindow':
        answer(resize(frame, p));
        return;
      case 'setTitle':
        setPageTitle(frame, String(p.title == null ? '' : p.title));
        answer(p);
        return;
      case 'setScroll':
        if (typeof p.scroll !== 'undefined' && p.scroll >= 0) window.scrollTo(window.scrollX, parseInt(p.scroll, 10) || 0);
        answer(p);
        return;
      case 'reloadWindow':
        window.location.reload();
        return;
      case 'setUserOption':
      case 'setAppOption': {
        var app = msg.command === 'setAppOption';
        if (app && !init.IS_ADMIN) {
          console.warn('sandbox: setAppOption by a non-administrator is ignored, without an answer (as in Bitrix24)');
          return;
        }
        var bag = app ? 'APP_OPTIONS' : 'USER_OPTIONS';
        if (!init[bag] || typeof init[bag] !== 'object' || Array.isArray(init[bag])) init[bag] = {};
        init[bag][p.name] = p.value;
        post('/_sandbox/frame/option', { clientId: data.clientId, scope: app ? 'app' : 'user', name: p.name, value: p.value }).then(
          function () { answer(p); },
          function (err) {
            console.error('sandbox: ' + msg.command + ' failed', err);
            answer({ error: 'OPTION_NOT_SAVED', error_description: String(err && err.message) });
          },
        );
        return;
      }
      case 'selectCRM':
        openCrmSelector(frame, p, answer);
        return;
      case 'openPath': {
        var raw = typeof p.path === 'string' ? p.path : '';
        if (!raw || !OPEN_PATH.test(raw)) {
          answer({ result: 'error', errorCode: 'PATH_NOT_AVAILABLE' });
          return;
        }
        var url = new URL(raw, window.location.origin);
        url.searchParams.set('from', 'rest_placement');
        url.searchParams.set('from_app', data.appCode || data.clientId);
        topSliders().open(url.pathname + url.search + url.hash, { width: sliderWidth(raw) }, function () {
          answer({ result: 'close' });
        });
        return;
      }
      case 'openApplication': {
        var options = {};
        var slider = { width: 1640, title: '' };
        for (var k in p) {
          if (!Object.prototype.hasOwnProperty.call(p, k)) continue;
          if (k.indexOf('bx24_') === 0) {
            if (k === 'bx24_width' && typeof p[k] === 'number') slider.width = p[k];
            if (k === 'bx24_title' && typeof p[k] === 'string') slider.title = p[k];
          } else options[k] = p[k];
        }
        var appUrl = '/marketplace/app/' + encodeURIComponent(data.clientId) + '/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER';
        if (Object.keys(options).length) appUrl += '&PLACEMENT_OPTIONS=' + encodeURIComponent(JSON.stringify(options));
        topSliders().open(appUrl, slider, function () { answer(); });
        return;
      }
      case 'closeApplication': {
        var holder = ownSlider();
        if (holder) {
          window.top.sandboxSliders.close(holder, function () { answer(); });
          return;
        }
        // Outside a slider Bitrix24 does nothing (and never answers); the sandbox leaves the app's page instead.
        answer({});
        if (data.context === 'tab') navigate(data.closeUrl || window.location.pathname);
        else navigate(data.closeUrl || '/marketplace/');
        return;
      }
      case 'imCallTo':
      case 'imPhoneTo':
      case 'imOpenMessenger':
      case 'imOpenHistory':
        console.info('sandbox: ' + msg.command + ' — the sandbox has no messenger; Bitrix24 does not answer this command either', p);
        return;
      case 'placementBindEvent':
        console.info('sandbox: ' + init.PLACEMENT + ' has no events to bind (' + String(p.event) + '); Bitrix24 answers only when a bound event fires');
        return;
      default:
        console.warn('sandbox: the frame sent "' + msg.command + '", which the sandbox portal does not implement', p);
        answer({ error: 'UNKNOWN_COMMAND', error_description: 'The sandbox portal does not implement the frame command "' + msg.command + '"' });
    }
  }

  function onMessage(event) {
    var msg = parseMessage(event.data);
    if (!msg) return;
    var frame = frames[msg.sid];
    if (!frame) return; // not one of our frames
    if (frame.data.appOrigin && event.origin !== frame.data.appOrigin) return;
    if (frame.iframe && frame.iframe.contentWindow && event.source !== frame.iframe.contentWindow) return;
    var source = event.source;
    var origin = event.origin;
    try {
      handle(frame, msg, function (result) {
        if (!msg.key || !source) return;
        source.postMessage(msg.key + ':' + (result === undefined ? '' : JSON.stringify(result)), origin);
      });
    } catch (err) {
      console.error('sandbox: ' + msg.command + ' failed', err);
      if (msg.key && source) source.postMessage(msg.key + ':' + JSON.stringify({ error: 'SANDBOX_ERROR', error_description: String((err && err.message) || err) }), origin);
    }
  }

  window.addEventListener('message', onMessage);
  window.sandboxFrames = frames;
  if (window.top === window) window.sandboxSliders = localSliders;

  function start() {
    readFrames();
    submitForms();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
