/**
 * Robot registration against the sandbox portal over real HTTP (SPEC 4.4): the headless install
 * registers Sarafan's five robots for deals and leads, running as the installing admin and
 * waiting for their answer; running the reconciliation again sends no robot add or update; a
 * robot an admin deleted on the portal comes back on the next reconciliation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENT_ID } from '../../server/demo/sandbox-demo.js';
import { robotFilterOffers } from '../../sandbox/rest/core-methods.js';
import { reconcileInstallation } from '../../src/handlers/install-app.js';
import { startLive, type Live } from '../support/live.js';

const CODES = ['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo'];
let live: Live;

beforeAll(async () => {
  live = await startLive();
});

afterAll(async () => {
  await live?.close();
});

const ours = () => live.sandbox.portal.robots().filter((r) => r.clientId === DEMO_CLIENT_ID);
/** Requests that carried a robot add or update (single calls or inside a batch). */
const robotWrites = () =>
  Object.entries(live.sandbox.stats.byMethod)
    .filter(([key]) => /bizproc\.robot\.(add|update)/.test(key))
    .reduce((n, [, count]) => n + count, 0);

describe('robots on the sandbox portal', () => {
  it('the install registers the five robots for deals and leads, as the installing admin, waiting for the answer', async () => {
    const inst = await live.installation();
    expect(inst.status).toBe('active');
    expect(ours().map((r) => r.code)).toEqual(CODES);
    for (const r of ours()) {
      expect(r.handler).toBe(`${live.deps.appBaseUrl}/b24/robots/${r.code}`);
      expect(r.useSubscription).toBe(true);
      expect(r.authUserId).toBe(inst.userId);
      expect([robotFilterOffers(r.filter, 'DEAL'), robotFilterOffers(r.filter, 'LEAD')]).toEqual([true, true]);
    }
    const accrue = ours().find((r) => r.code === 'sarafan_accrue')!;
    expect(accrue.name).toBe('Сарафан: начислить бонусы');
    expect(Object.keys(accrue.properties)).toEqual(['amount', 'percent', 'comment']);
    expect(Object.keys(accrue.returnProperties)).toEqual(['accrued', 'balance', 'entry_id', 'ok', 'error']);
    expect(Object.keys(inst.registration?.robots ?? {}).sort()).toEqual([...CODES].sort());
  });

  it('a second reconciliation writes no robot', async () => {
    const writes = robotWrites();
    const report = await reconcileInstallation(live.deps, await live.installation());
    expect(report).toMatchObject({ created: [], updated: [], failed: [] });
    expect(robotWrites()).toBe(writes);
    expect(ours()).toHaveLength(5);
  });

  it('a robot deleted on the portal is registered again', async () => {
    live.sandbox.portal.deleteRobot(DEMO_CLIENT_ID, 'sarafan_promo');
    const report = await reconcileInstallation(live.deps, await live.installation());
    expect(report).toMatchObject({ created: ['robot:sarafan_promo'], updated: [], failed: [] });
    expect(ours().map((r) => r.code).sort()).toEqual([...CODES].sort());
    expect(ours().find((r) => r.code === 'sarafan_promo')?.properties).toMatchObject({ code: { Type: 'string', Required: 'Y' } });
  });
});
