/**
 * The install's backfill (SPEC 6) against the sandbox portal over real HTTP: deals won before
 * Sarafan was installed end up in its history, so "already a customer" can see them
 * (HistoryRepo.firstWonAt), and people who already carry Sarafan fields are queued as CRM changes.
 * The request count is the sandbox's own (SPEC 11: 100 000 deals in ≤ 50 requests, so 10 000 in ≤ 5).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { DEMO_CLIENT_ID as SANDBOX_CLIENT_ID } from '../../server/demo/sandbox-demo.js';
import type { Actor, EntityKind, Row } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

const manager: Actor = { userId: 2 };
/** A failure guard only: starting Sarafan's store and the sandbox takes long on a busy machine. */
const GUARD_MS = 240_000;
let live: Live | null = null;

afterEach(async () => {
  await live?.close();
  live = null;
});

async function install(l: Live): Promise<void> {
  const page = await l.sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
  expect(page.status).toBe(200);
}

const raw = (l: Live) => (l.deps.store as SqlStore).rawQuery.bind(l.deps.store);

describe('backfill on install', () => {
  it('records the deals won before the install, answers each client’s first win, and queues the people carrying Sarafan fields', async () => {
    live = await startLive({ install: false, limits: { drainPerSec: 2, burst: 50 } });
    const portal = live.sandbox.portal;
    // Fields left on the portal by an earlier installation, with values managers kept using.
    portal.addUserField('contact', { FIELD_NAME: F.CODE, USER_TYPE_ID: 'string' });
    portal.addUserField('contact', { FIELD_NAME: F.REF_CODE, USER_TYPE_ID: 'string' });
    portal.addUserField('lead', { FIELD_NAME: F.REF_CODE, USER_TYPE_ID: 'string' });
    const add = (kind: EntityKind, fields: Row) => portal.addEntity(kind, fields, manager);
    const win = (id: number) => portal.updateEntity('deal', id, { STAGE_ID: String(portal.getEntity('deal', id)!.CATEGORY_ID) === '1' ? 'C1:WON' : 'WON' }, manager);

    const olga = add('contact', { NAME: 'Ольга', [F.CODE]: 'OLGA22' });
    const boris = add('contact', { NAME: 'Борис', [F.REF_CODE]: 'olga22' });
    const vera = add('contact', { NAME: 'Вера' });
    const lead = add('lead', { TITLE: 'Заявка с сайта', [F.REF_CODE]: 'OLGA22' });
    const quietLead = add('lead', { TITLE: 'Без кода' });
    const first = add('deal', { TITLE: 'Шкаф', CONTACT_ID: olga, OPPORTUNITY: '45000.50', CURRENCY_ID: 'RUB' });
    const second = add('deal', { TITLE: 'Кухня', CONTACT_ID: olga, OPPORTUNITY: 120000, STAGE_ID: 'C1:NEW', CATEGORY_ID: 1 });
    const lost = add('deal', { TITLE: 'Стол', CONTACT_ID: vera, OPPORTUNITY: 9000 });
    const open = add('deal', { TITLE: 'Диван', CONTACT_ID: vera, OPPORTUNITY: 30000 });
    const byLead = add('deal', { TITLE: 'Полка', LEAD_ID: quietLead, OPPORTUNITY: 1500, CURRENCY_ID: 'USD' });
    win(first);
    win(second);
    win(byLead);
    portal.updateEntity('deal', lost, { STAGE_ID: 'LOSE' }, manager);
    expect(portal.getEntity('deal', open)!.STAGE_SEMANTIC_ID).toBe('P');

    await install(live);
    await live.settle();

    const installation = await live.installation();
    expect(installation.status).toBe('active');
    const history = await raw(live)<Row>(
      'SELECT deal_id, contact_id, lead_id, category_id, amount, currency, won_at, created_at FROM history_deals WHERE portal_id = $1 ORDER BY deal_id',
      [installation.id],
    );
    const wonAt = (id: number) => new Date(String(portal.getEntity('deal', id)!.MOVED_TIME));
    const createdAt = (id: number) => new Date(String(portal.getEntity('deal', id)!.DATE_CREATE));
    expect(history.map((r) => ({ ...r, amount: Number(r.amount), won_at: new Date(String(r.won_at)), created_at: new Date(String(r.created_at)) }))).toEqual([
      { deal_id: first, contact_id: olga, lead_id: null, category_id: 0, amount: 45000_50, currency: 'RUB', won_at: wonAt(first), created_at: createdAt(first) },
      { deal_id: second, contact_id: olga, lead_id: null, category_id: 1, amount: 120000_00, currency: 'RUB', won_at: wonAt(second), created_at: createdAt(second) },
      { deal_id: byLead, contact_id: null, lead_id: quietLead, category_id: 0, amount: 1500_00, currency: 'USD', won_at: wonAt(byLead), created_at: createdAt(byLead) },
    ]);
    const firstWon = await live.deps.store.history.firstWonAt(installation.id, [
      { entity: 'contact', id: olga },
      { entity: 'contact', id: boris },
      { entity: 'contact', id: vera },
      { entity: 'lead', id: quietLead },
      { entity: 'lead', id: lead },
    ]);
    expect(firstWon).toEqual(
      new Map([
        [`contact:${olga}`, new Date(Math.min(wonAt(first).getTime(), wonAt(second).getTime()))],
        [`lead:${quietLead}`, wonAt(byLead)],
      ]),
    );

    // The people with a code or a referrer's code went through the loop like events; nobody else.
    const jobs = await raw(live)<{ kind: string; key: string; status: string; payload: Row }>(
      "SELECT kind, key, status, payload FROM jobs WHERE portal_id = $1 AND kind IN ('crm.change', 'backfill.crm') ORDER BY id",
      [installation.id],
    );
    expect(jobs.filter((j) => j.kind === 'backfill.crm').map((j) => j.status)).toEqual(['done']);
    const people = jobs.filter((j) => j.kind === 'crm.change');
    expect(people.map((j) => j.key).sort()).toEqual([`contact:${boris}`, `contact:${olga}`, `lead:${lead}`].sort());
    expect(people.every((j) => j.status === 'done')).toBe(true);
    expect(people.find((j) => j.key === `contact:${boris}`)?.payload).toEqual({ entity: 'contact', id: boris, deleted: false });

    // Olga bought before the install: when she later comes with a referrer's code, she is
    // already a customer — the referral is recorded as rejected, and nobody is paid for her deals.
    const referrer = add('contact', { NAME: 'Реферер' });
    portal.updateEntity('deal', add('deal', { CONTACT_ID: referrer, OPPORTUNITY: 100 }), { STAGE_ID: 'WON' }, manager);
    await live.settle();
    const code = String(portal.getEntity('contact', referrer)![F.CODE] ?? '');
    expect(code).toMatch(/^[A-Z0-9]{6,8}$/);
    portal.updateEntity('contact', olga, { [F.REF_CODE]: code }, manager);
    const again = add('deal', { TITLE: 'Ещё шкаф', CONTACT_ID: olga, OPPORTUNITY: 30000 });
    portal.updateEntity('deal', again, { STAGE_ID: 'WON' }, manager);
    await live.settle();
    const olgaMember = await live.deps.store.members.findByEntity(installation.id, 'contact', olga);
    const referrals = await raw(live)<{ status: string; reject_reason: string | null }>(
      'SELECT status, reject_reason FROM referrals WHERE portal_id = $1 AND referee_member_id = $2',
      [installation.id, olgaMember!.id],
    );
    expect(referrals).toEqual([{ status: 'rejected', reject_reason: 'already_customer' }]);
    expect((await live.deps.store.ledger.forDeal(installation.id, again)).filter((e) => e.reason === 'referral')).toEqual([]);
  }, GUARD_MS);

  it('reads 10 000 won deals in at most 5 REST requests', async () => {
    live = await startLive({ install: false, limits: false });
    const portal = live.sandbox.portal;
    const contact = portal.addEntity('contact', { NAME: 'Постоянный клиент' }, manager);
    for (let i = 0; i < 10_000; i++) portal.addEntity('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: 100 + i }, manager);
    for (let i = 0; i < 300; i++) portal.addEntity('deal', { CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: 5 }, manager);
    live.sandbox.setLimits({ drainPerSec: 2, burst: 50 });

    await install(live);
    // The wizard's registration is done; what the worker asks from here on is the backfill.
    const before = { requests: live.sandbox.stats.requests, byMethod: { ...live.sandbox.stats.byMethod } };
    await live.settle(120_000);

    const installation = await live.installation();
    const [count] = await raw(live)<{ n: string; sum: string }>('SELECT count(*) AS n, sum(amount) AS sum FROM history_deals WHERE portal_id = $1', [installation.id]);
    expect(Number(count!.n)).toBe(10_000);
    expect(Number(count!.sum)).toBe((100 * 10_000 + (9_999 * 10_000) / 2) * 100);
    const requests = live.sandbox.stats.requests - before.requests;
    expect(requests).toBeLessThanOrEqual(5);
    const added = Object.entries(live.sandbox.stats.byMethod)
      .map(([k, n]) => [k, n - (before.byMethod[k] ?? 0)] as const)
      .filter(([, n]) => n > 0);
    expect(added).toEqual([['batch:crm.contact.list+crm.deal.list+crm.lead.list', expect.any(Number)], ['batch:crm.deal.list', expect.any(Number)]]);
    expect(live.sandbox.stats.throttled).toBe(0);
  }, GUARD_MS);
});
