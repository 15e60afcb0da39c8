/**
 * A delivery always ends: the delivery timeout covers the answer's body too. Node's fetch can
 * leave `res.text()` pending forever when its signal aborts while the body is being read
 * (nodejs/node#56917) — under load, when deliveries time out by the thousand, one such delivery
 * kept `idle()` (and the benchmark waiting for a quiet portal) waiting forever. The transport
 * here plays that: the answer comes, its body never ends.
 */
import { describe, expect, it } from 'vitest';
import { Outbound } from '../../sandbox/outbound.js';
import { createPortal } from '../../sandbox/portal.js';

const CLIENT_ID = 'local.deadline.test';

function installedPortal() {
  const portal = createPortal({ stateFile: null, domain: '127.0.0.1:1' });
  portal.upsertApp({
    clientId: CLIENT_ID,
    clientSecret: 'secret',
    code: 'deadline',
    title: 'Deadline test app',
    version: '1',
    scope: 'crm',
    handlerUrl: 'http://app.test/frame',
    installUrl: 'http://app.test/install',
  });
  portal.setAppInstalled(CLIENT_ID, true);
  portal.bindEvent({ clientId: CLIENT_ID, event: 'ONCRMCONTACTADD', handler: 'http://app.test/events', authType: 0, offline: 0 });
  return portal;
}

describe('event deliveries', () => {
  it('a delivery whose answer body never ends is given up at the timeout, and the portal becomes idle', async () => {
    const portal = installedPortal();
    let posted = 0;
    const endlessBody = (async () => {
      posted++;
      return { status: 200, text: () => new Promise<string>(() => {}) } as unknown as Response;
    }) as typeof fetch;
    const outbound = new Outbound(portal, { fetchImpl: endlessBody, timeoutMs: 20 });

    for (let i = 0; i < 3; i++) portal.addEntity('contact', { NAME: `Клиент ${i}` }, { userId: 1 });
    await outbound.idle();

    expect(posted).toBe(3);
    expect(outbound.deliveries.map((d) => d.status)).toEqual([0, 0, 0]);
    expect(outbound.deliveries[0]!.error).toMatch(/timeout/);
    outbound.close();
  });

  it('an answer in time is recorded with its status', async () => {
    const portal = installedPortal();
    const answered = (async () => new Response('nope', { status: 500 })) as typeof fetch;
    const outbound = new Outbound(portal, { fetchImpl: answered, timeoutMs: 5_000 });

    portal.addEntity('contact', { NAME: 'Клиент' }, { userId: 1 });
    await outbound.idle();

    expect(outbound.deliveries).toMatchObject([{ event: 'ONCRMCONTACTADD', status: 500, error: 'nope' }]);
    outbound.close();
  });
});
