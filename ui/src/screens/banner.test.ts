// The mode banner as rendered: an aria-live region whose text and style follow the mode.

import { describe, expect, it, vi } from 'vitest';
import type { StatusView } from '../lib/api';
import { renderBanner } from './banner';

const online: StatusView = {
  mode: 'online',
  declared: false,
  drill: false,
  dataAsOf: 'data as of Fri 19 Jul 2024 09:40 (5 min ago)',
  dataAgeSeconds: 300,
  unsettledChanges: 0,
  lastSyncError: null,
  upstream: null,
};

describe('mode banner rendering', () => {
  it('renders OFFLINE in the warning style with the changes held', () => {
    const region = document.createElement('div');
    renderBanner(region, { ...online, mode: 'offline', unsettledChanges: 2 }, 'receptionist', null, () => {});
    expect(region.querySelector('.lb-banner--offline')).not.toBeNull();
    expect(region.querySelector('[data-testid="mode-title"]')?.textContent).toBe('OFFLINE');
    expect(region.textContent).toContain('2 changes held locally.');
  });

  it('offers managers "Reconcile now" while Recovering, and it works', () => {
    const region = document.createElement('div');
    const reconcile = vi.fn();
    renderBanner(region, { ...online, mode: 'recovering', unsettledChanges: 1 }, 'manager', null, reconcile);
    const button = region.querySelector('button');
    expect(button?.textContent).toBe('Reconcile now');
    button?.click();
    expect(reconcile).toHaveBeenCalled();
    renderBanner(region, { ...online, mode: 'recovering', unsettledChanges: 1 }, 'clinician', null, reconcile);
    expect(region.querySelector('button')).toBeNull();
  });

  it('marks a drill PRACTICE — NOT REAL above the mode', () => {
    const region = document.createElement('div');
    renderBanner(region, { ...online, mode: 'offline', drill: true }, 'manager', null, () => {});
    expect(region.firstElementChild?.getAttribute('data-testid')).toBe('drill-banner');
    expect(region.firstElementChild?.textContent).toMatch(/^PRACTICE — NOT REAL/);
  });
});
