/**
 * A Sarafan robot on a deal stage of the sandbox portal, over real HTTP (issue 10): the portal
 * posts the robot call when the deal enters the stage, Sarafan credits the client and answers
 * with bizproc.event.send, the run ends with the return values and the CRM field shows the new
 * balance. The registration itself (bizproc.robot.add at install) is made here by hand: it is the
 * install reconciliation's job, tested with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { DEMO_CLIENT_ID } from '../../server/demo/sandbox-demo.js';
import type { Actor } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
const manager: Actor = { userId: 2 };

beforeAll(async () => {
  // The portal holds its robot chain until the answer comes, so the worker runs in the background as in production.
  live = await startLive({ backgroundWorker: true });
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;

describe('a robot on a deal stage', () => {
  it('accrues bonus on stage entry: the run gets the return values, the contact’s balance field shows it', async () => {
    if (!portal().robot(DEMO_CLIENT_ID, 'sarafan_accrue')) {
      portal().addRobot({
        clientId: DEMO_CLIENT_ID,
        code: 'sarafan_accrue',
        handler: `${live.sarafanUrl}/b24/robots/sarafan_accrue`,
        authUserId: 1,
        useSubscription: true,
        name: 'Sarafan: начислить бонусы',
        description: '',
        properties: { amount: { Name: 'Сумма', Type: 'double' }, percent: { Name: 'Процент', Type: 'double' }, comment: { Name: 'Комментарий', Type: 'string' } },
        returnProperties: { accrued: { Name: 'Начислено', Type: 'double' }, balance: { Name: 'Баланс', Type: 'double' } },
        documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'],
      });
    }
    portal().addStageRobot({ clientId: DEMO_CLIENT_ID, code: 'sarafan_accrue', documentType: 'DEAL', stageId: 'EXECUTING', properties: { percent: '5', comment: 'Оплата {=Document:TITLE}' } });

    const contact = portal().addEntity('contact', { NAME: 'Роберт' }, manager);
    const deal = portal().addEntity('deal', { TITLE: 'Робот', CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 }, manager);
    portal().updateEntity('deal', deal, { STAGE_ID: 'EXECUTING' }, manager);
    await live.settle();

    const run = portal().robotRuns().find((r) => r.code === 'sarafan_accrue' && r.document.id === deal);
    expect(run).toMatchObject({ status: 'done', returnValues: { accrued: '150.00', balance: '150.00', ok: 'Y', error: '' } });
    expect(run!.log.some((l) => l.includes('150.00'))).toBe(true);
    const pid = (await live.installation()).id;
    const member = await live.deps.store.members.findByEntity(pid, 'contact', contact);
    const entries = await live.deps.store.ledger.forMember(pid, member!.id, { limit: 10 });
    expect(entries.map((e) => [e.reason, e.amount, e.comment])).toEqual([['adjustment', 150_00, 'Оплата Робот']]);
    expect(Number(portal().getEntity('contact', contact)![F.BALANCE])).toBe(150);
  });
});
