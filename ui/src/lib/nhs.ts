// NHS.UK design system components built as DOM (the markup of nhsuk-frontend 10), text only.

import type { AppError } from './api';
import { h, uid, type Child } from './dom';

export function button(
  label: string,
  onClick: (e: Event) => void,
  opts: { variant?: 'secondary' | 'reverse' | 'warning' | 'login'; small?: boolean; id?: string; type?: 'button' | 'submit'; testid?: string } = {},
): HTMLButtonElement {
  const cls = ['nhsuk-button'];
  if (opts.variant) cls.push(`nhsuk-button--${opts.variant}`);
  if (opts.small) cls.push('nhsuk-button--small');
  return h(
    'button',
    {
      class: cls.join(' '),
      attrs: { type: opts.type ?? 'button', id: opts.id, 'data-module': 'nhsuk-button', 'data-testid': opts.testid },
      on: { click: onClick },
    },
    label,
  );
}

export interface Field {
  group: HTMLDivElement;
  input: HTMLInputElement;
  setError(message: string | null): void;
}

/** A labelled text input with an optional hint and an error slot. */
export function textField(
  label: string,
  opts: { name: string; type?: string; hint?: string; autocomplete?: string; width?: number; value?: string; big?: boolean } = {
    name: '',
  },
): Field {
  const id = uid(opts.name || 'field');
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const err = h('p', { class: 'nhsuk-error-message', attrs: { id: errId, hidden: true } });
  const input = h('input', {
    class: `nhsuk-input${opts.width ? ` nhsuk-input--width-${opts.width}` : ''}${opts.big ? ' lb-input--big' : ''}`,
    attrs: {
      id,
      name: opts.name,
      type: opts.type ?? 'text',
      autocomplete: opts.autocomplete ?? 'off',
      spellcheck: 'false',
      'aria-describedby': opts.hint ? hintId : undefined,
    },
    value: opts.value,
  });
  const group = h(
    'div',
    { class: 'nhsuk-form-group' },
    h('label', { class: 'nhsuk-label', attrs: { for: id } }, label),
    opts.hint ? h('div', { class: 'nhsuk-hint', attrs: { id: hintId } }, opts.hint) : null,
    err,
    input,
  );
  return {
    group,
    input,
    setError(message) {
      group.classList.toggle('nhsuk-form-group--error', !!message);
      input.classList.toggle('nhsuk-input--error', !!message);
      err.hidden = !message;
      err.replaceChildren();
      if (message) {
        err.append(h('span', { class: 'nhsuk-u-visually-hidden' }, 'Error: '), message);
        input.setAttribute('aria-describedby', [opts.hint ? hintId : '', errId].filter(Boolean).join(' '));
      } else if (opts.hint) input.setAttribute('aria-describedby', hintId);
      else input.removeAttribute('aria-describedby');
    },
  };
}

export function textArea(label: string, opts: { name: string; hint?: string; rows?: number }) {
  const id = uid(opts.name);
  const hintId = `${id}-hint`;
  const area = h('textarea', {
    class: 'nhsuk-textarea',
    attrs: { id, name: opts.name, rows: opts.rows ?? 5, 'aria-describedby': opts.hint ? hintId : undefined },
  });
  const group = h(
    'div',
    { class: 'nhsuk-form-group' },
    h('label', { class: 'nhsuk-label', attrs: { for: id } }, label),
    opts.hint ? h('div', { class: 'nhsuk-hint', attrs: { id: hintId } }, opts.hint) : null,
    area,
  );
  return { group, area };
}

export function select(label: string, options: [string, string][], opts: { name: string; value?: string }) {
  const id = uid(opts.name);
  const sel = h(
    'select',
    { class: 'nhsuk-select', attrs: { id, name: opts.name } },
    options.map(([value, text]) => h('option', { attrs: { value, selected: value === opts.value } }, text)),
  );
  const group = h('div', { class: 'nhsuk-form-group' }, h('label', { class: 'nhsuk-label', attrs: { for: id } }, label), sel);
  return { group, select: sel };
}

