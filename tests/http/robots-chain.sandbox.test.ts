/**
 * The demo's robot chain over real HTTP (issue 10): when a deal enters the invoice stage, the
 * sandbox portal runs Sarafan's "status" robot, waits for its bizproc.event.send, and runs
 * "redeem" (amount empty: the most allowed) only if the balance the first robot returned is above
 * 1000 — `{=A<status>:balance} > 1000`, evaluated when redeem's turn comes. Each run's return
 * values are what Sarafan sent; the ledger and the deal's CRM field show the redemption. The
 * chain is the one server/demo puts on a fresh demo portal (addDemoChain).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { adjustBalance } from '../../src/handlers/adjust-balance.js';
import { DEMO_CHAIN, addDemoChain } from '../../server/demo/sandbox-demo.js';
import type { Actor, StageRobot } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
let chain: { status: StageRobot; redeem: StageRobot };
const manager: Actor = { userId: 2 };

beforeAll(async () => {
  // The portal holds the chain until each answer comes, so the worker runs in the background as in production.
  live = await startLive({ backgroundWorker: true });
  chain = addDemoChain(live.sandbox.portal);
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;

/** A contact holding `balance` (minor units) of available bonus, and its deal of 2 000.00 at the first stage. */
async function clientWithDeal(name: string, balance: number): Promise<{ contact: number; deal: number; memberId: number }> {
  const installation = await live.installation();
  const contact = portal().addEntity('contact', { NAME: name }, manager);
  await adjustBalance(live.deps, installation, { person: { entity: 'contact', id: contact }, amount: balance, comment: 'Стартовый баланс', userId: 1, clientKey: `seed-${contact}` });
  const deal = portal().addEntity('deal', { TITLE: `Заказ ${name}`, CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: 2000 }, manager);
  await live.settle();
  const member = await live.deps.store.members.findByEntity(installation.id, 'contact', contact);
  return { contact, deal, memberId: member!.id };
}

const runsOf = (deal: number) => portal().robotRuns().filter((r) => r.document.id === deal && r.document.entity === 'deal');

describe('the demo chain on the invoice stage: status → redeem above 1000', () => {
  it('is set up as data: redeem reads the balance the status robot returns', () => {
    expect(chain.redeem).toMatchObject({ code: 'sarafan_redeem', stageId: DEMO_CHAIN.stageId, properties: { amount: '' }, condition: { operand: `{=A${chain.status.id}:balance}`, operator: '>', value: '1000' } });
    // Both robots are Sarafan's, registered by the install.
    expect(portal().robot(chain.status.clientId, 'sarafan_status')?.returnProperties).toHaveProperty('balance');
  });

  it('a balance above the threshold: status answers it, redeem runs and redeems the most allowed, the deal shows it', async () => {
    const { contact, deal, memberId } = await clientWithDeal('Полина', 1500_00);
    const pid = (await live.installation()).id;
    portal().updateEntity('deal', deal, { STAGE_ID: DEMO_CHAIN.stageId }, manager);
    await live.settle();

    const [status, redeem] = runsOf(deal);
    expect(runsOf(deal)).toHaveLength(2);
    // One workflow: the two robots of the stage entry share it, in order.
    expect(redeem!.workflowId).toBe(status!.workflowId);
    const member = (await live.deps.store.members.getMany(pid, [memberId]))[0]!;
    // What Sarafan sent with bizproc.event.send for the status robot, exactly.
    expect(status).toMatchObject({ activity: `A${chain.status.id}`, status: 'done', properties: {} });
    expect(status!.returnValues).toEqual({
      code: member.code ?? '',
      link: member.code ? expect.stringContaining(member.code) : '',
      balance: '1500.00',
      pending: '0.00',
      tier: '',
      referrals: '0',
      ok: 'Y',
      error: '',
    });
    expect(status!.log).toEqual([`Sarafan (sarafan_status): contact ${contact}: 1500.00`, `Sarafan (sarafan_status): contact ${contact}: 1500.00`]);

    // The condition held with the value the first robot returned; redeem got its properties and redeemed 50 % of 2 000.00.
    expect(redeem).toMatchObject({ activity: `A${chain.redeem.id}`, status: 'done', properties: { amount: '' } });
    expect(redeem!.returnValues).toEqual({ redeemed: '1000.00', balance: '500.00', ok: 'Y', error: '' });
    expect(redeem!.log).toEqual([`Sarafan (sarafan_redeem): −1000.00 on deal ${deal}`, `Sarafan (sarafan_redeem): −1000.00 on deal ${deal}`]);

    const entries = await live.deps.store.ledger.forDeal(pid, deal);
    expect(entries.map((e) => [e.reason, e.amount, e.memberId])).toEqual([['redemption', -1000_00, memberId]]);
    expect(Number(portal().getEntity('deal', deal)![F.REDEEMED])).toBe(1000);
    expect(Number(portal().getEntity('contact', contact)![F.BALANCE])).toBe(500);
  });

  it('a balance at or below the threshold: status answers it, redeem is skipped and nothing is redeemed', async () => {
    const { contact, deal } = await clientWithDeal('Тимур', 1000_00);
    const pid = (await live.installation()).id;
    const calls = live.sandbox.outbound.deliveries.filter((d) => d.event === 'robot:sarafan_redeem').length;
    portal().updateEntity('deal', deal, { STAGE_ID: DEMO_CHAIN.stageId }, manager);
    await live.settle();

    const [status, redeem] = runsOf(deal);
    expect(runsOf(deal)).toHaveLength(2);
    expect(status).toMatchObject({ status: 'done', returnValues: expect.objectContaining({ balance: '1000.00', ok: 'Y', error: '' }) });
    expect(redeem).toMatchObject({ activity: `A${chain.redeem.id}`, status: 'skipped', returnValues: null, log: ['Условие не выполнено: 1000.00 > 1000 — робот пропущен'] });
    // No call went to Sarafan for it, and nothing moved.
    expect(live.sandbox.outbound.deliveries.filter((d) => d.event === 'robot:sarafan_redeem')).toHaveLength(calls);
    expect(await live.deps.store.ledger.forDeal(pid, deal)).toEqual([]);
    expect(Number(portal().getEntity('deal', deal)![F.REDEEMED] ?? 0)).toBe(0);
    expect(Number(portal().getEntity('contact', contact)![F.BALANCE])).toBe(1000);
  });
});
