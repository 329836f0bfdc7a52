// Reception: find a patient as you type (keyboard only: type, arrow keys, Enter), then the
// patient's overview: demographics, alerts, upcoming appointments, and booking.

import { api, AppError, type AppointmentView, type PatientMatch, type PatientOverview, type Practitioner } from '../lib/api';
import type { BookAction } from '../lib/booking/confirm';
import { h, fill, uid, afterPaint } from '../lib/dom';
import { button, dataAsOf, errorSummary, heading, inset, select, summaryList, table, tag, warningCallout } from '../lib/nhs';
import { displayName, formatNhsNumber } from '../lib/patient/format';
import { LatestOnly, onListKey } from '../lib/search/keyboard';
import { formatBirthDate, formatDateTime } from '../lib/time/format';
import { confirmAndRun, slotList } from './actions';
import type { Ctx, Screen } from './types';

export function receptionScreen(ctx: Ctx): Screen {
  const listId = uid('results');
  const input = h('input', {
    class: 'nhsuk-input lb-input--big',
    attrs: {
      id: 'patient-search',
      type: 'search',
      autocomplete: 'off',
      spellcheck: 'false',
      role: 'combobox',
      'aria-expanded': 'false',
      'aria-controls': listId,
      'aria-autocomplete': 'list',
      'aria-describedby': 'patient-search-hint',
      'data-testid': 'search',
    },
  });
  const list = h('ul', { class: 'lb-results', attrs: { id: listId, role: 'listbox', 'aria-label': 'Matching patients' } });
  const count = h('p', { class: 'lb-results__count', attrs: { 'aria-live': 'polite', 'data-testid': 'result-count' } });
  const errors = errorSummary();
  let results: PatientMatch[] = [];
  let active = -1;
  const latest = new LatestOnly<PatientMatch[]>();
  let timer: number | undefined;

  const draw = () => {
    input.setAttribute('aria-expanded', String(results.length > 0));
    if (active >= 0) input.setAttribute('aria-activedescendant', `${listId}-${active}`);
    else input.removeAttribute('aria-activedescendant');
    fill(
      list,
      results.map((p, i) =>
        h(
          'li',
          {
            class: `lb-result${i === active ? ' lb-result--active' : ''}`,
            attrs: { id: `${listId}-${i}`, role: 'option', 'aria-selected': String(i === active), 'data-testid': 'result' },
            on: { click: () => pick(i), mousemove: () => active !== i && ((active = i), draw()) },
          },
          h('span', { class: 'lb-result__name' }, displayName(p)),
          p.deceased ? tag('Deceased', 'grey') : null,
          h('span', { class: 'lb-result__meta' }, `Born ${formatBirthDate(p.birthDate)}${p.age !== null ? ` (${p.age})` : ''}`),
          h('span', { class: 'lb-result__meta' }, `NHS ${formatNhsNumber(p.nhsNumber)}`),
          h('span', { class: 'lb-result__meta' }, [p.addressLine, p.postcode].filter(Boolean).join(', ')),
        ),
      ),
    );
    list.children[active]?.scrollIntoView?.({ block: 'nearest' });
  };

  const pick = (i: number) => {
    const p = results[i];
    if (!p) return;
    ctx.setPatient(p);
    ctx.go(`patient/${encodeURIComponent(p.id)}`);
  };

  const search = () => {
    const q = input.value.trim();
    if (q.length < 2) {
      latest.cancel();
      results = [];
      active = -1;
      count.textContent = q ? 'Type at least 2 characters.' : '';
      draw();
      return;
    }
    void latest
      .run(
        () => api.searchPatients(q, 25),
        (r) => {
          errors.show(null);
          results = r;
          active = r.length ? 0 : -1;
          count.textContent = r.length === 0 ? 'No patients found.' : r.length === 1 ? '1 patient found. Press Enter to open.' : `${r.length} patients found. Use the arrow keys, then Enter.`;
          draw();
        },
      )
      // Shown in the live count line: an error must never take focus from the search box
      // while someone is typing (a half-typed NHS number is not yet valid).
      .catch((e) => {
        results = [];
        active = -1;
        count.textContent = AppError.from(e).message;
        draw();
      });
  };

  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(search, 120);
  });
  input.addEventListener('keydown', (e) => {
    const a = onListKey(e.key, { count: results.length, active });
    if (!a) return;
    e.preventDefault();
    if (a.type === 'move') {
      active = a.active;
      draw();
    } else if (a.type === 'pick') {
      // Enter straight after typing: run the search now rather than wait for the debounce.
      pick(a.index);
    } else {
      input.value = '';
      results = [];
      active = -1;
      count.textContent = '';
      draw();
    }
  });

  const el = h(
    'div',
    { attrs: { 'data-screen': 'reception' } },
    heading('Find a patient'),
    errors.el,
    h(
      'div',
      { class: 'nhsuk-form-group' },
      h('label', { class: 'nhsuk-label nhsuk-label--m', attrs: { for: 'patient-search' } }, 'Name, NHS number or date of birth'),
      h('div', { class: 'nhsuk-hint', attrs: { id: 'patient-search-hint' } }, 'For example: smith jo, 943 476 5919 or 07/03/1950. Arrow keys move, Enter opens.'),
      input,
    ),
    count,
    list,
    ctx.status()?.dataAsOf ? dataAsOf(ctx.status()!.dataAsOf) : null,
  );
  return { title: 'Reception', el, focus: input, dispose: () => window.clearTimeout(timer) };
}

