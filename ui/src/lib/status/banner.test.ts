import { describe, expect, it } from 'vitest';
import type { StatusView } from '../api';
import { bannerContent } from './banner';

const base: StatusView = {
  mode: 'online',
  declared: false,
  drill: false,
  dataAsOf: 'data as of Fri 19 Jul 2024 09:40 (5 min ago)',
  dataAgeSeconds: 300,
  unsettledChanges: 0,
  lastSyncError: null,
  upstream: 'http://127.0.0.1:1/fhir',
};

describe('mode banner', () => {
  it('online shows the last sync age', () => {
    const b = bannerContent(base, 'receptionist');
    expect(b.title).toBe('Online');
    expect(b.lines[0]).toBe('Clinical system reachable. Last sync: data as of Fri 19 Jul 2024 09:40 (5 min ago).');
    expect(b.drill).toBeNull();
  });
  it('offline says OFFLINE, the data age and the changes held', () => {
    const b = bannerContent({ ...base, mode: 'offline', unsettledChanges: 3 }, 'receptionist');
    expect(b.tone).toBe('offline');
    expect(b.title).toBe('OFFLINE');
    expect(b.lines).toEqual([
      'The clinical system cannot be reached.',
      'Data as of Fri 19 Jul 2024 09:40 (5 min ago). 3 changes held locally.',
    ]);
    expect(bannerContent({ ...base, mode: 'offline', unsettledChanges: 1, declared: true }, null).lines).toEqual([
      'A manager has declared an outage of the clinical system.',
      'Data as of Fri 19 Jul 2024 09:40 (5 min ago). 1 change held locally.',
    ]);
  });
  it('recovering offers managers "reconcile now", and only managers', () => {
    const s = { ...base, mode: 'recovering' as const, unsettledChanges: 2 };
    expect(bannerContent(s, 'manager').action).toBe('reconcile');
    expect(bannerContent(s, 'receptionist').action).toBeNull();
    expect(bannerContent(s, 'receptionist').lines[1]).toBe('A manager needs to reconcile them.');
  });
  it('reconciling shows progress', () => {
    const b = bannerContent({ ...base, mode: 'reconciling' }, 'manager', { index: 3, steps: 10 });
    expect(b.title).toBe('Reconciling');
    expect(b.progress).toBe('3 of 10 changes sent');
  });
  it('a drill is clearly marked as practice, whatever the mode', () => {
    const b = bannerContent({ ...base, mode: 'offline', drill: true }, 'manager');
    expect(b.drill).toMatch(/^PRACTICE — NOT REAL/);
  });
});
