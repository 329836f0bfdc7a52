// Counts of FHIR requests, so a test can assert exactly what a client fetched
// (e.g. "an incremental sync asked for one page per type, nothing else").

const RECENT_MAX = 2000;

export class Stats {
  constructor() {
    this.reset();
  }

  reset() {
    this.requests = 0;
    this.byPath = {};
    this.recent = [];
  }

  /**
   * Count a request on arrival. The returned entry is completed by `finish`
   * before the response is written, so a client that has its answer always
   * sees the request in /$stats.
   */
  start(method, url) {
    const path = url.split('?')[0];
    this.requests++;
    this.byPath[path] = (this.byPath[path] ?? 0) + 1;
    const entry = { method, url, status: 0, ms: 0, t0: performance.now() };
    this.recent.push(entry);
    if (this.recent.length > RECENT_MAX * 1.5) this.recent.splice(0, this.recent.length - RECENT_MAX);
    return entry;
  }

  finish(entry, status, fault) {
    entry.status = status;
    entry.ms = Math.round((performance.now() - entry.t0) * 10) / 10;
    if (fault) entry.fault = fault;
  }

  toJSON() {
    return {
      requests: this.requests,
      byPath: this.byPath,
      recent: this.recent.slice(-RECENT_MAX).map(({ t0: _t0, ...e }) => e),
    };
  }
}
