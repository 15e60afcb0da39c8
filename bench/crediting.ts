/**
 * SPEC 11, "crediting 1 000 won referred deals on one portal": Sarafan and the sandbox portal over
 * HTTP, the portal's leaky bucket on (2/s, burst 50). Set-up (limits off): one enrolled referrer
 * and N referred clients, each with a deal in progress, all attributed. Measured (limits on): the
 * N deals are won at once (a bulk change by an automation rule, so token-less events) until every
 * credit is in the ledger and written back to the CRM and the queue is empty.
 *
 * Budgets: ≤ 0.1 REST requests per deal; wall time ≤ 1.2 × what the bucket allows for the
 * requests made — max(0, requests − burst) / drain seconds, floored at one second of work.
 */
import { F } from '../src/bitrix/crm-fields.js';
import { startLive } from '../tests/support/live.js';

export interface CreditingResult {
  deals: number;
  restRequests: number;
  requestsPerDeal: number;
  /** Methods run, batch commands counted one by one. */
  commands: number;
  requestsByMethod: Record<string, number>;
  throttled: number;
  seconds: number;
  allowedSeconds: number;
  credited: number;
}

const LIMITS = { drainPerSec: 2, burst: 50 };

export async function benchCrediting(deals: number): Promise<CreditingResult> {
  const live = await startLive({ limits: false, backgroundWorker: true });
  const { portal } = live.sandbox;
  const manager = { userId: 2 };
  try {
    const referrer = portal.addEntity('contact', { NAME: 'Реферер' }, manager);
    const first = portal.addEntity('deal', { CONTACT_ID: referrer, OPPORTUNITY: 1000 }, manager);
    portal.updateEntity('deal', first, { STAGE_ID: 'WON' }, manager);
    await live.settle();
    const code = String(portal.getEntity('contact', referrer)?.[F.CODE] ?? '');
    if (!code) throw new Error('the referrer was not enrolled during set-up');
    const ids: number[] = [];
    const setupStarted = performance.now();
    for (let i = 0; i < deals; i++) {
      const contact = portal.addEntity('contact', { NAME: `Клиент ${i + 1}`, [F.REF_CODE]: code }, manager);
      ids.push(portal.addEntity('deal', { CONTACT_ID: contact, OPPORTUNITY: 10_000 + i, STAGE_ID: 'EXECUTING' }, manager));
    }
    await live.settle(30 * 60_000);
    console.error(`crediting: set-up of ${deals} referred clients took ${Math.round((performance.now() - setupStarted) / 1000)} s, ${live.sandbox.stats.requests} REST requests`);

    // Sarafan's SDK client mirrors the portal's bucket (reference §10.5), and the set-up drained
    // it: wait until it is full again, so the measurement starts as a quiet portal would.
    await new Promise((r) => setTimeout(r, (LIMITS.burst / LIMITS.drainPerSec) * 1000));
    live.sandbox.setLimits(LIMITS);
    const before = { ...live.sandbox.stats, byMethod: { ...live.sandbox.stats.byMethod } };
    const started = performance.now();
    for (const id of ids) portal.updateEntity('deal', id, { STAGE_ID: 'WON' }, { userId: 0, byRobot: true });
    await live.settle(30 * 60_000);
    const seconds = (performance.now() - started) / 1000;
    const restRequests = live.sandbox.stats.requests - before.requests;
    const requestsByMethod = Object.fromEntries(
      Object.entries(live.sandbox.stats.byMethod)
        .map(([k, v]) => [k, v - (before.byMethod[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );

    const installation = await live.installation();
    let credited = 0;
    for (const id of ids) credited += (await live.deps.store.ledger.forDeal(installation.id, id)).filter((e) => e.kind === 'credit').length;
    const expectedBalance = ids.reduce((s, _id, i) => s + (10_000 + i) / 10, 0);
    const balance = Number(portal.getEntity('contact', referrer)?.[F.BALANCE] ?? 0);
    if (Math.abs(balance - expectedBalance) > 0.005) throw new Error(`the referrer's CRM balance is ${balance}, expected ${expectedBalance}`);
    return {
      deals,
      restRequests,
      requestsPerDeal: restRequests / deals,
      commands: live.sandbox.stats.commands - before.commands,
      requestsByMethod,
      throttled: live.sandbox.stats.throttled - before.throttled,
      seconds: Math.round(seconds * 10) / 10,
      allowedSeconds: Math.max(1, Math.max(0, restRequests - LIMITS.burst) / LIMITS.drainPerSec),
      credited,
    };
  } finally {
    await live.close();
  }
}
