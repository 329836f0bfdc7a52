import { describe, expect, it } from 'vitest';
import { LatestOnly, onListKey } from './keyboard';

describe('results keyboard navigation', () => {
  it('moves down and up within the list', () => {
    expect(onListKey('ArrowDown', { count: 3, active: -1 })).toEqual({ type: 'move', active: 0 });
    expect(onListKey('ArrowDown', { count: 3, active: 2 })).toEqual({ type: 'move', active: 2 });
    expect(onListKey('ArrowUp', { count: 3, active: 0 })).toEqual({ type: 'move', active: 0 });
    expect(onListKey('End', { count: 3, active: 0 })).toEqual({ type: 'move', active: 2 });
  });
  it('Enter picks the highlighted row, or the first if none is', () => {
    expect(onListKey('Enter', { count: 3, active: 1 })).toEqual({ type: 'pick', index: 1 });
    expect(onListKey('Enter', { count: 3, active: -1 })).toEqual({ type: 'pick', index: 0 });
    expect(onListKey('Enter', { count: 0, active: -1 })).toBeNull();
  });
  it('Escape clears; other keys do nothing', () => {
    expect(onListKey('Escape', { count: 3, active: 1 })).toEqual({ type: 'clear' });
    expect(onListKey('a', { count: 3, active: 1 })).toBeNull();
  });
  it('shows only the latest answer when answers arrive out of order', async () => {
    const latest = new LatestOnly<string>();
    const shown: string[] = [];
    let releaseSlow!: () => void;
    const slow = latest.run(() => new Promise<string>((r) => (releaseSlow = () => r('sm'))), (v) => shown.push(v));
    await latest.run(async () => 'smith', (v) => shown.push(v));
    releaseSlow();
    await slow;
    expect(shown).toEqual(['smith']);
  });
});
