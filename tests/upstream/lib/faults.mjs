// Fault injection for FHIR requests, driven over HTTP by POST /$fault, so a
// test can make the upstream fail the way real ones do and watch the client
// notice, back off, and recover. Control endpoints are never faulted.

export const MODES = ['none', 'error', 'hang', 'slow', 'drop', 'malformed'];

export class Faults {
  constructor() {
    this.setting = { mode: 'none' };
    /** Requests held by `hang`: each entry resumes (answers normally) or is dropped. */
    this.hung = new Set();
  }

  /**
   * Replace the current setting. Any request still hanging is released, since
   * the setting that hung it has gone: it is answered normally if its client
   * is still connected.
   * @returns {{ok: true, setting: object} | {ok: false, error: string}}
   */
  set(input) {
    const parsed = parseSetting(input);
    if (typeof parsed === 'string') return { ok: false, error: parsed };
    this.setting = parsed;
    this.releaseHung();
    return { ok: true, setting: this.describe() };
  }

  describe() {
    return { ...this.setting, hanging: this.hung.size };
  }

  /**
   * The fault to apply to this FHIR request, if any. Consumes one from `count`;
   * when it runs out the mode reverts to none (requests already hung stay hung
   * until the next POST /$fault or until their client gives up).
   */
  take(url) {
    const s = this.setting;
    if (s.mode === 'none') return null;
    if (s.match && !url.includes(s.match)) return null;
    const fault = { ...s };
    if (s.count !== undefined) {
      s.count -= 1;
      if (s.count <= 0) this.setting = { mode: 'none' };
    }
    return fault;
  }

  /** Resolve when released; `true` if the request should then be answered. */
  hang(res) {
    return new Promise((resolve) => {
      const entry = { resolve };
      this.hung.add(entry);
      res.on('close', () => {
        if (this.hung.delete(entry)) resolve(false);
      });
    });
  }

  releaseHung() {
    for (const entry of this.hung) entry.resolve(true);
    this.hung.clear();
  }
}

function parseSetting(input) {
  if (!input || typeof input !== 'object') return 'body must be a JSON object';
  const { mode, status, retryAfter, delayMs, count, match } = input;
  if (!MODES.includes(mode)) return `mode must be one of ${MODES.join(', ')}`;
  if (mode === 'none') return { mode };

  const setting = { mode };
  if (mode === 'error') {
    setting.status = status ?? 503;
    if (!Number.isInteger(setting.status) || setting.status < 400 || setting.status > 599) {
      return 'status must be an HTTP error status (e.g. 503 or 429)';
    }
  }
  if (retryAfter !== undefined) {
    if (!Number.isInteger(retryAfter) || retryAfter < 0) return 'retryAfter must be whole seconds';
    setting.retryAfter = retryAfter;
  }
  if (mode === 'slow') {
    setting.delayMs = delayMs ?? 2000;
    if (!Number.isFinite(setting.delayMs) || setting.delayMs < 0) return 'delayMs must be a number of ms';
  }
  if (count !== undefined) {
    if (!Number.isInteger(count) || count < 1) return 'count must be a positive integer';
    setting.count = count;
  }
  if (match !== undefined) {
    if (typeof match !== 'string' || !match) return 'match must be a non-empty string';
    setting.match = match;
  }
  return setting;
}
