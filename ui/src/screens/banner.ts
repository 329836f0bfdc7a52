// The always-visible mode banner (an aria-live region, so a mode change is announced).

import type { Role, StatusView } from '../lib/api';
import { h, fill } from '../lib/dom';
import { bannerContent } from '../lib/status/banner';

export function renderBanner(
  region: HTMLElement,
  s: StatusView | null,
  role: Role | null,
  progress: { index: number; steps: number } | null,
  onReconcile: () => void,
): void {
  if (!s) {
    fill(region, h('div', { class: 'lb-banner lb-banner--online' }, h('div', { class: 'nhsuk-width-container' }, 'Checking the clinical system…')));
    return;
  }
  const b = bannerContent(s, role, progress);
  region.dataset.mode = s.mode;
  region.dataset.drill = String(s.drill);
  fill(
    region,
    b.drill ? h('div', { class: 'lb-drill', attrs: { 'data-testid': 'drill-banner' } }, h('div', { class: 'nhsuk-width-container' }, h('strong', null, b.drill))) : null,
    h(
      'div',
      { class: `lb-banner lb-banner--${b.tone}`, attrs: { 'data-testid': 'mode-banner' } },
      h(
        'div',
        { class: 'nhsuk-width-container lb-banner__inner' },
        h('strong', { class: 'lb-banner__title', attrs: { 'data-testid': 'mode-title' } }, b.title),
        h('span', { class: 'lb-banner__text' }, b.lines.map((l, i) => h('span', { class: 'lb-banner__line', attrs: { 'data-line': i } }, l))),
        b.progress ? h('span', { class: 'lb-banner__progress' }, b.progress) : null,
        b.action === 'reconcile'
          ? h('button', { class: 'nhsuk-button nhsuk-button--small nhsuk-button--reverse lb-banner__action', attrs: { type: 'button' }, on: { click: onReconcile } }, 'Reconcile now')
          : null,
      ),
    ),
  );
}
