// The clinician's summary: alerts and allergies first and prominent, then medications,
// problems, recent results, immunisations and encounters; the data's age; offline notes.

import { api, AppError, type ClinicalSummary, type SummaryLine } from '../lib/api';
import { h, fill } from '../lib/dom';
import { button, dataAsOf, errorSummary, heading, inset, summaryList, tag, textArea, warningCallout } from '../lib/nhs';
import { displayName, formatNhsNumber } from '../lib/patient/format';
import { formatBirthDate, formatDate, formatDateTime } from '../lib/time/format';
import type { Ctx, Screen } from './types';

function lines(items: SummaryLine[], empty: string, testid: string): HTMLElement {
  if (!items.length) return h('p', { class: 'lb-empty', attrs: { 'data-testid': testid } }, empty);
  return h(
    'ul',
    { class: 'lb-lines', attrs: { 'data-testid': testid } },
    items.map((l) =>
      h(
        'li',
        null,
        h('strong', null, l.text),
        l.detail ? ` – ${l.detail}` : '',
        l.status ? [' ', tag(l.status, 'grey')] : null,
        l.date ? h('span', { class: 'lb-lines__date' }, ` ${/T/.test(l.date) ? formatDateTime(l.date) : formatDate(l.date)}`) : null,
      ),
    ),
  );
}

export async function summaryScreen(ctx: Ctx, id: string): Promise<Screen> {
  let s: ClinicalSummary = await api.patientSummary(id);
  const p = s.patient;
  const notesBox = h('div');
  const errors = errorSummary();
  const note = textArea('Offline note', { name: 'note', rows: 6, hint: 'Offline, not yet in the clinical record. It goes on the back-entry worklist so it is entered later.' });
  const saved = h('div', { attrs: { role: 'status' } });
  const mode = ctx.status()?.mode;
  const canWrite = mode === 'offline' || mode === 'recovering';

  const drawNotes = () =>
    fill(
      notesBox,
      heading('Offline notes', 2),
      s.offlineNotes.length
        ? h(
            'ul',
            { class: 'lb-notes', attrs: { 'data-testid': 'offline-notes' } },
            s.offlineNotes.map((n) =>
              h('li', { class: 'nhsuk-card lb-note' }, h('div', { class: 'nhsuk-card__content' }, tag('Offline – not yet in the clinical record', 'orange'), h('p', { class: 'lb-note__meta' }, `${formatDateTime(n.writtenAt)}, ${n.author}`), h('p', { class: 'lb-note__text' }, n.text))),
            ),
          )
        : h('p', null, 'No offline notes for this patient.'),
    );
  drawNotes();

  const save = async () => {
    const text = note.area.value.trim();
    if (!text) return errors.show('Write the note before saving it.');
    try {
      await api.writeNote(id, text);
      note.area.value = '';
      errors.show(null);
      s = await api.patientSummary(id);
      drawNotes();
      saved.textContent = 'Note saved on this computer (offline, not yet in the clinical record).';
      void ctx.refreshStatus();
    } catch (e) {
      // The text stays in the box: nothing is lost on a mistake.
      errors.show(AppError.from(e));
    }
  };

  const title = heading(`Clinical summary: ${displayName(p)}`, 1, true);
  const el = h(
    'div',
    { attrs: { 'data-screen': 'summary' } },
    h('a', { class: 'nhsuk-back-link', attrs: { href: `#/patient/${encodeURIComponent(id)}` } }, 'Back to patient'),
    title,
    summaryList(
      [
        ['Date of birth', `${formatBirthDate(p.birthDate)}${p.age !== null ? ` (${p.age} years)` : ''}`],
        ['NHS number', formatNhsNumber(p.nhsNumber)],
      ],
      { noBorder: true },
    ),
    dataAsOf(s.dataAsOf),
    h('div', { class: 'lb-prominent' }, warningCallout('Alerts', lines(s.alerts, 'No alerts recorded.', 'summary-alerts')), warningCallout('Allergies', lines(s.allergies, 'No allergies recorded in the cached record.', 'summary-allergies'))),
    heading('Medications', 2),
    lines(s.medications, 'No current medications recorded.', 'summary-medications'),
    heading('Problems', 2),
    lines(s.problems, 'No active problems recorded.', 'summary-problems'),
    heading('Recent results', 2),
    lines(s.results, 'No recent results.', 'summary-results'),
    heading('Immunisations', 2),
    lines(s.immunisations, 'No immunisations recorded.', 'summary-immunisations'),
    heading('Recent encounters', 2),
    lines(s.encounters, 'No recent encounters.', 'summary-encounters'),
    notesBox,
    heading('Write an offline note', 2),
    canWrite ? null : inset('Notes can be written here only while the clinical system is down. While it is up, write in the clinical system.'),
    errors.el,
    h('form', { attrs: { novalidate: true }, on: { submit: (e) => (e.preventDefault(), void save()) } }, note.group, button('Save offline note', () => {}, { type: 'submit', testid: 'save-note' })),
    saved,
  );
  return { title: `Summary ${displayName(p)}`, el, focus: title };
}
