/**
 * App-level methods through the SDK: batch, events, placements, robots, bizproc.event.send,
 * app.info / app.option.*, and admin-only refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { B24OAuth } from '@bitrix24/b24jssdk';
import { robotFilterOffers } from '../../sandbox/rest/core-methods.js';
import { CLIENT_ID, sdkResult, startSandbox, type Sandbox } from './harness.js';

let sb: Sandbox;
let b24: B24OAuth;
let handler: string;

beforeAll(async () => {
  sb = await startSandbox();
  b24 = sb.client();
  handler = `${sb.base}/b24/events`;
});
afterAll(async () => {
  await sb.close();
});

type Body = Record<string, unknown>;

describe('batch', () => {
  it('runs named commands with $result references; failures land in result_error; empty maps are []', async () => {
    const raw = await sb.call('batch', {
      halt: 0,
      cmd: {
        add: 'crm.deal.add?fields%5BTITLE%5D=Batch&fields%5BOPPORTUNITY%5D=100',
        get: 'crm.deal.get?id=$result[add]',
        list: 'crm.deal.list?filter%5BID%5D=$result[add]&select%5B0%5D=ID&select%5B1%5D=TITLE',
        again: 'crm.deal.get?id=$result[list][0][ID]',
        title: 'crm.deal.list?filter%5BTITLE%5D=$result[get][TITLE]&select%5B%5D=ID',
        missing: 'crm.deal.get?id=99999',
        nested: 'batch?cmd%5Ba%5D=profile',
      },
    });
    expect(raw.status).toBe(200);
    const r = (raw.body.result as Body) ?? {};
    const result = r.result as Body;
    expect(result.add).toBe(1);
    expect((result.get as Body).TITLE).toBe('Batch');
    expect(result.list).toEqual([{ ID: '1', TITLE: 'Batch' }]);
    expect((result.again as Body).ID).toBe('1');
    expect(result.title).toEqual([{ ID: '1' }]);
    expect(r.result_error).toEqual({
      missing: { error: '', error_description: 'Not found' },
      nested: { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', error_description: expect.any(String) },
    });
    expect(r.result_total).toEqual({ list: 1, title: 1 });
    expect(r.result_next).toEqual([]);
    expect(Object.keys(r.result_time as Body)).toHaveLength(7);
    expect(raw.body.time).toBeDefined();

    const none = (await sb.call('batch', { cmd: { a: 'profile' } })).body.result as Body;
    expect(none.result_error).toEqual([]);
    expect(none.result_total).toEqual([]);
  });

  it('halts at the first error, accepts array cmd, refuses more than 50 commands', async () => {
    const halted = (await sb.call('batch', { halt: 1, cmd: { a: 'crm.deal.get?id=0', b: 'profile' } })).body.result as Body;
    expect(halted.result).toEqual([]);
    expect(Object.keys(halted.result_error as Body)).toEqual(['a']);
    const arr = (await sb.call('batch', { halt: 'false', cmd: ['profile', 'crm.settings.mode.get'] })).body.result as Body;
    expect((arr.result as unknown[])[1]).toBe(1);
    const big = await sb.call('batch', { cmd: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, 'profile'])) });
    expect(big.status).toBe(400);
    expect(big.body.error).toBe('ERROR_BATCH_LENGTH_EXCEEDED');
  });

  it('works through the SDK batch action', async () => {
    const res = await b24.actions.v2.batch.make({
      calls: { mode: { method: 'crm.settings.mode.get', params: {} }, me: ['profile', {}] },
      options: { isHaltOnError: false, returnAjaxResult: true },
    });
    expect(res.isSuccess).toBe(true);
    const data = res.getData() as Record<string, { getData(): { result: unknown } }>;
    expect(data.mode!.getData().result).toBe(1);
    expect((data.me!.getData().result as Body).ID).toBe('1');
  });
});

describe('events', () => {
  it('binds, lists, refuses duplicates and unknown events, unbinds with a count', async () => {
    expect(await sdkResult(b24, 'event.bind', { event: 'onCrmDealUpdate', handler })).toBe(true);
    expect(await sdkResult(b24, 'event.bind', { event: 'ONCRMDEALADD', handler })).toBe(true);
    const dup = await sb.call('event.bind', { event: 'ONCRMDEALUPDATE', handler });
    expect(dup).toEqual({ status: 400, body: { error: 'ERROR_CORE', error_description: 'Handler already binded' } });
    expect((await sb.call('event.bind', { event: 'ONNOTHING', handler })).body.error).toBe('ERROR_EVENT_NOT_FOUND');
    expect((await sb.call('event.bind', { event: 'ONCRMLEADADD', handler: 'ftp://x' })).status).toBe(400);
    expect((await sb.call('event.bind', { event: 'ONCRMLEADADD', handler }, 2)).status).toBe(403);
    expect(await sdkResult(b24, 'event.get')).toEqual([
      { event: 'ONCRMDEALUPDATE', handler, auth_type: '0', offline: 0 },
      { event: 'ONCRMDEALADD', handler, auth_type: '0', offline: 0 },
    ]);
    expect(sb.portal.eventBindings()[0]).toMatchObject({ clientId: CLIENT_ID, event: 'ONCRMDEALUPDATE' });
    expect(await sdkResult(b24, 'event.unbind', { event: 'ONCRMDEALADD', handler })).toEqual({ count: 1 });
    expect(await sdkResult(b24, 'event.unbind', { event: 'ONCRMDEALADD', handler })).toEqual({ count: 0 });
  });
});

describe('placements', () => {
  it('binds, refuses unknown/missing/duplicates and non-admins, gets and unbinds', async () => {
    const tab = `${sb.base}/b24/tab`;
    expect(await sdkResult(b24, 'placement.bind', { PLACEMENT: 'CRM_DEAL_DETAIL_TAB', HANDLER: tab, TITLE: 'Сарафан', LANG_ALL: { ru: { TITLE: 'Сарафан' } } })).toBe(true);
    expect((await sb.call('placement.bind', { PLACEMENT: 'CRM_DEAL_DETAIL_TAB', HANDLER: tab })).body).toEqual({
      error: 'ERROR_PLACEMENT_HANDLER_EXISTS',
      error_description: 'Handler already binded',
    });
    expect((await sb.call('placement.bind', { PLACEMENT: 'CRM_NOPE', HANDLER: tab })).body.error).toBe('ERROR_PLACEMENT_NOT_FOUND');
    expect((await sb.call('placement.bind', { HANDLER: tab })).body).toMatchObject({ error: 'ERROR_ARGUMENT', argument: 'PLACEMENT' });
    expect((await sb.call('placement.bind', { PLACEMENT: 'LEFT_MENU' })).body).toMatchObject({ error: 'ERROR_ARGUMENT', argument: 'HANDLER' });
    const denied = await sb.call('placement.bind', { PLACEMENT: 'LEFT_MENU', HANDLER: tab }, 2);
    expect(denied).toEqual({ status: 403, body: { error: 'ACCESS_DENIED', error_description: expect.any(String) } });
    expect(await sdkResult(b24, 'placement.get')).toEqual([
      { placement: 'CRM_DEAL_DETAIL_TAB', userId: 0, handler: tab, options: [], title: 'Сарафан', description: '', langAll: { ru: { TITLE: 'Сарафан' } } },
    ]);
    expect(await sdkResult(b24, 'placement.list')).toContain('CRM_CONTACT_DETAIL_TAB');
    expect(await sdkResult(b24, 'placement.unbind', { PLACEMENT: 'CRM_DEAL_DETAIL_TAB' })).toEqual({ count: 1 });
    expect(sb.portal.placements()).toEqual([]);
  });
});

describe('robots', () => {
  const robot = (): Body => ({
    CODE: 'sarafan_accrue',
    HANDLER: `${sb.base}/b24/robot`,
    AUTH_USER_ID: 1,
    NAME: { ru: 'Начислить бонусы', en: 'Accrue' },
    USE_SUBSCRIPTION: 'Y',
    PROPERTIES: { amount: { Name: 'Сумма', Type: 'double', Required: 'Y' } },
    RETURN_PROPERTIES: { balance: { Name: 'Баланс', Type: 'double' } },
    DOCUMENT_TYPE: ['crm', 'CCrmDocumentDeal', 'DEAL'],
  });

  it('registers with validation, refuses duplicates, updates, lists and deletes', async () => {
    expect(await sdkResult(b24, 'bizproc.robot.add', robot())).toBe(true);
    const again = await sb.call('bizproc.robot.add', robot());
    expect(again.body).toEqual({ error: 'ERROR_ACTIVITY_ALREADY_INSTALLED', error_description: 'Activity or Automation rule already installed!' });
    const bad = async (patch: Body): Promise<Body> => (await sb.call('bizproc.robot.add', { ...robot(), CODE: 'other', ...patch })).body;
    expect(await bad({ CODE: 'bad code!' })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Wrong activity code!' });
    expect(await bad({ CODE: '' })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Empty activity code!' });
    expect(await bad({ NAME: '' })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Empty activity NAME!' });
    expect(await bad({ PROPERTIES: { '1x': { Name: 'a' } } })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Wrong property key 1x!' });
    expect(await bad({ PROPERTIES: { x: { Type: 'int' } } })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Empty property NAME x!' });
    expect(await bad({ DOCUMENT_TYPE: ['crm'] })).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Wrong activity DOCUMENT_TYPE!' });
    expect((await bad({ HANDLER: 'ftp://x/y' })).error).toBe('ERROR_UNSUPPORTED_PROTOCOL');
    expect((await bad({ HANDLER: 'http://elsewhere.test/robot' })).error).toBe('ERROR_WRONG_HANDLER_URL');
    expect((await sb.call('bizproc.robot.add', { ...robot(), CODE: 'x2' }, 2)).status).toBe(403);

    expect(await sdkResult(b24, 'bizproc.robot.update', { CODE: 'sarafan_accrue', FIELDS: { NAME: 'Новое имя', USE_SUBSCRIPTION: 'N' } })).toBe(true);
    expect(sb.portal.robots()[0]).toMatchObject({ clientId: CLIENT_ID, code: 'sarafan_accrue', name: 'Новое имя', useSubscription: false, documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'] });
    expect((await sb.call('bizproc.robot.update', { CODE: 'nope', FIELDS: { NAME: 'x' } })).body.error).toBe('ERROR_ACTIVITY_NOT_FOUND');
    expect(await sdkResult(b24, 'bizproc.robot.list')).toEqual(['sarafan_accrue']);
    expect(await sdkResult(b24, 'bizproc.robot.delete', { CODE: 'sarafan_accrue' })).toBe(true);
    expect((await sb.call('bizproc.robot.delete', { CODE: 'sarafan_accrue' })).body).toEqual({ error: 'ERROR_ACTIVITY_NOT_FOUND', error_description: 'Activity or Robot not found!' });
  });

  it('keeps FILTER (deals and leads, editions) and refuses a malformed one', async () => {
    const filter = { INCLUDE: [['crm', 'CCrmDocumentDeal'], ['crm', 'CCrmDocumentLead']] };
    const { DOCUMENT_TYPE: _type, ...noType } = robot();
    expect(await sdkResult(b24, 'bizproc.robot.add', { ...noType, CODE: 'sarafan_filtered', FILTER: filter })).toBe(true);
    const stored = sb.portal.robot(CLIENT_ID, 'sarafan_filtered')!;
    expect(stored.filter).toEqual({ include: [['crm', 'CCrmDocumentDeal'], ['crm', 'CCrmDocumentLead']], exclude: [] });
    expect([robotFilterOffers(stored.filter, 'DEAL'), robotFilterOffers(stored.filter, 'LEAD')]).toEqual([true, true]);

    expect(await sdkResult(b24, 'bizproc.robot.update', { CODE: 'sarafan_filtered', FIELDS: { FILTER: { INCLUDE: [['crm', 'CCrmDocumentDeal']], EXCLUDE: ['box'] } } })).toBe(true);
    const dealsOnly = sb.portal.robot(CLIENT_ID, 'sarafan_filtered')!.filter;
    expect([robotFilterOffers(dealsOnly, 'DEAL'), robotFilterOffers(dealsOnly, 'LEAD')]).toEqual([true, false]);
    expect(robotFilterOffers({ include: [], exclude: ['b24'] }, 'DEAL')).toBe(false);

    const bad = await sb.call('bizproc.robot.add', { ...noType, CODE: 'sarafan_bad_filter', FILTER: { ONLY: ['b24'] } });
    expect(bad.body).toEqual({ error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', error_description: 'Wrong activity FILTER!' });
    const emptyItem = await sb.call('bizproc.robot.add', { ...noType, CODE: 'sarafan_bad_filter', FILTER: { INCLUDE: [['crm', '']] } });
    expect(emptyItem.body.error_description).toBe('Wrong activity FILTER!');
    expect(sb.portal.robot(CLIENT_ID, 'sarafan_bad_filter')).toBeNull();
    expect(await sdkResult(b24, 'bizproc.robot.delete', { CODE: 'sarafan_filtered' })).toBe(true);
  });

  it('refuses the robot methods to an app without the bizproc scope', async () => {
    sb.portal.upsertApp({
      clientId: 'local.noscope',
      clientSecret: 'noscope-secret',
      code: 'noscope',
      title: 'No bizproc',
      version: '1',
      scope: 'crm,placement',
      handlerUrl: `${sb.base}/b24/app`,
      installUrl: `${sb.base}/b24/install`,
    });
    sb.portal.setAppInstalled('local.noscope', true);
    const auth = sb.portal.issueTokens('local.noscope', 1).accessToken;
    for (const [method, params] of [
      ['bizproc.robot.list', {}],
      ['bizproc.robot.add', { ...robot(), CODE: 'noscope_robot' }],
    ] as const) {
      const res = await fetch(`${sb.base}/rest/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth, ...params }) });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token' });
    }
    expect(sb.portal.robots().filter((r) => r.clientId === 'local.noscope')).toEqual([]);
  });

  it('bizproc.event.send finishes a waiting run once; activity.log appends', async () => {
    const run = sb.portal.startRobotRun({ clientId: CLIENT_ID, code: 'sarafan_accrue', document: { entity: 'deal', id: 1 }, subscribe: true });
    expect(await sdkResult(b24, 'bizproc.activity.log', { EVENT_TOKEN: run.eventToken, LOG_MESSAGE: 'считаем' })).toBe(true);
    expect(await sdkResult(b24, 'bizproc.event.send', { EVENT_TOKEN: run.eventToken, RETURN_VALUES: { balance: 150 }, LOG_MESSAGE: 'ok' })).toBe(true);
    const done = sb.portal.robotRuns().find((r) => r.id === run.id)!;
    expect(done).toMatchObject({ status: 'done', returnValues: { balance: 150 }, log: ['считаем', 'ok'] });
    const twice = await sb.call('bizproc.event.send', { EVENT_TOKEN: run.eventToken, RETURN_VALUES: {} });
    expect(twice.status).toBe(403);
    expect(twice.body.error).toBe('ACCESS_DENIED');
    expect((await sb.call('bizproc.event.send', { EVENT_TOKEN: 'garbage' })).status).toBe(403);
  });
});

describe('app', () => {
  it('answers app.info and keeps admin-only options', async () => {
    const info = await sdkResult<Body>(b24, 'app.info');
    expect(info).toMatchObject({ CODE: 'sarafan', STATUS: 'L', INSTALLED: true, PAYMENT_EXPIRED: 'N', LANGUAGE_ID: 'ru', LICENSE: 'ru_project' });
    expect(await sdkResult(b24, 'app.option.get')).toEqual([]);
    expect(await sdkResult(b24, 'app.option.set', { options: { percent: 5 } })).toBe(true);
    expect(await sdkResult(b24, 'app.option.get', { option: 'percent' })).toBe(5);
    expect(await sdkResult(b24, 'app.option.get')).toEqual({ percent: 5 });
    expect((await sb.call('app.option.set', { options: {} })).body.error).toBe('ArgumentNullException');
    expect((await sb.call('app.option.set', { options: { a: 1 } }, 2)).status).toBe(403);
    const me = await sdkResult<Body>(sb.client(2), 'profile');
    expect(me).toMatchObject({ ID: '2', ADMIN: false, NAME: 'Иван' });
    expect(await sdkResult<Body>(b24, 'user.current')).toMatchObject({ ID: '1', EMAIL: 'admin@sandbox.local' });
  });
});
