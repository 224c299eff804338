// Loaded first, before anything else on the page: collects uncaught errors, failed
// resources, Content-Security-Policy violations and console.error calls, so that the
// browser test (crates/cli/tests/it/ui.rs) can read them from window.__lifehookErrors.
'use strict';
window.__lifehookErrors = [];
(function () {
  const errors = window.__lifehookErrors;
  window.addEventListener('error', function (e) {
    if (e.target && e.target !== window && (e.target.src || e.target.href)) {
      errors.push('failed to load ' + (e.target.src || e.target.href));
    } else {
      errors.push(String(e.message || e.error || 'error'));
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled rejection: ' + String(e.reason));
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    errors.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  const original = console.error;
  console.error = function () {
    errors.push(Array.prototype.map.call(arguments, String).join(' '));
    return original.apply(console, arguments);
  };
})();
