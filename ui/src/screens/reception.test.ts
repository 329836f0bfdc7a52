// The reception screen against mocked IPC: search as you type, keyboard navigation, and
// upstream text always shown as text.

import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PatientMatch, StatusView } from '../lib/api';
import { receptionScreen } from './reception';
import type { Ctx } from './types';

const patient = (over: Partial<PatientMatch>): PatientMatch => ({
  id: 'p1',
  title: 'Mr',
  family: 'Smith',
  given: 'John',
  birthDate: '1958-03-12',
  age: 66,
  nhsNumber: '9991768378',
  addressLine: '1 High Street',
  postcode: 'B32 2AJ',
  gpName: 'Dr Rory Robertson',
  deceased: false,
  ...over,
});

function ctx(go = vi.fn(), setPatient = vi.fn()): Ctx {
  return {
    user: { username: 'rita', displayName: 'Rita', role: 'receptionist', workstation: 'desk-1' },
    status: () => ({ dataAsOf: 'data as of Fri 19 Jul 2024 09:40 (5 min ago)' }) as StatusView,
    go,
    refreshStatus: async () => {},
    onStatus: () => {},
    onProgress: () => {},
    patient: null,
    setPatient,
  };
}

async function type(input: HTMLInputElement, text: string) {
  input.value = text;
  input.dispatchEvent(new Event('input'));
  await vi.advanceTimersByTimeAsync(200);
}

function key(el: HTMLElement, k: string) {
  el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true }));
}

describe('reception search', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    clearMocks();
    vi.useRealTimers();
    document.body.replaceChildren();
  });

  it('searches as you type, arrows move the highlight, Enter opens the patient', async () => {
    const queries: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === 'search_patients') {
        queries.push(args);
        return [patient({ id: 'p1', given: 'John' }), patient({ id: 'p2', given: 'Margaret', title: 'Mrs' })];
      }
    });
    const go = vi.fn();
    const setPatient = vi.fn();
    const s = receptionScreen(ctx(go, setPatient));
    document.body.append(s.el);
    const input = s.focus as HTMLInputElement;
    await type(input, 'smith 1958');
    expect(queries).toEqual([{ query: 'smith 1958', limit: 25 }]);
    await vi.waitFor(() => expect(s.el.querySelectorAll('[role="option"]')).toHaveLength(2));
    const rows = s.el.querySelectorAll('[role="option"]');
    expect(rows[0].getAttribute('aria-selected')).toBe('true');
    expect(s.el.querySelector('[data-testid="result-count"]')?.textContent).toBe('2 patients found. Use the arrow keys, then Enter.');
    key(input, 'ArrowDown');
    expect(input.getAttribute('aria-activedescendant')).toBe(s.el.querySelectorAll('[role="option"]')[1].id);
    key(input, 'Enter');
    expect(setPatient).toHaveBeenCalledWith(expect.objectContaining({ id: 'p2' }));
    expect(go).toHaveBeenCalledWith('patient/p2');
  });

  it('shows upstream text with markup as text, never as HTML', async () => {
    mockIPC((cmd) => (cmd === 'search_patients' ? [patient({ family: '<script>alert(1)</script>', given: '<img src=x onerror=alert(2)>', addressLine: '<b>1</b> Road' })] : undefined));
    const s = receptionScreen(ctx());
    document.body.append(s.el);
    await type(s.focus as HTMLInputElement, 'script');
    await vi.waitFor(() => expect(s.el.querySelector('.lb-result__name')).not.toBeNull());
    expect(s.el.querySelector('script, img, b')).toBeNull();
    const name = s.el.querySelector('.lb-result__name')?.textContent;
    expect(name).toBe('<SCRIPT>ALERT(1)</SCRIPT>, <img src=x onerror=alert(2)> (Mr)');
    expect(s.el.textContent).toContain('<b>1</b> Road');
  });

  it('shows a search error in the live line and keeps focus in the box', async () => {
    mockIPC((cmd) => {
      if (cmd === 'search_patients') throw { code: 'validation', message: 'that is not a valid NHS number' };
    });
    const s = receptionScreen(ctx());
    document.body.append(s.el);
    const input = s.focus as HTMLInputElement;
    input.focus();
    await type(input, '99917683');
    await vi.waitFor(() => expect(s.el.querySelector('[data-testid="result-count"]')?.textContent).not.toBe(''));
    expect(s.el.querySelector('[data-testid="result-count"]')?.textContent).toBe('that is not a valid NHS number');
    expect(document.activeElement).toBe(input);
  });
});