/** The patient overview, with booking and appointment changes. Keys: b book, s summary, / new search. */
export async function patientScreen(ctx: Ctx, id: string): Promise<Screen> {
  let ov: PatientOverview = await api.patientOverview(id);
  const practitioners: Practitioner[] = await api.practitioners().catch(() => []);
  const area = h('div', { class: 'lb-action-area', attrs: { 'data-testid': 'action-area' } });
  const apptsBox = h('div');
  const title = heading(displayName(ov.patient), 1, true);
  title.setAttribute('data-testid', 'patient-name');
  const who = () => ({ ...ov.patient });

  const reload = async () => {
    ov = await api.patientOverview(id);
    drawAppointments();
  };

  const act = (action: BookAction) =>
    void confirmAndRun(ctx, area, action, who(), ov.patient.age, () => void reload(), () => {
      fill(area);
      title.focus();
    });

  const drawAppointments = () => {
    const rows = ov.appointments.map((a) => [
      formatDateTime(a.start),
      a.practitionerName ?? '',
      h('span', null, a.status, a.source === 'offline' || a.changedOffline ? [' ', tag('Offline change', 'orange')] : null),
      a.description ?? '',
      apptButtons(a),
    ]);
    fill(
      apptsBox,
      heading('Upcoming appointments', 2),
      rows.length ? table('Upcoming appointments', ['When', 'Clinician', 'Status', 'Details', 'Actions'], rows, { testid: 'appointments', captionHidden: true }) : h('p', { attrs: { 'data-testid': 'no-appointments' } }, 'No upcoming appointments.'),
    );
  };

  const apptButtons = (a: AppointmentView) => {
    if (a.status === 'cancelled') return '';
    return h(
      'div',
      { class: 'lb-row-actions' },
      button('Arrived', () => act({ kind: 'arrived', appointment: a }), { small: true, variant: 'secondary', testid: 'arrived' }),
      button('Did not attend', () => act({ kind: 'did_not_attend', appointment: a }), { small: true, variant: 'secondary', testid: 'dna' }),
      button('Move', () => void openSlots((slot) => act({ kind: 'move', appointment: a, slot }), 'Move to which slot?'), { small: true, variant: 'secondary', testid: 'move' }),
      button('Cancel', () => act({ kind: 'cancel', appointment: a }), { small: true, variant: 'secondary', testid: 'cancel' }),
    );
  };

  const openSlots = async (picked: (slot: import('../lib/api').SlotView) => void, prompt: string) => {
    const errors = errorSummary();
    const who = select('Clinician', [['', 'Any clinician'], ...practitioners.map((p) => [p.id, p.name] as [string, string])], { name: 'practitioner' });
    const listBox = h('div');
    const load = async () => {
      try {
        const slots = await api.freeSlots({ practitionerId: who.select.value || undefined, limit: 12 });
        const l = slotList(slots, picked);
        fill(listBox, l.el);
        return l.first;
      } catch (e) {
        errors.show(AppError.from(e));
        return null;
      }
    };
    who.select.addEventListener('change', () => void load());
    const offlineHint = ctx.status()?.mode === 'online' ? inset('Lifeboat is online: book in the clinical system. Booking here is for when it is down.') : null;
    fill(
      area,
      h(
        'section',
        {
          class: 'nhsuk-card',
          attrs: { 'aria-labelledby': 'slots-heading', 'data-testid': 'slot-picker' },
          on: { keydown: (e) => (e as KeyboardEvent).key === 'Escape' && (fill(area), title.focus()) },
        },
        h('div', { class: 'nhsuk-card__content' }, h('h2', { class: 'nhsuk-heading-m', attrs: { id: 'slots-heading' } }, prompt), offlineHint, errors.el, who.group, listBox, button('Close', () => (fill(area), title.focus()), { variant: 'secondary', small: true })),
      ),
    );
    const first = await load();
    await afterPaint();
    (first ?? who.select).focus();
  };

  const book = () => void openSlots((slot) => act({ kind: 'book', slot }), 'Book an appointment: choose a slot');
  const canSeeSummary = ctx.user.role !== 'receptionist';
  const onKey = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement;
    if (e.ctrlKey || e.altKey || e.metaKey || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
    if (e.key === 'b') {
      e.preventDefault();
      book();
    } else if (e.key === 's' && canSeeSummary) {
      e.preventDefault();
      ctx.go(`summary/${encodeURIComponent(id)}`);
    } else if (e.key === '/') {
      e.preventDefault();
      ctx.go('reception');
    }
  };
  document.addEventListener('keydown', onKey);

  const p = ov.patient;
  drawAppointments();
  const el = h(
    'div',
    { attrs: { 'data-screen': 'patient' } },
    h('a', { class: 'nhsuk-back-link', attrs: { href: '#/reception' } }, 'New search'),
    title,
    p.deceased ? warningCallout('Deceased', h('p', null, 'This patient is recorded as deceased.')) : null,
    ov.alerts.length
      ? warningCallout('Alerts', h('ul', { attrs: { 'data-testid': 'alerts' } }, ov.alerts.map((a) => h('li', null, a.text, a.detail ? ` – ${a.detail}` : ''))))
      : null,
    summaryList(
      [
        ['Date of birth', `${formatBirthDate(p.birthDate)}${p.age !== null ? ` (${p.age} years)` : ''}`],
        ['NHS number', formatNhsNumber(p.nhsNumber)],
        ['Address', [p.addressLine, p.postcode].filter(Boolean).join(', ') || 'not recorded'],
        ['Phone', ov.phone ?? 'not recorded'],
        ['Registered GP', p.gpName ?? 'not recorded'],
      ],
      { testid: 'demographics' },
    ),
    dataAsOf(ov.dataAsOf),
    h(
      'div',
      { class: 'nhsuk-button-group' },
      button('Book appointment (b)', book, { testid: 'book' }),
      canSeeSummary ? button('Clinical summary (s)', () => ctx.go(`summary/${encodeURIComponent(id)}`), { variant: 'secondary', testid: 'open-summary' }) : null,
    ),
    area,
    apptsBox,
  );
  return { title: displayName(p), el, focus: title, dispose: () => document.removeEventListener('keydown', onKey) };
}
