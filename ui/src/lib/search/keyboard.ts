// Keyboard movement through a list of results, as a receptionist uses it: type, arrow
// keys to move, Enter to pick, Escape to clear. Pure, so it is tested without a DOM.

export interface ListState {
  count: number;
  /** The highlighted row, or -1 for none (focus still in the search box). */
  active: number;
}

export type ListAction = { type: 'move'; active: number } | { type: 'pick'; index: number } | { type: 'clear' } | null;

export function onListKey(key: string, s: ListState): ListAction {
  if (s.count === 0) return key === 'Escape' ? { type: 'clear' } : null;
  switch (key) {
    case 'ArrowDown':
      return { type: 'move', active: s.active < s.count - 1 ? s.active + 1 : s.count - 1 };
    case 'ArrowUp':
      return { type: 'move', active: s.active > 0 ? s.active - 1 : 0 };
    case 'Home':
      return { type: 'move', active: 0 };
    case 'End':
      return { type: 'move', active: s.count - 1 };
    case 'Enter':
      // Enter with nothing highlighted picks the first (and often only) match.
      return { type: 'pick', index: s.active >= 0 ? s.active : 0 };
    case 'Escape':
      return { type: 'clear' };
    default:
      return null;
  }
}

/** Debounces search-as-you-type; only the latest answer is ever shown. */
export class LatestOnly<T> {
  private seq = 0;
  async run(task: () => Promise<T>, show: (v: T) => void): Promise<void> {
    const mine = ++this.seq;
    const v = await task();
    if (mine === this.seq) show(v);
  }
  cancel(): void {
    this.seq += 1;
  }
}
