/**
 * What the sandbox portal sends to an application: the install wizard POST, ONAPPINSTALL after
 * installFinish, ONCRM… events form-encoded after each change (token-less for robots, none
 * before the install is finished), robots run on stage entry and waiting for
 * bizproc.event.send (answered here through B24OAuth), ONAPPUNINSTALL, and the test faults.
 * A tiny HTTP server plays the application and records every request it gets (and never answers
 * on /hang). The portal runs on a ManualClock: delays, timeouts and robot waits pass only when a
 * test advances it.
 */
import { B24OAuth } from '@bitrix24/b24jssdk';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../sandbox/server.js';
import type { Row } from '../../sandbox/types.js';
import { ManualClock } from '../support/manual-clock.js';

interface Received {
  path: string;
  contentType: string;
  raw: string;
  body: Row;
}

const CLIENT_ID = 'local.outbound.test';
const CLIENT_SECRET = 'outbound-secret';
let app: Server;
let appUrl: string;
let sandbox: Sandbox;
const received: Received[] = [];
const clock = new ManualClock();

/** Lets the event loop turn until `check` holds; the test's timeout is the only deadline. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

beforeAll(async () => {
  app = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', raw, body: qs.parse(raw, { depth: 10 }) as Row });
      if (req.url === '/hang') return;
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>ok</p>');
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  sandbox = await startSandbox({
    port: 0,
    dataDir: null,
    limits: false,
    robotWaitMs: 5_000,
    clock,
    apps: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        code: 'outbound',
        title: 'Outbound test app',
        version: '3',
        scope: 'crm,bizproc,placement',
        handlerUrl: `${appUrl}/app`,
        installUrl: `${appUrl}/install`,
      },
    ],
  });
});

afterAll(async () => {
  await sandbox?.close();
  app.closeAllConnections();
  await new Promise<void>((r) => app.close(() => r()));
});

beforeEach(() => {
  received.length = 0;
});

const portal = () => sandbox.portal;
const manager = { userId: 2 };
const eventsOf = (name: string) => received.filter((r) => r.body.event === name);

function sdkFor(userId = 1): B24OAuth {
  const t = portal().issueTokens(CLIENT_ID, userId);
  const b24 = new B24OAuth(
    {
      applicationToken: '',
      userId,
      memberId: portal().memberId,
      accessToken: t.accessToken,
      refreshToken: t.refreshToken,
      expires: t.expires,
      expiresIn: t.expiresIn,
      scope: 'crm,bizproc',
      domain: portal().domain,
      clientEndpoint: `${sandbox.url}/rest/`,
      serverEndpoint: `${sandbox.url}/rest/`,
      status: 'L',
    } as ConstructorParameters<typeof B24OAuth>[0],
    { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  );
  b24.offClientSideWarning();
  return b24;
}

async function call(b24: B24OAuth, method: string, params: Row = {}): Promise<unknown> {
  const r = await b24.actions.v2.call.make({ method, params });
  if (!r.isSuccess) throw new Error(r.getErrorMessages().join('; '));
  return (r.getData() as { result: unknown }).result;
}

describe('before the install is finished', () => {
  it('a bound app gets no events (reference §1.4)', async () => {
    const b24 = sdkFor();
    await call(b24, 'event.bind', { event: 'ONCRMCONTACTADD', handler: `${appUrl}/events` });
    portal().addEntity('contact', { NAME: 'Рано' }, manager);
    await sandbox.outbound.idle();
    expect(received).toEqual([]);
  });
});

describe('install', () => {
  it('POSTs the wizard form, then ONAPPINSTALL with tokens once installFinish is called', async () => {
    const b24 = sdkFor();
    await call(b24, 'event.bind', { event: 'ONAPPINSTALL', handler: `${appUrl}/events` });
    const page = await sandbox.outbound.installHeadless(CLIENT_ID);
    await sandbox.outbound.idle();
    expect(page.status).toBe(200);
    const [wizard, install] = received;
    expect(wizard!.path).toMatch(/^\/install\?DOMAIN=127\.0\.0\.1%3A\d+&PROTOCOL=0&LANG=ru&APP_SID=[0-9a-f]{32}$/);
    expect(wizard!.contentType).toBe('application/x-www-form-urlencoded');
    expect(wizard!.body).toMatchObject({ member_id: portal().memberId, PLACEMENT: 'DEFAULT', SERVER_ENDPOINT: `${sandbox.url}/rest/`, status: 'L' });
    expect(portal().authenticate(String(wizard!.body.AUTH_ID))).toEqual({ clientId: CLIENT_ID, userId: 1 });
    // No application token before the install is finished.
    expect(wizard!.body.APPLICATION_TOKEN).toBeUndefined();

    const appToken = portal().app(CLIENT_ID)!.applicationToken!;
    expect(appToken).toMatch(/\w{16,}/);
    expect(install!.body).toMatchObject({
      event: 'ONAPPINSTALL',
      data: { VERSION: '3', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'ru' },
      auth: { member_id: portal().memberId, application_token: appToken, domain: portal().domain, client_endpoint: `${sandbox.url}/rest/`, user_id: '1' },
    });
    expect(install!.raw).toContain('auth%5Brefresh_token%5D=');
    expect(portal().authenticate(String((install!.body.auth as Row).access_token))).toEqual({ clientId: CLIENT_ID, userId: 1 });
  });
});

describe('CRM events', () => {
  beforeAll(async () => {
    const b24 = sdkFor();
    for (const event of ['ONCRMDEALADD', 'ONCRMDEALUPDATE', 'ONCRMDEALDELETE']) await call(b24, 'event.bind', { event, handler: `${appUrl}/events` });
  });

  it('posts ONCRMCONTACTADD form-encoded with bracket keys and the acting user’s tokens', async () => {
    const id = portal().addEntity('contact', { NAME: 'Алла' }, manager);
    await sandbox.outbound.idle();
    const [e] = eventsOf('ONCRMCONTACTADD');
    expect(e!.contentType).toBe('application/x-www-form-urlencoded');
    expect(e!.raw).toMatch(new RegExp(`(^|&)data%5BFIELDS%5D%5BID%5D=${id}(&|$)`));
    expect(e!.body).toMatchObject({ data: { FIELDS: { ID: String(id) } }, auth: { user_id: '2', member_id: portal().memberId, application_token: portal().app(CLIENT_ID)!.applicationToken } });
    expect(e!.body.event_handler_id).toMatch(/^\d+$/);
    expect(portal().authenticate(String((e!.body.auth as Row).access_token))).toEqual({ clientId: CLIENT_ID, userId: 2 });
  });

  it('changes made through REST by the app itself come back as events too', async () => {
    const id = Number(await call(sdkFor(), 'crm.deal.add', { fields: { TITLE: 'Через REST' } }));
    await call(sdkFor(), 'crm.deal.update', { id, fields: { OPPORTUNITY: 5 } });
    await sandbox.outbound.idle();
    expect(eventsOf('ONCRMDEALADD').map((e) => (e.body.data as Row).FIELDS)).toEqual([{ ID: String(id) }]);
    expect(eventsOf('ONCRMDEALUPDATE').map((e) => (e.body.data as Row).FIELDS)).toEqual([{ ID: String(id) }]);
  });

  it('a change made by a robot comes without tokens', async () => {
    const id = portal().addEntity('deal', { TITLE: 'Робот' }, manager);
    const res = await fetch(`${sandbox.url}/_sandbox/control/crm/deal/${id}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ fields: { STAGE_ID: 'WON' } }) });
    expect(res.status).toBe(200);
    await sandbox.outbound.idle();
    const update = eventsOf('ONCRMDEALUPDATE').at(-1)!;
    const auth = update.body.auth as Row;
    expect(Object.keys(auth).sort()).toEqual(['application_token', 'client_endpoint', 'domain', 'member_id', 'scope', 'server_endpoint', 'status']);
    expect(portal().getEntity('deal', id)?.STAGE_SEMANTIC_ID).toBe('S');
  });

  it('drops, duplicates, delays and reorders deliveries when told to', async () => {
    const put = (body: Row) => fetch(`${sandbox.url}/_sandbox/control/faults`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect((await put({ drop: -1 })).status).toBe(400);
    expect((await put({ drop: 1, duplicate: 1 })).status).toBe(200);
    const a = portal().addEntity('deal', { TITLE: 'a' }, manager); // dropped
    const b = portal().addEntity('deal', { TITLE: 'b' }, manager); // twice
    await sandbox.outbound.idle();
    expect(eventsOf('ONCRMDEALADD').map((e) => Number((e.body.data as Row as { FIELDS: { ID: string } }).FIELDS.ID))).toEqual([b, b]);
    expect(sandbox.outbound.deliveries.some((d) => d.dropped)).toBe(true);
    expect(a).toBeLessThan(b);

    received.length = 0;
    sandbox.outbound.setFaults({ reorder: 3 });
    const ids = [1, 2, 3].map((n) => portal().addEntity('deal', { TITLE: `r${n}` }, manager));
    await sandbox.outbound.idle();
    expect(eventsOf('ONCRMDEALADD').map((e) => Number(((e.body.data as Row).FIELDS as Row).ID))).toEqual([...ids].reverse());

    received.length = 0;
    sandbox.outbound.setFaults({ delayMs: 300 });
    const before = sandbox.outbound.deliveries.length;
    portal().addEntity('deal', { TITLE: 'late' }, manager);
    await clock.advance(299);
    expect(sandbox.outbound.deliveries).toHaveLength(before);
    await clock.advance(1);
    await sandbox.outbound.idle();
    expect(sandbox.outbound.deliveries).toHaveLength(before + 1);
    expect(received).toHaveLength(1);
    sandbox.outbound.setFaults({ delayMs: 0 });
  });

  it('gives up on a handler that does not answer within 10 s and does not retry it', async () => {
    await call(sdkFor(), 'event.bind', { event: 'ONCRMLEADADD', handler: `${appUrl}/hang` });
    portal().addEntity('lead', { TITLE: 'Молчание' }, manager);
    await until(() => received.some((r) => r.path === '/hang'));
    const delivery = () => sandbox.outbound.deliveries.filter((d) => d.event === 'ONCRMLEADADD').at(-1)!;
    await clock.advance(9_999);
    expect(delivery().status).toBeNull();
    await clock.advance(1);
    await sandbox.outbound.idle();
    expect(delivery()).toMatchObject({ status: 0, error: 'The operation was aborted due to timeout' });
    expect(received.filter((r) => r.path === '/hang')).toHaveLength(1);
    await call(sdkFor(), 'event.unbind', { event: 'ONCRMLEADADD', handler: `${appUrl}/hang` });
  });
});

describe('robots', () => {
  it('runs the robots put on a stage when a deal enters it, and waits for bizproc.event.send', async () => {
    const b24 = sdkFor();
    await call(b24, 'bizproc.robot.add', {
      CODE: 'outbound_accrue',
      HANDLER: `${appUrl}/robots/accrue`,
      AUTH_USER_ID: 1,
      NAME: 'Начислить',
      USE_SUBSCRIPTION: 'Y',
      PROPERTIES: { amount: { Name: 'Сумма', Type: 'double' } },
      RETURN_PROPERTIES: { balance: { Name: 'Баланс', Type: 'double' } },
      DOCUMENT_TYPE: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    await call(b24, 'bizproc.robot.add', {
      CODE: 'outbound_second',
      HANDLER: `${appUrl}/robots/second`,
      AUTH_USER_ID: 1,
      NAME: 'Второй',
      USE_SUBSCRIPTION: 'N',
      DOCUMENT_TYPE: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    portal().addStageRobot({ clientId: CLIENT_ID, code: 'outbound_accrue', documentType: 'DEAL', stageId: 'EXECUTING', properties: { amount: '{=Document:OPPORTUNITY}' } });
    portal().addStageRobot({ clientId: CLIENT_ID, code: 'outbound_second', documentType: 'DEAL', stageId: 'EXECUTING', properties: {} });

    const deal = portal().addEntity('deal', { TITLE: 'Робот', OPPORTUNITY: 1500 }, manager);
    portal().updateEntity('deal', deal, { STAGE_ID: 'EXECUTING' }, manager);
    const robotDeliveries = () => sandbox.outbound.deliveries.filter((d) => d.event.startsWith('robot:'));
    // Once the first call is answered, a chain that did not wait would start the second at once.
    await until(() => robotDeliveries()[0]?.status === 200);
    await clock.advance(4_950);
    expect(robotDeliveries().map((d) => d.event)).toEqual(['robot:outbound_accrue']);
    const calls = () => received.filter((r) => r.path.startsWith('/robots/'));
    expect(calls().map((c) => c.path)).toEqual(['/robots/accrue']); // the second waits for the first
    const robot = calls()[0]!.body;
    expect(robot).toMatchObject({
      code: 'outbound_accrue',
      document_id: ['crm', 'CCrmDocumentDeal', `DEAL_${deal}`],
      document_type: ['crm', 'CCrmDocumentDeal', 'DEAL'],
      properties: { amount: '1500.00' },
      use_subscription: 'Y',
      auth: { user_id: '1', application_token: portal().app(CLIENT_ID)!.applicationToken },
    });
    expect(portal().robotRuns().find((r) => r.eventToken === robot.event_token)?.status).toBe('waiting');

    await call(b24, 'bizproc.event.send', { EVENT_TOKEN: robot.event_token, RETURN_VALUES: { balance: '150' }, LOG_MESSAGE: 'Начислено' });
    // The portal looks for the answer every 50 ms of its time.
    await clock.advance(50);
    await sandbox.outbound.idle();
    expect(calls().map((c) => c.path)).toEqual(['/robots/accrue', '/robots/second']);
    const run = portal().robotRuns().find((r) => r.eventToken === robot.event_token)!;
    expect(run).toMatchObject({ status: 'done', returnValues: { balance: '150' } });
    // A token answers once.
    await expect(call(b24, 'bizproc.event.send', { EVENT_TOKEN: robot.event_token, RETURN_VALUES: {} })).rejects.toThrow();
  });

  it('a robot left unanswered holds the chain for robotWaitMs of the portal’s time, then the next one runs', async () => {
    const before = sandbox.outbound.deliveries.length;
    const robotDeliveries = () => sandbox.outbound.deliveries.slice(before).filter((d) => d.event.startsWith('robot:'));
    const deal = portal().addEntity('deal', { TITLE: 'Без ответа', OPPORTUNITY: 10 }, manager);
    portal().updateEntity('deal', deal, { STAGE_ID: 'EXECUTING' }, manager);
    await until(() => robotDeliveries()[0]?.status === 200);
    await clock.advance(4_999);
    expect(robotDeliveries().map((d) => d.event)).toEqual(['robot:outbound_accrue']);
    await clock.advance(1);
    await sandbox.outbound.idle();
    expect(robotDeliveries().map((d) => d.event)).toEqual(['robot:outbound_accrue', 'robot:outbound_second']);
    const runs = portal().robotRuns().filter((r) => r.document.id === deal);
    expect(runs.map((r) => [r.code, r.status])).toEqual([
      ['outbound_accrue', 'waiting'],
      ['outbound_second', 'done'],
    ]);
  });
});

describe('a robot chain', () => {
  let status: number;
  let redeem: number;
  const robotCalls = () => received.filter((r) => r.path.startsWith('/chain/'));
  const delivered = (code: string) => sandbox.outbound.deliveries.filter((d) => d.event === `robot:${code}`);
  /** The portal has the app's 200 for the latest call of `code`: it now waits for the answer on its clock. */
  const takenCalls = (code: string, n: number) => until(() => delivered(code).length >= n && delivered(code)[n - 1]!.status === 200);

  beforeAll(async () => {
    const b24 = sdkFor();
    await call(b24, 'bizproc.robot.add', {
      CODE: 'chain_status',
      HANDLER: `${appUrl}/chain/status`,
      AUTH_USER_ID: 1,
      NAME: 'Статус',
      USE_SUBSCRIPTION: 'Y',
      RETURN_PROPERTIES: { balance: { Name: 'Баланс', Type: 'double' }, tier: { Name: 'Уровень', Type: 'string' } },
      DOCUMENT_TYPE: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    await call(b24, 'bizproc.robot.add', {
      CODE: 'chain_redeem',
      HANDLER: `${appUrl}/chain/redeem`,
      AUTH_USER_ID: 1,
      NAME: 'Списать',
      USE_SUBSCRIPTION: 'Y',
      PROPERTIES: { amount: { Name: 'Сумма', Type: 'double' }, note: { Name: 'Заметка', Type: 'string' } },
      RETURN_PROPERTIES: { redeemed: { Name: 'Списано', Type: 'double' } },
      DOCUMENT_TYPE: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    status = portal().addStageRobot({ clientId: CLIENT_ID, code: 'chain_status', documentType: 'DEAL', stageId: 'PREPARATION', properties: {} }).id;
    redeem = portal().addStageRobot({
      clientId: CLIENT_ID,
      code: 'chain_redeem',
      documentType: 'DEAL',
      stageId: 'PREPARATION',
      properties: { amount: '', note: '{=A' + status + ':tier}: {=A' + status + ':balance} на {=Document:TITLE}' },
      condition: { operand: `{=A${status}:balance}`, operator: '>', value: '1000' },
    }).id;
  });

  /** Moves a new deal into the chain's stage and answers the status robot with `balance`. */
  async function enterWithBalance(title: string, balance: string): Promise<{ deal: number; statusToken: string }> {
    const before = robotCalls().length;
    const calls = delivered('chain_status').length;
    const deal = portal().addEntity('deal', { TITLE: title, OPPORTUNITY: 5000 }, manager);
    portal().updateEntity('deal', deal, { STAGE_ID: 'PREPARATION' }, manager);
    await takenCalls('chain_status', calls + 1);
    const first = robotCalls()[before]!;
    expect(first.path).toBe('/chain/status');
    // The token names the robot's activity, as Bitrix24's does (…|A51601_82584_96831_81132|…).
    expect(String(first.body.event_token).split('|')[1]).toBe(`A${status}`);
    await call(sdkFor(), 'bizproc.event.send', { EVENT_TOKEN: first.body.event_token, RETURN_VALUES: { balance, tier: 'Gold' } });
    await clock.advance(50);
    return { deal, statusToken: String(first.body.event_token) };
  }

  it('the next robot waits for the answer, then gets the values it returned in its properties, in the same workflow', async () => {
    const redeemCalls = delivered('chain_redeem').length;
    const { deal, statusToken } = await enterWithBalance('Кухня', '1500.00');
    await takenCalls('chain_redeem', redeemCalls + 1);
    const second = robotCalls().find((c) => c.path === '/chain/redeem' && (c.body.document_id as string[])[2] === `DEAL_${deal}`)!;
    const first = robotCalls().find((c) => c.body.event_token === statusToken)!;
    // An empty property goes as empty text, as Bitrix24 sends an unfilled one.
    expect(second.body).toMatchObject({ code: 'chain_redeem', properties: { amount: '', note: 'Gold: 1500.00 на Кухня' }, workflow_id: first.body.workflow_id });
    await call(sdkFor(), 'bizproc.event.send', { EVENT_TOKEN: second.body.event_token, RETURN_VALUES: { redeemed: '500.00' } });
    await clock.advance(50);
    await sandbox.outbound.idle();
    const runs = portal().robotRuns().filter((r) => r.document.id === deal);
    expect(runs.map((r) => [r.activity, r.status, r.returnValues])).toEqual([
      [`A${status}`, 'done', { balance: '1500.00', tier: 'Gold' }],
      [`A${redeem}`, 'done', { redeemed: '500.00' }],
    ]);
    expect(runs[1]!.properties).toEqual({ amount: '', note: 'Gold: 1500.00 на Кухня' });
  });

  it('a robot whose condition is false when its turn comes is skipped and logged, and not called', async () => {
    const redeemCalls = delivered('chain_redeem').length;
    const { deal } = await enterWithBalance('Стул', '999.99');
    await sandbox.outbound.idle();
    expect(robotCalls().filter((c) => (c.body.document_id as string[])[2] === `DEAL_${deal}`).map((c) => c.path)).toEqual(['/chain/status']);
    const runs = portal().robotRuns().filter((r) => r.document.id === deal);
    expect(runs.map((r) => [r.activity, r.status])).toEqual([
      [`A${status}`, 'done'],
      [`A${redeem}`, 'skipped'],
    ]);
    expect(runs[1]!.log).toEqual(['Условие не выполнено: 999.99 > 1000 — робот пропущен']);
    expect(delivered('chain_redeem')).toHaveLength(redeemCalls);
  });
});

describe('uninstall', () => {
  it('posts ONAPPUNINSTALL without tokens with CLEAN, then drops the bindings', async () => {
    await call(sdkFor(), 'event.bind', { event: 'ONAPPUNINSTALL', handler: `${appUrl}/events` });
    const appToken = portal().app(CLIENT_ID)!.applicationToken;
    await sandbox.outbound.uninstall(CLIENT_ID, true);
    const [e] = eventsOf('ONAPPUNINSTALL');
    expect(e!.body).toMatchObject({ data: { CLEAN: '1' }, auth: { application_token: appToken, member_id: portal().memberId } });
    expect((e!.body.auth as Row).access_token).toBeUndefined();
    expect(portal().eventBindings().filter((b) => b.clientId === CLIENT_ID)).toEqual([]);
    expect(portal().app(CLIENT_ID)?.installed).toBe(false);
    received.length = 0;
    portal().addEntity('deal', { TITLE: 'после' }, manager);
    await sandbox.outbound.idle();
    expect(received).toEqual([]);
  });
});
