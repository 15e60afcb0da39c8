/**
 * Feedback in the CRM against the sandbox portal over real HTTP (issue 9): a credited referral
 * shows as timeline comments on the deal and the referrer's card of the web CRM and as a
 * notification of the deal's responsible user; a self-referral by a shared phone (written two
 * ways) is refused, and the client's card says why. The sandbox's limits are on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { FEEDBACK_HOLD_MS } from '../../src/handlers/send-feedback.js';
import type { Actor } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
const manager: Actor = { userId: 2 };

beforeAll(async () => {
  // The production hold of a short batch (3 s): settle() waits it out.
  live = await startLive({ limits: { drainPerSec: 2, burst: 50 }, feedbackHoldMs: FEEDBACK_HOLD_MS });
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;
const card = async (kind: 'deal' | 'contact', id: number) => (await fetch(`${live.sandbox.url}/crm/${kind}/details/${id}/`)).text();

describe('feedback in the sandbox CRM', () => {
  let referrer: number;
  let code: string;

  it('comments a credited referral on the deal and the referrer, and notifies the deal’s responsible user', async () => {
    referrer = portal().addEntity('contact', { NAME: 'Анна', PHONE: [{ VALUE: '+7 916 111-22-33', VALUE_TYPE: 'MOBILE' }] }, manager);
    const first = portal().addEntity('deal', { CONTACT_ID: referrer, STAGE_ID: 'NEW', OPPORTUNITY: 100 }, manager);
    portal().updateEntity('deal', first, { STAGE_ID: 'WON' }, manager);
    await live.settle();
    code = String(portal().getEntity('contact', referrer)?.[F.CODE]);

    const client = portal().addEntity('contact', { NAME: 'Борис', [F.REF_CODE]: code }, manager);
    const deal = portal().addEntity('deal', { CONTACT_ID: client, STAGE_ID: 'NEW', OPPORTUNITY: 30000 }, manager);
    await live.settle();
    portal().updateEntity('deal', deal, { STAGE_ID: 'WON' }, manager);
    await live.settle();

    const credited = `Сарафан: Награда за рекомендацию (уровень 1) 3 000.00 RUB начислена за сделку #${deal}`;
    expect(portal().timeline('deal', deal).map((c) => c.COMMENT)).toEqual([`${credited} (контакт #${referrer}).`]);
    expect(portal().timeline('contact', referrer).map((c) => c.COMMENT)).toEqual([`${credited}.`]);
    expect(portal().timeline('contact', client).map((c) => c.COMMENT)).toEqual([`Сарафан: пришёл по рекомендации по коду ${code}, пригласил контакт #${referrer}.`]);
    expect(portal().notifications(manager.userId).map((n) => n.MESSAGE)).toEqual([`${credited} (контакт #${referrer}).`]);
    // The manager sees it on the deal's card of the web CRM.
    expect(await card('deal', deal)).toContain(`${credited} (контакт #${referrer}).`);

    // Sarafan's own writes echo back as events: nothing is said twice.
    await live.settle();
    expect(portal().timeline('deal', deal)).toHaveLength(1);
  });

  it('refuses a self-referral by a shared phone, and the client’s card says why', async () => {
    const twin = portal().addEntity('contact', { NAME: 'Анна (второй контакт)', [F.REF_CODE]: code, PHONE: [{ VALUE: '8 (916) 111-22-33', VALUE_TYPE: 'WORK' }] }, manager);
    await live.settle();
    const installation = await live.installation();
    const member = await live.deps.store.members.findByEntity(installation.id, 'contact', twin);
    expect((await live.deps.store.referrals.ofReferees(installation.id, [member!.id])).map((r) => [r.status, r.rejectReason])).toEqual([['rejected', 'self_referral']]);
    const why = `Сарафан: рекомендация по коду ${code} отклонена — самоприглашение (тот же клиент, телефон или e-mail).`;
    expect(portal().timeline('contact', twin).map((c) => c.COMMENT)).toEqual([why]);
    expect(await card('contact', twin)).toContain(why);
  });
});
