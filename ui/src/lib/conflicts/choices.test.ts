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
  it('shows each side as readable rows, and a missing side plainly', () => {
    expect(sideRows(conflict.ours)).toEqual([
      ['Patient', 'SMITH, Ann'],
      ['Start', 'Fri 19 Jul 2024 09:40'],
    ]);
    expect(sideRows(null)[0][1]).toMatch(/no longer exists/);
  });
});
