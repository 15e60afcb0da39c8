/* Small conveniences of the sandbox pages; every page also works without them. */
/* global document, window */
(function () {
  'use strict';
  document.addEventListener('change', function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var text = form && form.getAttribute && form.getAttribute('data-confirm');
    if (text && !window.confirm(text)) event.preventDefault();
  });
  // The frame SDK posts to "<proto>://<DOMAIN>": a page opened under another host name never hears it.
  var expected = document.body && document.body.getAttribute('data-portal-origin');
  var warn = document.querySelector('[data-origin-warning]');
  if (expected && warn && window.location.origin !== expected) {
    warn.hidden = false;
    var link = warn.querySelector('a');
    if (link) link.href = expected + window.location.pathname + window.location.search;
  }
})();
