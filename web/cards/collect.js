// The card fields of /cards/collect, inside the storefront's iframe. The publishable key comes in
// the fragment (never sent to a server in the URL) and leaves the address bar at once. The card
// goes to POST /v1/cards/collect on this origin; only the answer — the token, brand, BIN, last
// four and expiry, never the card number — is handed to the embedding page, by postMessage to
// the storefront origin the session was minted for (the browser delivers it to no other).
// Text is set with textContent only.
'use strict';

(() => {
  const key = new URLSearchParams(location.hash.slice(1)).get('key');
  if (location.hash !== '') history.replaceState(null, '', location.pathname);
  const form = document.getElementById('card');
  const status = document.getElementById('status');
  const field = (id) => document.getElementById(id);

  function show(kind, text) {
    status.dataset.kind = kind;
    status.textContent = text;
  }

  const RELOAD = 'Reload the checkout page to enter a card.';
  const MESSAGES = {
    CARDS_SESSION_KEY_USED: `This card form was already used. ${RELOAD}`,
    CARDS_SESSION_KEY_EXPIRED: `This card form has expired. ${RELOAD}`,
    CARDS_SESSION_KEY_INVALID: `This card form is not valid. ${RELOAD}`,
    CARDS_SESSION_ORIGIN_MISMATCH: `This card form belongs to another shop. ${RELOAD}`,
    CARDS_PAN_NOT_DIGITS: 'Check the card number.',
    CARDS_PAN_LENGTH: 'Check the card number.',
    CARDS_PAN_LUHN: 'Check the card number.',
    CARDS_PAN_BRAND_UNKNOWN: 'This card type is not accepted.',
    CARDS_EXPIRY_IMPOSSIBLE: 'Check the expiry date.',
    CARDS_EXPIRED: 'This card has expired.',
    CARDS_CVV_INVALID: 'Check the security code.',
    CARDS_NUMBER_IN_FREE_TEXT: 'Check the name on the card.',
  };

  if (key === null || !/^cpk_[0-9A-Z]{26}_[A-Za-z0-9_-]{43}$/.test(key)) {
    show('error', `This card form is missing its session. ${RELOAD}`);
    return;
  }
  form.hidden = false;

  function read() {
    const pan = field('pan').value.replace(/[\s-]/g, '');
    const exp = /^(\d{1,2})\s*\/?\s*(\d{2}|\d{4})$/.exec(field('exp').value.trim());
    if (exp === null) return { problem: 'Enter the expiry as MM / YY.' };
    const body = { pan, exp_month: Number(exp[1]), exp_year: exp[2].length === 2 ? 2000 + Number(exp[2]) : Number(exp[2]) };
    const cvv = field('cvv').value.trim();
    const name = field('name').value.trim();
    if (cvv !== '') body.cvv = cvv;
    if (name !== '') body.cardholder_name = name;
    return { body };
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { body, problem } = read();
    if (problem !== undefined) return show('error', problem);
    const button = form.querySelector('button');
    button.disabled = true;
    show('working', 'One moment…');
    let response;
    try {
      response = await fetch('/v1/cards/collect', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      button.disabled = false;
      return show('error', 'The card could not be sent. Check your connection and try again.');
    }
    if (!response.ok) {
      let code = '';
      try {
        code = (await response.json()).error.code;
      } catch {
        // keep the general message
      }
      button.disabled = false;
      return show('error', MESSAGES[code] ?? (code.startsWith('VAULT_') ? 'Check the name on the card.' : 'The card could not be saved. Try again later.'));
    }
    const card = await response.json();
    form.reset();
    form.hidden = true;
    show('done', `Card ending in ${card.last4} is ready.`);
    if (window.parent !== window)
      window.parent.postMessage(
        { type: 'custos:card-token', session: card.session, token: card.token, brand: card.brand, bin: card.bin, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year },
        card.origin,
      );
  });
})();