/** The error summary at the top of a form: shows AppError.message as the person should read it. */
export function errorSummary(): { el: HTMLDivElement; show(e: AppError | string | null, opts?: { focus?: boolean }): void } {
  const title = uid('error-summary-title');
  const list = h('ul', { class: 'nhsuk-list nhsuk-error-summary__list' });
  const el = h(
    'div',
    {
      class: 'nhsuk-error-summary',
      attrs: { 'aria-labelledby': title, role: 'alert', tabindex: '-1', hidden: true, 'data-testid': 'error' },
    },
    h('h2', { class: 'nhsuk-error-summary__title', attrs: { id: title } }, 'There is a problem'),
    h('div', { class: 'nhsuk-error-summary__body' }, list),
  );
  return {
    el,
    show(e, opts = {}) {
      list.replaceChildren();
      if (!e) {
        el.hidden = true;
        return;
      }
      list.append(h('li', null, typeof e === 'string' ? e : e.message));
      el.hidden = false;
      if (opts.focus !== false) el.focus();
    },
  };
}

export function summaryList(rows: [string, Child][], opts: { noBorder?: boolean; testid?: string } = {}): HTMLElement {
  return h(
    'dl',
    { class: `nhsuk-summary-list${opts.noBorder ? ' nhsuk-summary-list--no-border' : ''}`, attrs: { 'data-testid': opts.testid } },
    rows.map(([k, v]) =>
      h('div', { class: 'nhsuk-summary-list__row' }, h('dt', { class: 'nhsuk-summary-list__key' }, k), h('dd', { class: 'nhsuk-summary-list__value' }, v)),
    ),
  );
}

export function table(caption: string, head: string[], rows: Child[][], opts: { testid?: string; captionHidden?: boolean } = {}): HTMLElement {
  return h(
    'table',
    { class: 'nhsuk-table', attrs: { 'data-testid': opts.testid } },
    h('caption', { class: `nhsuk-table__caption${opts.captionHidden ? ' nhsuk-u-visually-hidden' : ''}` }, caption),
    h('thead', { class: 'nhsuk-table__head' }, h('tr', { class: 'nhsuk-table__row' }, head.map((t) => h('th', { class: 'nhsuk-table__header', attrs: { scope: 'col' } }, t)))),
    h(
      'tbody',
      { class: 'nhsuk-table__body' },
      rows.map((r) => h('tr', { class: 'nhsuk-table__row' }, r.map((c) => h('td', { class: 'nhsuk-table__cell' }, c)))),
    ),
  );
}

export function tag(textValue: string, colour?: 'white' | 'grey' | 'green' | 'aqua-green' | 'blue' | 'purple' | 'pink' | 'red' | 'orange' | 'yellow'): HTMLElement {
  return h('strong', { class: `nhsuk-tag${colour ? ` nhsuk-tag--${colour}` : ''}` }, textValue);
}

/** A warning callout; its label is an h2 so headings run in order under the page's h1. */
export function warningCallout(heading: string, ...body: Child[]): HTMLElement {
  return h(
    'div',
    { class: 'nhsuk-warning-callout' },
    h('h2', { class: 'nhsuk-warning-callout__label' }, h('span', { attrs: { role: 'text' } }, h('span', { class: 'nhsuk-u-visually-hidden' }, 'Important: '), heading)),
    body,
  );
}

export function inset(...body: Child[]): HTMLElement {
  return h('div', { class: 'nhsuk-inset-text' }, h('span', { class: 'nhsuk-u-visually-hidden' }, 'Information: '), body);
}

export function card(heading: string | null, ...body: Child[]): HTMLElement {
  return h(
    'div',
    { class: 'nhsuk-card' },
    h('div', { class: 'nhsuk-card__content' }, heading ? h('h2', { class: 'nhsuk-card__heading nhsuk-heading-m' }, heading) : null, body),
  );
}

export function panel(heading: string, ...body: Child[]): HTMLElement {
  return h('div', { class: 'nhsuk-panel', attrs: { tabindex: '-1' } }, h('h2', { class: 'nhsuk-panel__title' }, heading), h('div', { class: 'nhsuk-panel__body' }, body));
}

/** "data as of …" wherever cached data is shown. */
export function dataAsOf(s: string): HTMLElement {
  return h('p', { class: 'lb-data-as-of', attrs: { 'data-testid': 'data-as-of' } }, s.charAt(0).toUpperCase() + s.slice(1));
}

export function heading(textValue: string, level: 1 | 2 | 3 = 1, focusable = false): HTMLElement {
  const cls = level === 1 ? 'nhsuk-heading-l' : level === 2 ? 'nhsuk-heading-m' : 'nhsuk-heading-s';
  return h(`h${level}` as 'h1', { class: cls, attrs: { tabindex: focusable ? '-1' : undefined } }, textValue);
}
