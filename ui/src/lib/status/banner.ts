// What the always-visible mode banner says. Pure, so every mode's wording is tested.

import type { Role, StatusView } from '../api';

export type BannerTone = 'online' | 'offline' | 'recovering' | 'reconciling';

export interface BannerContent {
  tone: BannerTone;
  /** Short, loud heading: "Online", "OFFLINE", ... */
  title: string;
  /** One or two sentences under it. */
  lines: string[];
  /** Shown above everything in a drill. */
  drill: string | null;
  /** A manager's "reconcile now" button while Recovering. */
  action: 'reconcile' | null;
  /** Reconciliation progress, when known: "Step 3 of 10". */
  progress: string | null;
}

function changes(n: number): string {
  if (n === 0) return 'No changes held locally.';
  return n === 1 ? '1 change held locally.' : `${n} changes held locally.`;
}

/** Capitalises "data as of …" as the banner's sentence. */
function sentence(s: string): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

export function bannerContent(
  s: StatusView,
  role: Role | null,
  progress?: { index: number; steps: number } | null,
): BannerContent {
  const drill = s.drill
    ? 'PRACTICE — NOT REAL. This is a drill: nothing done here reaches the clinical system.'
    : null;
  const base = { drill, action: null, progress: null } as const;
  switch (s.mode) {
    case 'online':
      return {
        ...base,
        tone: 'online',
        title: 'Online',
        lines: [
          `Clinical system reachable. Last sync: ${s.dataAsOf}.`,
          ...(s.lastSyncError ? [`Last sync problem: ${s.lastSyncError}`] : []),
        ],
      };
    case 'offline':
      return {
        ...base,
        tone: 'offline',
        title: 'OFFLINE',
        lines: [
          s.declared
            ? 'A manager has declared an outage of the clinical system.'
            : 'The clinical system cannot be reached.',
          `${sentence(s.dataAsOf)}. ${changes(s.unsettledChanges)}`,
        ],
      };
    case 'recovering':
      return {
        ...base,
        tone: 'recovering',
        title: 'Recovering',
        lines: [
          `The clinical system is back. ${changes(s.unsettledChanges)}`,
          role === 'manager'
            ? 'Reconcile now to send them to the clinical system.'
            : 'A manager needs to reconcile them.',
        ],
        action: role === 'manager' ? 'reconcile' : null,
      };
    case 'reconciling':
      return {
        ...base,
        tone: 'reconciling',
        title: 'Reconciling',
        lines: ['Sending offline changes to the clinical system. Changes are paused until it finishes.'],
        // The core counts steps done from 1 (`index` 3 of 10: three sent).
        progress: progress ? `${Math.min(progress.index, progress.steps)} of ${progress.steps} changes sent` : null,
      };
  }
}
