// The pages mails link to: each completes one step through the HTTP API. The link's token comes
// in the fragment (never sent to a server) or the query; it is removed from the address bar at
// once. Text is set with textContent only; the server's error messages are written for display.
'use strict';

const staff = location.pathname.startsWith('/admin/');
const STEPS = {
  'verify-email': {
    endpoint: '/v1/auth/verify-email',
    done: 'Your email address is confirmed. You can close this page.',
  },
  'reset-password': {
    endpoint: staff ? '/v1/staff/auth/password-reset/confirm' : '/v1/auth/password-reset/confirm',
    request: staff ? '/v1/staff/auth/password-reset' : '/v1/auth/password-reset',
    password: true,
    done: 'Your password is changed and every session was signed out. Sign in with the new password.',
  },
  claim: {
    endpoint: '/v1/auth/claim',
    password: true,
    done: 'Your account is ready. Sign in with your email address and the new password.',
  },
  export: {
    endpoint: '/v1/exports/download',
    download: true,
    done: 'Your download has started. The link is now used up; for another copy, ask the shop for a new export.',
  },
  'accept-invitation': {
    endpoint: '/v1/staff/invitations/accept',
    password: true,
    done: 'Your password is set. Sign in to enrol a second factor; then your access begins.',
  },
};

function takeToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || new URLSearchParams(location.search).get('token');
  if (location.hash !== '' || location.search !== '') history.replaceState(null, '', location.pathname);
  return token;
}

function show(kind, text) {
  const status = document.getElementById('status');
  status.dataset.kind = kind;
  status.textContent = text;
}

// Saves a downloaded file under the name the server gave it (Content-Disposition).
async function save(response) {
  const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') || '');
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name ? name[1] : 'data-export.zip';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function post(endpoint, body, download) {
  let response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    return { ok: false, message: 'The service could not be reached. Check your connection and try again.' };
  }
  if (response.ok) {
    if (download) await save(response);
    return { ok: true };
  }
  let message = 'The step failed. Try again later.';
  try {
    const error = (await response.json()).error;
    if (error && typeof error.message === 'string') message = `${error.message[0].toUpperCase()}${error.message.slice(1)}.`;
    if (error && /TOKEN|INVITATION|LINK/.test(error.code ?? '')) message += ' Ask for a new link.';
  } catch {
    // keep the general message
  }
  return { ok: false, message };
}

function run(form, submit) {
  form.hidden = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    show('working', 'One moment…');
    try {
      await submit();
    } finally {
      button.disabled = false;
    }
  });
}

function start() {
  const step = STEPS[document.body.dataset.page];
  if (step === undefined) return;
  const token = takeToken();
  const form = document.getElementById('step');
  if (!token) {
    if (step.request !== undefined) {
      const request = document.getElementById('request');
      run(request, async () => {
        const result = await post(step.request, { email: document.getElementById('email').value });
        if (!result.ok) return show('error', result.message);
        request.hidden = true;
        show('done', 'If an account uses this address, a link is on its way. It works once and for a limited time.');
      });
      return;
    }
    show('error', 'This link is incomplete. Open the link from the mail again, or ask for a new one.');
    return;
  }
  run(form, async () => {
    const body = { token };
    if (step.password) {
      const password = document.getElementById('password').value;
      if (password !== document.getElementById('confirm').value) return show('error', 'The two passwords differ.');
      body.password = password;
    }
    const result = await post(step.endpoint, body, step.download === true);
    if (!result.ok) return show('error', result.message);
    form.hidden = true;
    show('done', step.done);
  });
}

start();
