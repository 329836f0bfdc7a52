// What a receptionist is asked to confirm before any change to the appointment book:
// always the patient's name, date of birth and NHS number, then what will happen.

import type { AppointmentView, SlotView } from '../api';
import { identifiers, type NamedPatient } from '../patient/format';
import { formatDateTime, formatTime } from '../time/format';

export type BookAction =
  | { kind: 'book'; slot: SlotView }
  | { kind: 'move'; appointment: AppointmentView; slot: SlotView }
  | { kind: 'cancel'; appointment: AppointmentView }
  | { kind: 'arrived'; appointment: AppointmentView }
  | { kind: 'did_not_attend'; appointment: AppointmentView };

export interface ConfirmContent {
  heading: string;
  rows: [string, string][];
  confirmLabel: string;
  /** Cancelling asks why; the reason goes to the clinical system. */
  needsReason: boolean;
}

export function slotText(slot: Pick<SlotView, 'start' | 'end' | 'practitionerName' | 'locationName'>): string {
  const who = slot.practitionerName ? ` with ${slot.practitionerName}` : '';
  const where = slot.locationName ? `, ${slot.locationName}` : '';
  return `${formatDateTime(slot.start)}–${formatTime(slot.end)}${who}${where}`;
}

function appointmentText(a: AppointmentView): string {
  return slotText({ start: a.start, end: a.end, practitionerName: a.practitionerName, locationName: null });
}

export function confirmContent(action: BookAction, patient: NamedPatient, age?: number | null): ConfirmContent {
  const who = identifiers(patient, age);
  switch (action.kind) {
    case 'book':
      return {
        heading: 'Book this appointment?',
        rows: [...who, ['Appointment', slotText(action.slot)]],
        confirmLabel: 'Confirm booking',
        needsReason: false,
      };
    case 'move':
      return {
        heading: 'Move this appointment?',
        rows: [...who, ['From', appointmentText(action.appointment)], ['To', slotText(action.slot)]],
        confirmLabel: 'Confirm move',
        needsReason: false,
      };
    case 'cancel':
      return {
        heading: 'Cancel this appointment?',
        rows: [...who, ['Appointment', appointmentText(action.appointment)]],
        confirmLabel: 'Confirm cancellation',
        needsReason: true,
      };
    case 'arrived':
      return {
        heading: 'Mark as arrived?',
        rows: [...who, ['Appointment', appointmentText(action.appointment)]],
        confirmLabel: 'Confirm arrived',
        needsReason: false,
      };
    case 'did_not_attend':
      return {
        heading: 'Mark as did not attend?',
        rows: [...who, ['Appointment', appointmentText(action.appointment)]],
        confirmLabel: 'Confirm did not attend',
        needsReason: false,
      };
  }
}
