// First-run setup, sign in, unlock and switch user.

import { api, AppError, type UserInfo } from '../lib/api';
import { h } from '../lib/dom';
import { button, errorSummary, heading, inset, textField } from '../lib/nhs';

function form(onSubmit: () => void, ...children: (Node | null)[]): HTMLFormElement {
  return h(
    'form',
    {
      attrs: { novalidate: true },
      on: {
        submit: (e) => {
          e.preventDefault();
          onSubmit();
        },
      },
    },
    ...children,
  );
}

export function setupScreen(done: (u: UserInfo) => void): { el: HTMLElement; focus: HTMLElement } {
  const errors = errorSummary();
  const username = textField('Username', { name: 'username', hint: 'For example, jsmith. You will sign in with this.', width: 20 });
  const display = textField('Full name', { name: 'displayName', hint: 'As colleagues know you, for example Jane Smith.', width: 30 });
  const pw = textField('Password', { name: 'password', type: 'password', autocomplete: 'new-password', hint: 'At least 10 characters.', width: 20 });
  const pw2 = textField('Confirm password', { name: 'confirm', type: 'password', autocomplete: 'new-password', width: 20 });
  let busy = false;
  const submit = async () => {
    if (busy) return;
    [username, display, pw, pw2].forEach((f) => f.setError(null));
    if (!username.input.value.trim()) return username.setError('Enter a username'), errors.show('Enter a username');
    if (!display.input.value.trim()) return display.setError('Enter your full name'), errors.show('Enter your full name');
    if (pw.input.value !== pw2.input.value) return pw2.setError('The passwords do not match'), errors.show('The passwords do not match');
    busy = true;
    try {
      done(await api.setup(username.input.value.trim(), display.input.value.trim(), pw.input.value));
    } catch (e) {
      errors.show(AppError.from(e));
    } finally {
      busy = false;
    }
  };
  const el = h(
    'div',
    { attrs: { 'data-screen': 'setup' } },
    heading('Set up Lifeboat on this computer'),
    h('p', { class: 'nhsuk-body-l' }, 'Create the first practice manager account. The manager can then add reception and clinical staff.'),
    inset('Lifeboat keeps a copy of the practice’s appointments and summaries on this computer, encrypted, for when the clinical system is down.'),
    errors.el,
    form(submit, username.group, display.group, pw.group, pw2.group, button('Create manager account', () => {}, { type: 'submit', testid: 'setup-submit' })),
  );
  return { el, focus: username.input };
}

export function loginScreen(done: (u: UserInfo) => void, message?: string): { el: HTMLElement; focus: HTMLElement } {
  const errors = errorSummary();
  const username = textField('Username', { name: 'username', autocomplete: 'username', width: 20 });
  const pw = textField('Password', { name: 'password', type: 'password', autocomplete: 'current-password', width: 20 });
  let busy = false;
  const submit = async () => {
    if (busy) return;
    busy = true;
    try {
      done(await api.login(username.input.value.trim(), pw.input.value));
    } catch (e) {
      pw.input.value = '';
      errors.show(AppError.from(e));
    } finally {
      busy = false;
    }
  };
  const el = h(
    'div',
    { attrs: { 'data-screen': 'login' } },
    heading('Sign in to Lifeboat'),
    message ? inset(message) : null,
    errors.el,
    form(submit, username.group, pw.group, button('Sign in', () => {}, { type: 'submit', testid: 'login-submit' })),
  );
  return { el, focus: username.input };
}

export function unlockScreen(user: UserInfo, done: (u: UserInfo) => void, switchUser: () => void, reason?: string): { el: HTMLElement; focus: HTMLElement } {
  const errors = errorSummary();
  const pw = textField('Password', { name: 'password', type: 'password', autocomplete: 'current-password', width: 20 });
  const submit = async () => {
    try {
      done(await api.unlock(pw.input.value));
    } catch (e) {
      pw.input.value = '';
      errors.show(AppError.from(e));
    }
  };
  const el = h(
    'div',
    { attrs: { 'data-screen': 'unlock' } },
    heading('Lifeboat is locked'),
    h('p', { class: 'nhsuk-body-l' }, `Signed in as ${user.displayName} (${user.role}). Enter your password to carry on where you left off.`),
    reason ? inset(reason) : null,
    errors.el,
    form(
      submit,
      pw.group,
      h('div', { class: 'nhsuk-button-group' }, button('Unlock', () => {}, { type: 'submit', testid: 'unlock-submit' }), button('Switch user', switchUser, { variant: 'secondary' })),
    ),
  );
  return { el, focus: pw.input };
}
