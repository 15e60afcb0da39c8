/**
 * Robot registration through the install wizard (SPEC 4.4, issue 10): the first install adds
 * Sarafan's five robots with their exact definitions; a second install only lists them; a robot
 * whose definition changed since it was registered is updated; one deleted on the portal is
 * added again; an add refused as already installed becomes an update. Asserted on the outbound
 * `bizproc.robot.*` commands, the portal's robots and the stored registration report.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';

const CODES = ['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo'];
let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});

afterAll(async () => {
  await h.close();
});

async function install(): Promise<void> {
  const { query, body } = installRequest(h.portal);
  const res = await request(h.app).post(`/b24/install?${query}`).set('Content-Type', 'application/x-www-form-urlencoded').send(body);
  expect(res.status).toBe(200);
}

/** The robot commands sent since the last reset, as `method CODE`. */
const robotCalls = () =>
  h.portal
    .commands()
    .filter((c) => c.method.startsWith('bizproc.robot.'))
    .map((c) => `${c.method} ${String(c.params.CODE ?? '')}`.trim());

const installation = async () => (await h.store.installations.findByMemberId(h.portal.memberId))!;

describe('robot registration on install', () => {
  it('the first install lists the robots and adds the five with their exact fields', async () => {
    await install();

    expect(robotCalls()).toEqual(['bizproc.robot.list', ...CODES.map((c) => `bizproc.robot.add ${c}`)]);
    // Batched params arrive as a query string: numbers read back as strings.
    expect(h.portal.robots.get('sarafan_accrue')).toEqual({
      CODE: 'sarafan_accrue',
      HANDLER: `${APP_BASE_URL}/b24/robots/sarafan_accrue`,
      AUTH_USER_ID: '1',
      USE_SUBSCRIPTION: 'Y',
      NAME: { ru: 'Сарафан: начислить бонусы', en: 'Sarafan: accrue bonus' },
      DESCRIPTION: {
        ru: 'Начисляет бонусы клиенту сделки или лида: суммой или процентом от суммы сделки',
        en: "Credits bonus to the deal's or lead's client: a fixed amount or a percent of the deal amount",
      },
      PROPERTIES: {
        amount: {
          Name: { ru: 'Сумма бонусов', en: 'Bonus amount' },
          Description: { ru: 'Сколько начислить; пусто, если задан процент', en: 'How much to credit; empty when a percent is set' },
          Type: 'double',
          Required: 'N',
          Multiple: 'N',
        },
        percent: {
          Name: { ru: 'Процент от суммы', en: 'Percent of the amount' },
          Description: { ru: 'Процент от суммы сделки; пусто, если задана сумма', en: 'Percent of the deal amount; empty when an amount is set' },
          Type: 'double',
          Required: 'N',
          Multiple: 'N',
        },
        comment: {
          Name: { ru: 'Комментарий', en: 'Comment' },
          Description: { ru: 'Причина начисления для истории', en: 'Why, for the history' },
          Type: 'string',
          Required: 'N',
          Multiple: 'N',
        },
      },
      RETURN_PROPERTIES: {
        accrued: {
          Name: { ru: 'Начислено', en: 'Accrued' },
          Description: { ru: 'Сколько бонусов начислено', en: 'How much bonus was credited' },
          Type: 'double',
          Required: 'N',
          Multiple: 'N',
        },
        balance: {
          Name: { ru: 'Доступные бонусы', en: 'Available bonus' },
          Description: { ru: 'Баланс клиента после действия', en: "The client's balance after the action" },
          Type: 'double',
          Required: 'N',
          Multiple: 'N',
        },
        entry_id: {
          Name: { ru: 'Номер операции', en: 'Entry id' },
          Description: { ru: 'Номер записи в журнале бонусов', en: 'The bonus ledger entry' },
          Type: 'int',
          Required: 'N',
          Multiple: 'N',
        },
        ok: {
          Name: { ru: 'Успешно', en: 'Succeeded' },
          Description: { ru: 'Y, если действие выполнено', en: 'Y when the action was done' },
          Type: 'bool',
          Required: 'N',
          Multiple: 'N',
        },
        error: {
          Name: { ru: 'Ошибка', en: 'Error' },
          Description: { ru: 'Почему действие не выполнено (пусто при успехе)', en: 'Why the action was not done (empty on success)' },
          Type: 'string',
          Required: 'N',
          Multiple: 'N',
        },
      },
      FILTER: { INCLUDE: [['crm', 'CCrmDocumentDeal'], ['crm', 'CCrmDocumentLead']] },
    });
    for (const code of CODES) {
      expect(h.portal.robots.get(code)).toMatchObject({ HANDLER: `${APP_BASE_URL}/b24/robots/${code}`, USE_SUBSCRIPTION: 'Y', AUTH_USER_ID: '1' });
    }
    expect(Object.keys(h.portal.robots.get('sarafan_promo')!.PROPERTIES as object)).toEqual(['code']);
    expect(h.portal.robots.get('sarafan_status')).not.toHaveProperty('PROPERTIES.amount');

    const inst = await installation();
    expect(inst.status).toBe('active');
    expect(inst.registration?.created).toEqual(expect.arrayContaining(CODES.map((c) => `robot:${c}`)));
    expect(Object.keys(inst.registration?.robots ?? {}).sort()).toEqual([...CODES].sort());
  });

  it('a second install lists the robots and creates or updates none', async () => {
    const before = (await installation()).registration?.robots;
    h.portal.resetCalls();
    await install();

    expect(robotCalls()).toEqual(['bizproc.robot.list']);
    expect(h.portal.robots.size).toBe(5);
    const inst = await installation();
    expect(inst.registration).toMatchObject({ created: [], updated: [], failed: [] });
    expect(inst.registration?.robots).toEqual(before);
  });

  it('a robot whose definition changed since it was registered is updated, and only that one', async () => {
    // What Sarafan registered last differs from what it declares now (as after a new version).
    const inst = await installation();
    const robots = { ...inst.registration!.robots!, sarafan_redeem: 'hash-of-an-older-definition' };
    await h.store.installations.saveRegistration(inst.id, { ...inst.registration!, robots });
    h.portal.robots.set('sarafan_redeem', { ...h.portal.robots.get('sarafan_redeem')!, NAME: { ru: 'Старое', en: 'Old' } });
    h.portal.resetCalls();

    await install();

    expect(robotCalls()).toEqual(['bizproc.robot.list', 'bizproc.robot.update sarafan_redeem']);
    const update = h.portal.commands('bizproc.robot.update')[0]!;
    expect(Object.keys(update.params)).toEqual(['CODE', 'FIELDS']);
    expect(update.params.FIELDS).toMatchObject({
      HANDLER: `${APP_BASE_URL}/b24/robots/sarafan_redeem`,
      NAME: { ru: 'Сарафан: списать бонусы', en: 'Sarafan: redeem bonus' },
      PROPERTIES: { amount: { Type: 'double', Required: 'N' } },
    });
    expect(h.portal.robots.get('sarafan_redeem')?.NAME).toEqual({ ru: 'Сарафан: списать бонусы', en: 'Sarafan: redeem bonus' });
    const after = await installation();
    expect(after.registration).toMatchObject({ created: [], updated: ['robot:sarafan_redeem'], failed: [] });
    expect(after.registration?.robots?.sarafan_redeem).toMatch(/^[0-9a-f]{64}$/);

    h.portal.resetCalls();
    await install();
    expect(robotCalls()).toEqual(['bizproc.robot.list']);
  });

  it('a robot deleted on the portal is added again', async () => {
    h.portal.robots.delete('sarafan_status');
    h.portal.resetCalls();

    await install();

    expect(robotCalls()).toEqual(['bizproc.robot.list', 'bizproc.robot.add sarafan_status']);
    expect([...h.portal.robots.keys()].sort()).toEqual([...CODES].sort());
    expect((await installation()).registration).toMatchObject({ created: ['robot:sarafan_status'], updated: [], failed: [] });
  });

  it('an add refused with ERROR_ACTIVITY_ALREADY_INSTALLED is sent again as an update, never duplicated', async () => {
    h.portal.unlistedRobots.add('sarafan_enroll');
    h.portal.resetCalls();

    await install();

    expect(robotCalls()).toEqual(['bizproc.robot.list', 'bizproc.robot.add sarafan_enroll', 'bizproc.robot.update sarafan_enroll']);
    expect(h.portal.robots.size).toBe(5);
    const inst = await installation();
    expect(inst.status).toBe('active');
    expect(inst.registration).toMatchObject({ created: [], updated: ['robot:sarafan_enroll'], failed: [] });
    h.portal.unlistedRobots.clear();
  });
});
