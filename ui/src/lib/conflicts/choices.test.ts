import { describe, expect, it } from 'vitest';
import type { ConflictView } from '../api';
import { choicesFor, resolutionProblem, sideRows } from './choices';

const conflict: ConflictView = {
  journalId: 'j1',
  kind: 'slot_no_longer_free',
  summary: 'The slot was booked in the clinical system meanwhile',
  ours: { patient: 'SMITH, Ann', start: '2024-07-19T08:40:00Z' },
  upstream: null,
  choices: ['rebook', 'keep_upstream', 'manual'],
  nearestSlots: [],
  names: {},
};

describe('conflict choices', () => {
  it('offers exactly the choices the core gives, in order, with labels', () => {
    expect(choicesFor(conflict).map((c) => c.label)).toEqual([
      'Re-book into another slot',
      'Keep what the clinical system has',
      'Enter it by hand',
    ]);
  });
  it('requires a slot to re-book and a reason to keep upstream', () => {
    expect(resolutionProblem(null, null, '')).toMatch(/Choose what to do/);
    expect(resolutionProblem('rebook', null, '')).toMatch(/Choose a slot/);
    expect(resolutionProblem('rebook', 's1', '')).toBeNull();
    expect(resolutionProblem('keep_upstream', null, '  ')).toMatch(/reason/);
    expect(resolutionProblem('keep_upstream', null, 'patient rang')).toBeNull();
  });
  it('lines up our change and the upstream resource, in London time, without ids', () => {
    const ours = { patient_id: 'p1', practitioner_id: 'd1', slot_id: 's1', slot_version: '1', start: '2024-07-19T08:40:00Z', end: '2024-07-19T08:50:00Z', kind: 'book' };
    const theirs = {
      resourceType: 'Appointment',
      id: 'a9',
      meta: { versionId: 'x' },
      status: 'booked',
      start: '2024-07-19T08:40:00Z',
      end: '2024-07-19T08:50:00Z',
      participant: [{ actor: { reference: 'Patient/p2' } }, { actor: { reference: 'Practitioner/d1', display: 'Dr A Khan' } }],
    };
    const names = { 'Patient/p1': 'SMITH, John (born 12 Mar 1958, NHS 999 176 8378)', 'Practitioner/d1': 'Dr Ann Khan' };
    expect(sideRows(ours, names)).toEqual([
      ['Start', 'Fri 19 Jul 2024 09:40'],
      ['End', 'Fri 19 Jul 2024 09:50'],
      ['Patient', 'SMITH, John (born 12 Mar 1958, NHS 999 176 8378)'],
      ['Clinician', 'Dr Ann Khan'],
      ['Kind', 'book'],
    ]);
    // Without a name from the cache, the reference (or the upstream's display) is shown.
    expect(sideRows(ours)).toContainEqual(['Patient', 'Patient/p1']);
    expect(sideRows(theirs, names)).toEqual([
      ['Status', 'booked'],
      ['Start', 'Fri 19 Jul 2024 09:40'],
      ['End', 'Fri 19 Jul 2024 09:50'],
      ['Patient', 'Patient/p2'],
      ['Clinician', 'Dr Ann Khan'],
    ]);
    expect(sideRows(null)[0][1]).toMatch(/no longer exists/);
  });
});
