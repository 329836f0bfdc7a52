// Hash routes to screens. Roles are enforced in the core; this only keeps people off
// screens they cannot use (a receptionist has no route to a clinical summary).

import { h } from '../lib/dom';
import { dayBookScreen, freeSlotsScreen } from './book';
import { accountsScreen, auditScreen, manageScreen, reconcileScreen, worklistScreen } from './manager';
import { patientScreen, receptionScreen } from './reception';
import { summaryScreen } from './summary';
import type { Ctx, Screen } from './types';

const MANAGER_ONLY = new Set(['manage', 'reconcile', 'worklist', 'accounts', 'audit']);

export async function route(ctx: Ctx, path: string): Promise<Screen> {
  const [name, ...rest] = path.split('/').map(decodeURIComponent);
  if (MANAGER_ONLY.has(name) && ctx.user.role !== 'manager') return notPermitted();
  switch (name) {
    case '':
    case 'reception':
      return receptionScreen(ctx);
    case 'patient':
      return patientScreen(ctx, rest[0]);
    case 'summary':
      if (ctx.user.role === 'receptionist') return notPermitted();
      return summaryScreen(ctx, rest[0]);
    case 'book':
      return dayBookScreen(ctx, rest[0], rest[1]);
    case 'slots':
      return freeSlotsScreen(ctx);
    case 'manage':
      return manageScreen(ctx);
    case 'reconcile':
      return reconcileScreen(ctx);
    case 'worklist':
      return worklistScreen(ctx);
    case 'accounts':
      return accountsScreen(ctx);
    case 'audit':
      return auditScreen(ctx);
    default:
      return receptionScreen(ctx);
  }
}

function notPermitted(): Screen {
  return {
    title: 'Not available',
    el: h('div', null, h('h1', { class: 'nhsuk-heading-l' }, 'Not available for your role'), h('p', null, 'Ask a practice manager if you need this.')),
  };
}
