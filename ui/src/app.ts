// The shell: session flow (setup, sign in, unlock), the header, the mode banner, routing
// between screens, and the core's events.

import { api, AppError, on, SESSION_LOST, type PatientMatch, type ReconcileProgressEvent, type StatusView, type UserInfo } from './lib/api';
import { h, fill, afterPaint } from './lib/dom';
import { renderBanner } from './screens/banner';
import { loginScreen, setupScreen, unlockScreen } from './screens/session';
import type { Ctx, Screen } from './screens/types';
import { route } from './screens/routes';

export class Shell {
  private user: UserInfo | null = null;
  private status: StatusView | null = null;
  private progress: ReconcileProgressEvent | null = null;
  private screen: Screen | null = null;
  private statusListeners: ((s: StatusView) => void)[] = [];
  private progressListeners: ((kind: 'sync' | 'reconcile', p: unknown) => void)[] = [];
  private patient: PatientMatch | null = null;
  private locked = false;
  /** Which navigation is current: an older one still loading must not paint over it. */
  private showSeq = 0;
  private readonly header = h('div');
  private readonly banner = h('div', { attrs: { id: 'mode-banner', role: 'status', 'aria-live': 'polite' } });
  private readonly main = h('main', { class: 'nhsuk-main-wrapper', attrs: { id: 'maincontent', role: 'main', tabindex: '-1' } });
  private readonly announcer = h('div', { class: 'nhsuk-u-visually-hidden', attrs: { 'aria-live': 'polite', id: 'announcer' } });

  constructor(private readonly root: HTMLElement) {}

  async start(): Promise<void> {
    fill(
      this.root,
      h('a', { class: 'nhsuk-skip-link', attrs: { href: '#maincontent', 'data-module': 'nhsuk-skip-link' }, on: { click: (e) => (e.preventDefault(), this.main.focus()) } }, 'Skip to main content'),
      this.header,
      this.banner,
      h('div', { class: 'nhsuk-width-container' }, this.main),
      this.announcer,
    );
    window.addEventListener('hashchange', () => void this.show());
    window.addEventListener(SESSION_LOST, (e) => {
      const err = (e as CustomEvent<AppError>).detail;
      if (!this.user || this.locked) return;
      if (err.code === 'locked') void this.lockScreen('Locked after a period without use. Your work is kept; unlock to carry on.');
      else void this.switchUser();
    });
    // Typing and clicking keep the session alive; told to the core at most every 30 s.
    let lastTouch = 0;
    const touch = () => {
      if (!this.user || this.locked || Date.now() - lastTouch < 30_000) return;
      lastTouch = Date.now();
      api.touch().catch(() => {});
    };
    document.addEventListener('keydown', touch, true);
    document.addEventListener('pointerdown', touch, true);
    await Promise.all([
      on('lifeboat://status', (s) => this.setStatus(s)),
      on('lifeboat://locked', (e) => void this.lockScreen(e.reason)),
      on('lifeboat://sync-progress', (p) => this.progressListeners.forEach((f) => f('sync', p))),
      on('lifeboat://reconcile-progress', (p) => {
        this.progress = p;
        this.drawBanner();
        this.progressListeners.forEach((f) => f('reconcile', p));
      }),
    ]).catch(() => {
      /* events are a convenience: status is also polled */
    });
    // The data age in the banner moves on even when nothing happens.
    window.setInterval(() => void this.refreshStatus(), 30_000);
    await this.boot();
  }

  private async boot(): Promise<void> {
    try {
      const s = await api.sessionState();
      // A new practice's first job is its first sync: the manager starts on that screen.
      if (s.setupNeeded) return this.page(setupScreen((u) => void this.signedIn(u, 'manage')), 'setup');
      if (s.user && s.locked) return this.lockScreen(undefined, s.user);
      if (s.user) return this.signedIn(s.user);
      this.page(loginScreen((u) => void this.signedIn(u)), 'login');
    } catch (e) {
      this.page({ el: h('div', null, h('h1', { class: 'nhsuk-heading-l' }, 'Lifeboat could not start'), h('p', { attrs: { 'data-testid': 'error' } }, AppError.from(e).message)) }, 'error');
    }
  }

  /** A full page without the signed-in chrome (setup, sign in, unlock). */
  private page(p: { el: HTMLElement; focus?: HTMLElement }, name: string): void {
    this.disposeScreen();
    this.drawHeader();
    fill(this.main, p.el);
    document.title = `${name === 'setup' ? 'Set up' : name === 'unlock' ? 'Locked' : 'Sign in'} – Lifeboat`;
    void this.refreshStatus();
    void afterPaint().then(() => p.focus?.focus());
  }

  private async signedIn(u: UserInfo, start = 'reception'): Promise<void> {
    // Unlocking carries on where the person was; anyone newly signed in starts at reception,
    // never on the previous person's patient.
    const sameUser = this.locked && this.user?.username === u.username;
    this.user = u;
    this.locked = false;
    this.drawHeader();
    await this.refreshStatus();
    if (!sameUser || !location.hash || location.hash === '#') {
      if (location.hash !== `#/${start}`) {
        location.hash = `#/${start}`; // the hashchange shows it
        return;
      }
    }
    await this.show();
  }

  private async lockScreen(reason?: string, user?: UserInfo): Promise<void> {
    const u = user ?? this.user;
    if (!u) return this.boot();
    this.user = u;
    this.locked = true;
    this.page(
      unlockScreen(
        u,
        (again) => void this.signedIn(again),
        () => void this.switchUser(),
        reason,
      ),
      'unlock',
    );
  }

  private async switchUser(): Promise<void> {
    try {
      await api.logout();
    } catch {
      /* signing out of a locked session still goes to sign in */
    }
    this.user = null;
    this.patient = null;
    this.page(loginScreen((u) => void this.signedIn(u), 'Signed out. The next person can sign in.'), 'login');
  }

