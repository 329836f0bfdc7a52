// The appointment book: one day per clinician (date picker, previous/next day), and the
// free-slot finder. Changes go through the same confirmation as at reception.

import { api, AppError, type AppointmentView, type DayBook, type Practitioner, type SlotView } from '../lib/api';
import { slotText, type BookAction } from '../lib/booking/confirm';
import { h, fill, afterPaint } from '../lib/dom';
import { button, dataAsOf, errorSummary, heading, inset, select, table, tag, textField } from '../lib/nhs';
import { displayName, formatNhsNumber } from '../lib/patient/format';
import { addDays, formatDate, formatTime, londonToday } from '../lib/time/format';
import { confirmAndRun, patientOf, slotList } from './actions';
import type { Ctx, Screen } from './types';

export async function dayBookScreen(ctx: Ctx, date?: string, practitionerId?: string): Promise<Screen> {
  const day = date && /^\d{4}-\d{2}-\d{2}$/.test(date) ? date : londonToday();
  const practitioners: Practitioner[] = await api.practitioners();
  const who = practitionerId ?? practitioners[0]?.id ?? '';
  const errors = errorSummary();
  const area = h('div', { class: 'lb-action-area' });
  const go = (d: string, p: string) => ctx.go(`book/${d}/${encodeURIComponent(p)}`);

  const dateField = textField('Date', { name: 'date', type: 'date', value: day, width: 10 });
  dateField.input.addEventListener('change', () => dateField.input.value && go(dateField.input.value, clinician.select.value));
  const clinician = select('Clinician', [['', 'All clinicians'], ...practitioners.map((p) => [p.id, p.name] as [string, string])], { name: 'practitioner', value: who });
  clinician.select.addEventListener('change', () => go(day, clinician.select.value));

  const tableBox = h('div');
  const asOf = h('div');
  const back = () => fill(area);

  const act = (action: BookAction, a: AppointmentView | null) => {
    const patient = a ? patientOf(a) : ctx.patient;
    if (!patient) return;
    const age = a ? null : (ctx.patient?.age ?? null);
    // After a change the table is redrawn in place, so the confirmation stays on screen.
    void confirmAndRun(ctx, area, action, patient, age, () => void drawTable(), back);
  };

  const moveTo = async (a: AppointmentView) => {
    const slots = await api.freeSlots({ limit: 12 }).catch((e) => (errors.show(AppError.from(e)), [] as SlotView[]));
    const l = slotList(slots, (slot) => act({ kind: 'move', appointment: a, slot }, a));
    fill(area, h('section', { class: 'nhsuk-card' }, h('div', { class: 'nhsuk-card__content' }, h('h2', { class: 'nhsuk-heading-m' }, 'Move to which slot?'), l.el, button('Close', back, { variant: 'secondary', small: true }))));
    await afterPaint();
    l.first?.focus();
  };

  const drawTable = async () => {
    let book: DayBook;
    try {
      book = await api.dayBook(day, who || undefined);
    } catch (e) {
      errors.show(AppError.from(e));
      return;
    }
    fill(asOf, dataAsOf(book.dataAsOf));
    const rows = book.lines.map((line) => {
      const a = line.appointment;
      const p = a?.patient;
      return [
        `${formatTime(line.slot.start)}–${formatTime(line.slot.end)}`,
        line.slot.practitionerName ?? '',
        p ? h('span', null, h('strong', null, displayName(p)), h('br'), `NHS ${formatNhsNumber(p.nhsNumber)}`) : a ? 'Booked' : 'Free',
        a ? h('span', null, a.status, a.source === 'offline' || a.changedOffline ? [' ', tag('Offline change', 'orange')] : null) : tag('Free', 'green'),
        a && a.status !== 'cancelled'
          ? h(
              'div',
              { class: 'lb-row-actions' },
              button('Arrived', () => act({ kind: 'arrived', appointment: a }, a), { small: true, variant: 'secondary' }),
              button('Did not attend', () => act({ kind: 'did_not_attend', appointment: a }, a), { small: true, variant: 'secondary' }),
              button('Move', () => void moveTo(a), { small: true, variant: 'secondary' }),
              button('Cancel', () => act({ kind: 'cancel', appointment: a }, a), { small: true, variant: 'secondary' }),
            )
          : !a && line.slot.available && ctx.patient
            ? button(`Book ${displayName(ctx.patient)}`, () => act({ kind: 'book', slot: line.slot }, null), { small: true })
            : '',
      ];
    });
    fill(tableBox, rows.length ? table(`Appointments on ${formatDate(day)}`, ['Time', 'Clinician', 'Patient', 'Status', 'Actions'], rows, { testid: 'day-book' }) : h('p', null, 'No sessions on this day.'));
  };
  await drawTable();

  const el = h(
    'div',
    { attrs: { 'data-screen': 'day-book' } },
    heading(`Appointment book: ${formatDate(day)}`, 1, true),
    errors.el,
    h(
      'div',
      { class: 'lb-toolbar' },
      dateField.group,
      clinician.group,
      h('div', { class: 'nhsuk-button-group' }, button('Previous day', () => go(addDays(day, -1), who), { variant: 'secondary', testid: 'prev-day' }), button('Today', () => go(londonToday(), who), { variant: 'secondary' }), button('Next day', () => go(addDays(day, 1), who), { variant: 'secondary', testid: 'next-day' })),
    ),
    ctx.patient ? inset(`Booking for ${displayName(ctx.patient)}, NHS ${formatNhsNumber(ctx.patient.nhsNumber)}. Free slots show a Book button.`) : inset('Pick a patient at Reception to book them into a free slot here.'),
    asOf,
    area,
    tableBox,
  );
  return { title: `Appointment book ${formatDate(day)}`, el, focus: el.querySelector('h1') as HTMLElement };
}

