// Changing the appointment book: the slot picker and the confirmation every change goes
// through (patient name, date of birth and NHS number, then what will happen).

import { api, AppError, type AppointmentView, type Confirmation, type SlotView } from '../lib/api';
import { confirmContent, slotText, type BookAction } from '../lib/booking/confirm';
import { h, fill, afterPaint } from '../lib/dom';
import { button, errorSummary, panel, summaryList, textField } from '../lib/nhs';
import type { NamedPatient } from '../lib/patient/format';
import type { Ctx } from './types';

/** A list of free slots: arrow keys move, Enter (or a click) picks. The first slot gets focus. */
export function slotList(slots: SlotView[], pick: (s: SlotView) => void): { el: HTMLElement; first: HTMLElement | null } {
  if (slots.length === 0) return { el: h('p', { attrs: { 'data-testid': 'no-slots' } }, 'No free slots found.'), first: null };
  const buttons = slots.map((s, i) =>
    h(
      'button',
      {
        class: 'lb-slot',
        attrs: { type: 'button', 'data-testid': 'slot', 'data-slot-id': s.id, 'data-start': s.start },
        on: {
          click: () => pick(s),
          keydown: (e) => {
            const k = (e as KeyboardEvent).key;
            const next = k === 'ArrowDown' ? i + 1 : k === 'ArrowUp' ? i - 1 : null;
            if (next !== null && next >= 0 && next < buttons.length) {
              e.preventDefault();
              buttons[next].focus();
            }
          },
        },
      },
      h('span', { class: 'lb-slot__time' }, slotText(s)),
      s.serviceType ? h('span', { class: 'lb-slot__type' }, s.serviceType) : null,
    ),
  );
  return { el: h('ul', { class: 'nhsuk-list lb-slots', attrs: { 'aria-label': 'Free slots' } }, buttons.map((b) => h('li', null, b))), first: buttons[0] };
}

/**
 * Shows the confirmation for `action` in `area`, runs it on confirm, then shows what happened.
 * Escape or "Go back" leaves everything as it was.
 */
export async function confirmAndRun(
  ctx: Ctx,
  area: HTMLElement,
  action: BookAction,
  patient: NamedPatient,
  age: number | null,
  after: (c: Confirmation) => void,
  back: () => void,
): Promise<void> {
  const c = confirmContent(action, patient, age);
  const errors = errorSummary();
  const reason = c.needsReason ? textField('Reason for cancelling', { name: 'reason', hint: 'For example, patient rang to cancel.', width: 30 }) : null;
  let busy = false;
  const confirm = button(
    c.confirmLabel,
    async () => {
      if (busy) return;
      if (reason && !reason.input.value.trim()) {
        reason.setError('Enter a reason for cancelling');
        return;
      }
      busy = true;
      confirm.disabled = true;
      try {
        const done = await run(action, patient, reason?.input.value.trim() ?? '');
        showDone(ctx, area, c.heading, c.rows, done);
        after(done);
      } catch (e) {
        errors.show(AppError.from(e));
        confirm.disabled = false;
      } finally {
        busy = false;
      }
    },
    { testid: 'confirm' },
  );
  const box = h(
    'section',
    {
      class: 'nhsuk-card lb-confirm',
      attrs: { 'aria-labelledby': 'confirm-heading', 'data-testid': 'confirmation' },
      on: {
        keydown: (e) => {
          if ((e as KeyboardEvent).key === 'Escape') {
            e.preventDefault();
            back();
          }
        },
      },
    },
    h(
      'div',
      { class: 'nhsuk-card__content' },
      h('h2', { class: 'nhsuk-heading-m', attrs: { id: 'confirm-heading' } }, c.heading),
      errors.el,
      summaryList(c.rows, { testid: 'confirm-details' }),
      reason?.group,
      h('div', { class: 'nhsuk-button-group' }, confirm, button('Go back', back, { variant: 'secondary' })),
    ),
  );
  fill(area, box);
  await afterPaint();
  (reason?.input ?? confirm).focus();
}

function run(action: BookAction, patient: NamedPatient & { id?: string }, reason: string): Promise<Confirmation> {
  switch (action.kind) {
    case 'book':
      return api.book(action.slot.id, patient.id as string);
    case 'move':
      return api.moveAppointment(action.appointment.id, action.slot.id);
    case 'cancel':
      return api.cancelAppointment(action.appointment.id, reason);
    case 'arrived':
    case 'did_not_attend':
      return api.markAttendance(action.appointment.id, action.kind);
  }
}

function showDone(ctx: Ctx, area: HTMLElement, heading: string, rows: [string, string][], c: Confirmation): void {
  const title = heading.replace(/\?$/, '').replace(/^Book this appointment$/, 'Appointment booked').replace(/^Move this appointment$/, 'Appointment moved').replace(/^Cancel this appointment$/, 'Appointment cancelled').replace(/^Mark as /, 'Marked as ');
  const held = c.journal.state === 'pending';
  const p = panel(
    title,
    summaryList(rows, { noBorder: true }),
    h('p', null, held ? 'Held locally on this computer: it will be sent to the clinical system when it is back.' : `State: ${c.journal.state}.`),
  );
  p.setAttribute('data-testid', 'done');
  p.setAttribute('role', 'status');
  fill(area, p);
  void ctx.refreshStatus();
  void afterPaint().then(() => p.focus());
}

/** The patient identifiers for an appointment's patient. */
export function patientOf(a: AppointmentView): (NamedPatient & { id: string }) | null {
  return a.patient ? { ...a.patient } : null;
}
