import { describe, expect, it } from 'vitest';
import type { AppointmentView, SlotView } from '../api';
import { confirmContent } from './confirm';

const patient = { title: 'Mr', family: 'Patel', given: 'Ravi', birthDate: '1961-11-02', nhsNumber: '9434765870' };
const slot: SlotView = {
  id: 's1',
  practitionerId: 'p1',
  practitionerName: 'Dr A Khan',
  locationName: 'Room 2',
  start: '2024-07-19T08:40:00Z',
  end: '2024-07-19T08:50:00Z',
  serviceType: null,
  available: true,
};
const appt: AppointmentView = {
  id: 'a1',
  source: 'upstream',
  status: 'booked',
  changedOffline: false,
  slotId: 's0',
  patient: null,
  practitionerName: 'Dr A Khan',
  start: '2024-12-02T09:00:00Z',
  end: '2024-12-02T09:10:00Z',
  description: null,
};

describe('booking confirmations', () => {
  it('a booking shows name, date of birth, NHS number 3-3-4 and the slot in London time', () => {
    const c = confirmContent({ kind: 'book', slot }, patient, 62);
    expect(c.heading).toBe('Book this appointment?');
    expect(c.rows).toEqual([
      ['Name', 'PATEL, Ravi (Mr)'],
      ['Date of birth', '2 Nov 1961 (62 years)'],
      ['NHS number', '943 476 5870'],
      ['Appointment', 'Fri 19 Jul 2024 09:40–09:50 with Dr A Khan, Room 2'],
    ]);
    expect(c.needsReason).toBe(false);
  });
  it('a move shows both times; a winter appointment is in GMT', () => {
    const c = confirmContent({ kind: 'move', appointment: appt, slot }, patient);
    expect(c.rows[3]).toEqual(['From', 'Mon 2 Dec 2024 09:00–09:10 with Dr A Khan']);
    expect(c.rows[4][0]).toBe('To');
  });
  it('a cancellation asks for a reason', () => {
    expect(confirmContent({ kind: 'cancel', appointment: appt }, patient).needsReason).toBe(true);
  });
  it('attendance marks name what they do', () => {
    expect(confirmContent({ kind: 'arrived', appointment: appt }, patient).confirmLabel).toBe('Confirm arrived');
    expect(confirmContent({ kind: 'did_not_attend', appointment: appt }, patient).confirmLabel).toBe(
      'Confirm did not attend',
    );
  });
});
