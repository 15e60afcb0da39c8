/**
 * The do-it-yourself baseline (issue 8, "Performance"): what a portal does without Sarafan — a
 * business process per won deal that reads the deal (`crm.deal.get`: its amount and the referrer
 * a manager noted on it), reads the referrer (`crm.contact.get`: the bonus so far) and adds 10 %
 * of the deal to the referrer's bonus field (`crm.contact.update`) — against the same sandbox
 * portal with the same limits (2/s, burst 50), one call at a time, through b24jssdk's B24OAuth
 * (whose client-side limiter mirrors the portal's bucket, so the portal never has to refuse).
 *
 * At 2 requests/s, 1 000 deals take about 1 500 s. `run` deals are processed for real and the
 * rest is extrapolated linearly from the steady rate after the burst (said so in the result);
 * `run` ≥ `deals` measures everything.
 */
import { B24OAuth } from '@bitrix24/b24jssdk';
import { loadavg } from 'node:os';
import { startSandbox } from '../sandbox/server.js';
import { LIMITS } from './crediting.js';

export interface BaselineResult {
  deals: number;
  /** Deals processed for real. */
  ranDeals: number;
  ranSeconds: number;
  /** Seconds per deal once the burst is spent (3 requests at the drain rate, plus the calls' own time). */
  steadySecondsPerDeal: number;
  /** For `deals`: measured when ranDeals ≥ deals, else ranSeconds + the rest at the steady rate. */
  wallSeconds: number;
  extrapolated: boolean;
  restRequests: number;
  throttled: number;
  loadAverage: { atStart: number[]; atEnd: number[] };
}

const CLIENT_ID = 'local.diy.bonus';
const BONUS = 'UF_CRM_DIY_BONUS';
const REFERRER = 'UF_CRM_DIY_REFERRER';
const round = (n: number, places = 2) => Math.round(n * 10 ** places) / 10 ** places;

export async function benchBaseline(opts: { deals: number; run: number }): Promise<BaselineResult> {
  const ran = Math.min(opts.deals, opts.run);
  const burstDeals = Math.ceil(LIMITS.burst / 3) + 1;
  if (ran < opts.deals && ran < burstDeals + 10) throw new Error(`the baseline needs at least ${burstDeals + 10} deals to see its steady rate (BENCH_BASELINE_DEALS)`);
  const sandbox = await startSandbox({ port: 0, dataDir: null, limits: false });
  const { portal } = sandbox;
  try {
    portal.upsertApp({ clientId: CLIENT_ID, clientSecret: 'diy-secret', code: 'diy', title: 'DIY bonus', version: '1', scope: 'crm', handlerUrl: 'http://127.0.0.1:9/', installUrl: 'http://127.0.0.1:9/' });
    portal.addUserField('contact', { FIELD_NAME: BONUS, USER_TYPE_ID: 'double' });
    portal.addUserField('deal', { FIELD_NAME: REFERRER, USER_TYPE_ID: 'integer' });
    const manager = { userId: 2 };
    const referrer = portal.addEntity('contact', { NAME: 'Реферер', [BONUS]: 0 }, manager);
    const ids: number[] = [];
    for (let i = 0; i < ran; i++) {
      const client = portal.addEntity('contact', { NAME: `Клиент ${i + 1}` }, manager);
      ids.push(portal.addEntity('deal', { CONTACT_ID: client, OPPORTUNITY: 10_000 + i, STAGE_ID: 'WON', [REFERRER]: referrer }, manager));
    }

    const t = portal.issueTokens(CLIENT_ID, 1);
    const b24 = new B24OAuth(
      {
        applicationToken: '',
        userId: 1,
        memberId: portal.memberId,
        accessToken: t.accessToken,
        refreshToken: t.refreshToken,
        expires: t.expires,
        expiresIn: t.expiresIn,
        scope: 'crm',
        domain: portal.domain,
        clientEndpoint: `${sandbox.url}/rest/`,
        serverEndpoint: `${sandbox.url}/rest/`,
        status: 'L',
      } as ConstructorParameters<typeof B24OAuth>[0],
      { clientId: CLIENT_ID, clientSecret: 'diy-secret' },
    );
    b24.offClientSideWarning();
    const call = async (method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const r = await b24.actions.v2.call.make({ method, params });
      if (!r.isSuccess) throw new Error(`${method}: ${r.getErrorMessages().join('; ')}`);
      return (r.getData() as { result: Record<string, unknown> }).result;
    };

    sandbox.setLimits(LIMITS);
    const before = { ...sandbox.stats };
    const atStart = loadavg().map((l) => round(l));
    const started = performance.now();
    const doneAt: number[] = [];
    for (const id of ids) {
      const deal = await call('crm.deal.get', { id });
      const person = await call('crm.contact.get', { id: Number(deal[REFERRER]) });
      const bonus = Number(person[BONUS] ?? 0) + Number(deal.OPPORTUNITY) / 10;
      await call('crm.contact.update', { id: Number(deal[REFERRER]), fields: { [BONUS]: round(bonus) } });
      doneAt.push((performance.now() - started) / 1000);
    }
    const ranSeconds = doneAt.at(-1)!;
    const expected = ids.reduce((s, _id, i) => s + (10_000 + i) / 10, 0);
    const shown = Number(portal.getEntity('contact', referrer)?.[BONUS]);
    if (Math.abs(shown - expected) > 0.01) throw new Error(`the DIY bonus is ${shown}, expected ${expected}`);
    const from = Math.min(burstDeals, ran - 1);
    const steady = (ranSeconds - doneAt[from - 1]!) / (ran - from);
    return {
      deals: opts.deals,
      ranDeals: ran,
      ranSeconds: round(ranSeconds),
      steadySecondsPerDeal: round(steady, 3),
      wallSeconds: round(ran >= opts.deals ? ranSeconds : ranSeconds + (opts.deals - ran) * steady),
      extrapolated: ran < opts.deals,
      restRequests: sandbox.stats.requests - before.requests,
      throttled: sandbox.stats.throttled - before.throttled,
      loadAverage: { atStart, atEnd: loadavg().map((l) => round(l)) },
    };
  } finally {
    await sandbox.close();
  }
}