  private async lockNow(): Promise<void> {
    try {
      await api.lock();
    } finally {
      await this.lockScreen('Locked. Your work is kept; unlock to carry on.');
    }
  }

  async refreshStatus(): Promise<void> {
    try {
      this.setStatus(await api.status());
    } catch {
      /* not signed in yet, or locked: the banner keeps the last status */
    }
  }

  private setStatus(s: StatusView): void {
    this.status = s;
    if (s.mode !== 'reconciling') this.progress = null;
    this.drawBanner();
    this.statusListeners.forEach((f) => f(s));
  }

  private drawBanner(): void {
    renderBanner(this.banner, this.status, this.user && !this.locked ? this.user.role : null, this.progress, () => (location.hash = '#/reconcile'));
  }

  private drawHeader(): void {
    const u = this.user && !this.locked ? this.user : null;
    const current = location.hash.replace(/^#\/?/, '').split('/')[0];
    const links: [string, string][] = u
      ? [
          ['reception', 'Reception'],
          ['book', 'Appointment book'],
          ['slots', 'Free slots'],
          ...(u.role === 'manager'
            ? ([
                ['manage', 'Sync and outage'],
                ['reconcile', 'Reconcile'],
                ['worklist', 'Worklist'],
                ['accounts', 'Staff'],
                ['audit', 'Audit'],
              ] as [string, string][])
            : []),
        ]
      : [];
    fill(
      this.header,
      h(
        'header',
        { class: 'nhsuk-header', attrs: { role: 'banner' } },
        h(
          'div',
          { class: 'nhsuk-header__container nhsuk-width-container' },
          h('div', { class: 'nhsuk-header__service' }, nhsLogo(), h('span', { class: 'nhsuk-header__service-name' }, 'Lifeboat')),
          u
            ? h(
                'nav',
                { class: 'nhsuk-header__account', attrs: { 'aria-label': 'Account' } },
                h(
                  'ul',
                  { class: 'nhsuk-header__account-list' },
                  h('li', { class: 'nhsuk-header__account-item', attrs: { 'data-testid': 'signed-in-as' } }, `${u.displayName} (${u.role})`),
                  h('li', { class: 'nhsuk-header__account-item' }, h('button', { class: 'nhsuk-header__account-button', attrs: { type: 'button', 'data-testid': 'lock' }, on: { click: () => void this.lockNow() } }, 'Lock')),
                  h('li', { class: 'nhsuk-header__account-item' }, h('button', { class: 'nhsuk-header__account-button', attrs: { type: 'button', 'data-testid': 'switch-user' }, on: { click: () => void this.switchUser() } }, 'Switch user')),
                ),
              )
            : null,
        ),
        links.length
          ? h(
              'nav',
              { class: 'nhsuk-header__navigation', attrs: { 'aria-label': 'Menu' } },
              h(
                'div',
                { class: 'nhsuk-header__navigation-container nhsuk-width-container' },
                h(
                  'ul',
                  { class: 'nhsuk-header__navigation-list' },
                  links.map(([r, label]) =>
                    h(
                      'li',
                      { class: `nhsuk-header__navigation-item${r === current ? ' nhsuk-header__navigation-item--current' : ''}` },
                      h('a', { class: 'nhsuk-header__navigation-link', attrs: { href: `#/${r}`, 'aria-current': r === current ? 'page' : undefined, 'data-nav': r } }, label),
                    ),
                  ),
                ),
              ),
            )
          : null,
      ),
    );
  }

  private disposeScreen(): void {
    this.screen?.dispose?.();
    this.screen = null;
    this.statusListeners = [];
    this.progressListeners = [];
  }

  private async show(): Promise<void> {
    if (!this.user || this.locked) return;
    const seq = ++this.showSeq;
    this.disposeScreen();
    this.drawHeader();
    const ctx = this.ctx();
    const path = location.hash.replace(/^#\/?/, '');
    let s: Screen;
    try {
      s = await route(ctx, path);
      if (seq !== this.showSeq) {
        s.dispose?.();
        return;
      }
    } catch (e) {
      if (seq !== this.showSeq) return;
      const err = AppError.from(e);
      if (err.code === 'locked') return this.lockScreen(err.message);
      if (err.code === 'not_logged_in') return this.switchUser();
      s = { title: 'Problem', el: h('div', null, h('h1', { class: 'nhsuk-heading-l' }, 'Sorry, there is a problem'), h('p', { attrs: { 'data-testid': 'error' } }, err.message)) };
    }
    this.screen = s;
    fill(this.main, s.el);
    document.title = `${s.title} – Lifeboat`;
    await afterPaint();
    (s.focus ?? this.main).focus();
  }

  private ctx(): Ctx {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const shell = this;
    return {
      user: this.user as UserInfo,
      status: () => shell.status,
      go: (r) => {
        const target = `#/${r}`;
        if (location.hash === target) void shell.show();
        else location.hash = target;
      },
      refreshStatus: () => shell.refreshStatus(),
      onStatus: (fn) => shell.statusListeners.push(fn),
      onProgress: (fn) => shell.progressListeners.push(fn),
      get patient() {
        return shell.patient;
      },
      setPatient: (p) => (shell.patient = p),
    };
  }
}

function nhsLogo(): SVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'nhsuk-header__logo');
  svg.setAttribute('viewBox', '0 0 200 80');
  svg.setAttribute('height', '40');
  svg.setAttribute('width', '100');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'NHS');
  const title = document.createElementNS(ns, 'title');
  title.textContent = 'NHS';
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('fill', 'currentcolor');
  path.setAttribute(
    'd',
    'M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z',
  );
  svg.append(title, path);
  return svg;
}
