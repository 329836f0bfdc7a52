// Talking to the test upstream directly: fault injection and checking what was written.

import { env } from './driver.mjs';

const root = env.upstream.replace(/\/fhir\/?$/, '');

export async function fault(setting) {
  const r = await fetch(`${root}/$fault`, { method: 'POST', body: JSON.stringify(setting) });
  if (!r.ok) throw new Error(`$fault answered ${r.status}`);
  return r.json();
}

export async function fhir(path, init = {}) {
  const r = await fetch(`${env.upstream}/${path}`, {
    ...init,
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...(init.headers ?? {}) },
  });
  const body = await r.json().catch(() => null);
  return { status: r.status, body };
}