export async function freeSlotsScreen(ctx: Ctx): Promise<Screen> {
  const practitioners = await api.practitioners();
  const errors = errorSummary();
  const clinician = select('Clinician', [['', 'Any clinician'], ...practitioners.map((p) => [p.id, p.name] as [string, string])], { name: 'practitioner' });
  const from = textField('From', { name: 'from', type: 'date', value: londonToday(), width: 10 });
  const days = textField('Days to search', { name: 'days', type: 'number', value: '14', width: 3, hint: 'Up to 14 days at a time.' });
  const results = h('div', { attrs: { 'aria-live': 'polite' } });
  const area = h('div', { class: 'lb-action-area' });
  const find = async () => {
    errors.show(null);
    try {
      const slots = await api.freeSlots({
        practitionerId: clinician.select.value || undefined,
        from: from.input.value || undefined,
        days: Math.min(14, Math.max(1, Number(days.input.value) || 14)),
        limit: 50,
      });
      const patient = ctx.patient;
      const l = slotList(slots, (slot) => {
        if (!patient) return;
        void confirmAndRun(ctx, area, { kind: 'book', slot }, patient, patient.age, () => void find(), () => fill(area));
      });
      fill(results, h('p', null, `${slots.length} free slot${slots.length === 1 ? '' : 's'}. ${patient ? `Enter books ${displayName(patient)}.` : ''}`), l.el);
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const el = h(
    'div',
    { attrs: { 'data-screen': 'free-slots' } },
    heading('Find a free slot'),
    errors.el,
    ctx.patient ? inset(`Booking for ${displayName(ctx.patient)}, NHS ${formatNhsNumber(ctx.patient.nhsNumber)}.`) : inset('Pick a patient at Reception first to book; you can still look for slots.'),
    h('form', { class: 'lb-toolbar', attrs: { novalidate: true }, on: { submit: (e) => (e.preventDefault(), void find()) } }, clinician.group, from.group, days.group, button('Find slots', () => {}, { type: 'submit' })),
    area,
    results,
  );
  void find();
  return { title: 'Free slots', el, focus: clinician.select };
}

export { slotText };
