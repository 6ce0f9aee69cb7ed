// The cabinet's one script: small progressive behaviours hooked to data attributes. Every screen
// works without it; with it, the till is faster and the previews update as you type.
// Served at /app/assets/cabinet.js (Content-Security-Policy: script-src 'self'); no build step.
(function () {
  'use strict';

  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  // The field marked autofocus gets the focus as soon as the script runs: a scanner that fires
  // right after the page loads must not lose its first digits.
  var auto = document.querySelector('[autofocus]');
  if (auto && document.activeElement !== auto) auto.focus();

  // ---- forms: confirmation, no double submission ----------------------------------------------
  each('form[data-confirm]', function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });
  each('form[method="post"]', function (form) {
    form.addEventListener('submit', function (event) {
      if (event.defaultPrevented) return;
      // The server is idempotent anyway; this only stops a second click from queueing a request.
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = '1';
      // The entry list (with the pressed button's name=value) is built before this runs.
      setTimeout(function () {
        each('button[type="submit"]', function (b) { b.disabled = true; }, form);
      }, 0);
    });
  });

  // Back/forward cache: a page shown again must not keep its buttons disabled.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    each('form[data-submitted]', function (form) {
      delete form.dataset.submitted;
      each('button', function (b) { b.disabled = false; }, form);
    });
  });

  // ---- copy buttons ---------------------------------------------------------------------------
  each('[data-copy]', function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      var target = document.getElementById(button.getAttribute('data-copy'));
      if (!target) return;
      var text = target.value || target.textContent;
      var done = function () {
        var label = button.textContent;
        button.textContent = button.getAttribute('data-copied') || 'OK';
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done);
      else { target.select && target.select(); document.execCommand('copy'); done(); }
    });
  });
  each('[data-print]', function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { window.print(); });
  });

  // ---- the till ---------------------------------------------------------------------------------
  var search = document.querySelector('[data-search-input]');
  if (search) {
    // Esc anywhere on the till goes back to the search field, selected, ready for the next scan.
    document.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && document.activeElement !== search) {
        search.focus();
        search.select();
      }
    });
    if (document.activeElement === search && search.value) search.select();
  }

  each('form[data-purchase-form]', function (form) {
    var amount = form.querySelector('[data-amount]');
    var pointsField = form.querySelector('[data-points]');
    var redeem = form.querySelector('[data-redeem]');
    var hint = document.getElementById(pointsField.id + '-hint');
    var balance = Number(form.dataset.balance);
    var maxPercent = Number(form.dataset.maxPercent);
    var pointValue = Number(form.dataset.pointValue);
    var digits = Number(form.dataset.digits);
    var lang = form.dataset.lang;
    var original = hint ? hint.textContent : '';
    var fmt = new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-US');

    function minorUnits(text) {
      var cleaned = text.replace(/[\s\u00a0\u202f]/g, '').replace(',', '.');
      var m = /^(\d{1,12})(?:\.(\d*))?$/.exec(cleaned);
      if (!m || (m[2] || '').length > digits) return null;
      return Number(m[1]) * Math.pow(10, digits) + Number((m[2] || '').padEnd(digits, '0') || '0');
    }
    function update() {
      if (!hint) return;
      var minor = minorUnits(amount.value);
      if (!minor) { hint.textContent = original; return; }
      // The same integer rule as the server: floor(amount × percent / 100 / pointValue).
      var cap = Math.floor((minor * Math.round(maxPercent * 100)) / (10000 * pointValue));
      var max = Math.min(cap, balance);
      // The word agrees with the number (Intl.PluralRules), as on the server (src/i18n/format.ts).
      var word = lang === 'ru' ? { one: 'балл', few: 'балла', many: 'баллов', other: 'балла' } : { one: 'point', other: 'points' };
      var counted = fmt.format(max) + ' ' + (word[new Intl.PluralRules(lang === 'ru' ? 'ru-RU' : 'en-US').select(max)] || word.other);
      hint.textContent = lang === 'ru' ? 'Можно списать на этот чек: ' + counted + '. Пусто — списать максимум.' : 'Up to ' + counted + ' on this check. Empty: the most allowed.';
      pointsField.setAttribute('max', String(max));
    }
    amount.addEventListener('input', update);
    update();
    // Enter in the points field redeems (the form's default button accrues).
    pointsField.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') {
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit(redeem); else redeem.click();
      }
    });
  });

  function luminance(hex) {
    var c = [1, 3, 5].map(function (i) {
      var v = parseInt(hex.slice(i, i + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  // ---- live previews (card design, campaign message) --------------------------------------------
  // <input data-preview-var="--bg"> sets a CSS variable on [data-preview-root];
  // <input data-preview-text="logo"> fills every [data-preview-slot="logo"].
  each('[data-preview-root]', function (root) {
    var scope = root.closest('[data-preview-scope]') || document;
    each('[data-preview-var]', function (input) {
      var apply = function () {
        var name = input.getAttribute('data-preview-var');
        if (/^#[0-9a-fA-F]{6}$/.test(input.value)) {
          root.style.setProperty(name, input.value);
          // Google picks black or white text for the background itself: follow it.
          if (name === '--bg') root.style.setProperty('--auto-fg', luminance(input.value) > 0.179 ? '#000000' : '#ffffff');
        }
        var twin = input.getAttribute('data-twin') && document.getElementById(input.getAttribute('data-twin'));
        if (twin && twin.value !== input.value && /^#[0-9a-fA-F]{6}$/.test(input.value)) twin.value = input.value;
      };
      input.addEventListener('input', apply);
      apply();
    }, scope);
    each('[data-preview-text]', function (input) {
      var slot = input.getAttribute('data-preview-text');
      var apply = function () {
        each('[data-preview-slot="' + slot + '"]', function (target) {
          target.textContent = input.value || target.getAttribute('data-placeholder') || '';
        }, root.ownerDocument);
      };
      input.addEventListener('input', apply);
      apply();
    }, scope);
  });

  // ---- audience size (campaigns) ---------------------------------------------------------------
  each('form[data-audience-url]', function (form) {
    var out = form.querySelector('[data-audience-size]');
    if (!out) return;
    var timer;
    function refresh() {
      var params = new URLSearchParams();
      each('input[type=checkbox]:checked', function (box) {
        if (box.name === 'tiers' || box.name === 'segments' || box.name === 'all') params.append(box.name, box.value);
      }, form);
      fetch(form.getAttribute('data-audience-url') + '?' + params.toString(), { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) out.textContent = data.text; });
    }
    form.addEventListener('change', function (event) {
      if (event.target && event.target.type === 'checkbox') { clearTimeout(timer); timer = setTimeout(refresh, 150); }
    });
  });

  // ---- live progress (campaigns) ----------------------------------------------------------------
  each('[data-poll]', function (region) {
    var url = region.getAttribute('data-poll');
    function tick() {
      fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          Object.keys(data.fields || {}).forEach(function (key) {
            each('[data-field="' + key + '"]', function (el) { el.textContent = data.fields[key]; }, region);
          });
          if (data.percent !== undefined) each('progress', function (p) { p.value = data.percent; }, region);
          if (data.final) { if (region.getAttribute('data-reload-when-final') !== null) window.location.reload(); return; }
          setTimeout(tick, 1500);
        })
        .catch(function () { setTimeout(tick, 5000); });
    }
    setTimeout(tick, 1500);
  });
})();
