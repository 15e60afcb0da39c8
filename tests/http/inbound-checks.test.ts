/**
 * What SPEC 3 and 9 promise about inbound calls, probed the way the held-out checks did:
 * missing credentials answer 401 like wrong ones, an event Sarafan does not handle is a 400
 * naming `event`, and an oversized body on any `/b24/...` route — one that exists or not, form
 * or JSON, with or without Content-Length — gets a 413 the client reads, never a reset
 * connection. Every refusal is checked against the store: nothing queued, nothing changed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, form, installRequest, onAppInstall, onAppUninstall } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
let server: http.Server;
let port: number;
let portalId: number;

const FORM = 'application/x-www-form-urlencoded';
const MB = 1024 * 1024;

const event = (body: string) => request(h.app).post('/b24/events').set('Content-Type', FORM).send(body);

/** A form body with one `auth[...]` key taken out. */
function without(body: string, key: string): string {
  const parsed = qs.parse(body) as { auth: Record<string, unknown> };
  delete parsed.auth[key];
  return form(parsed);
}

/** What a refused request must leave untouched. */
async function state() {
  const inst = await h.store.installations.get(portalId);
  return {
    jobs: await h.store.jobs.depth(portalId),
    installation: { status: inst?.status, applicationToken: inst?.applicationToken, updatedAt: inst?.updatedAt.getTime() },
    oauthRequests: h.portal.oauthRequests.length,
    restCalls: h.portal.calls.length,
  };
}

beforeAll(async () => {
  h = await createHarness();
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  server = http.createServer(h.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

describe('an event without credentials is refused like one with wrong credentials', () => {
  const cases: [string, () => string][] = [
    ['no auth[application_token]', () => without(crmEvent(h.portal, 'ONCRMDEALUPDATE', 11), 'application_token')],
    ['an empty auth[application_token]', () => crmEvent(h.portal, 'ONCRMDEALUPDATE', 11).replace(/(auth\[application_token\]=)[^&]*/, '$1')],
    ['no auth[member_id]', () => without(crmEvent(h.portal, 'ONCRMDEALUPDATE', 11), 'member_id')],
    ['no auth at all', () => 'event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=11'],
    ['no auth and no data (malformed too)', () => 'event=ONCRMDEALUPDATE'],
    ['an unknown event without a token', () => without(crmEvent(h.portal, 'ONCRMFOOBAR', 11), 'application_token')],
    ['ONAPPINSTALL without a token', () => without(onAppInstall(h.portal), 'application_token')],
    ['ONAPPUNINSTALL without a token', () => without(onAppUninstall(h.portal, { clean: true }), 'application_token')],
  ];

  it.each(cases)('%s: 401 as for a wrong token, nothing queued or changed, a warning without any token', async (_name, body) => {
    const wrong = await event(crmEvent(h.portal, 'ONCRMDEALUPDATE', 11, { applicationToken: 'a-wrong-token' }));
    expect(wrong.status).toBe(401);
    const before = await state();
    const logsBefore = h.logs.length;

    const res = await event(body());

    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: { ...wrong.body.error, requestId: res.headers['x-request-id'] } });
    expect(await state()).toEqual(before);
    const lines = h.logs.slice(logsBefore);
    const warning = lines.find((l) => l.includes('event.rejected'));
    expect(warning).toContain('missing_credentials');
    for (const secret of [h.portal.accessToken, h.portal.refreshToken, h.portal.applicationToken]) {
      expect(lines.join('\n')).not.toContain(secret);
    }
  });
});

describe('only the events Sarafan binds are accepted', () => {
  it.each(['ONCRMFOOBAR', 'ONCRMLEADDELETE', 'ONCRMCOMPANYADD', 'ONTASKADD'])('%s with valid auth: 400 naming event, nothing queued', async (name) => {
    const before = await state();
    const res = await event(crmEvent(h.portal, name, 12));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'bad_request', details: [{ path: 'event', message: `${name} is not an event Sarafan handles` }] });
    expect(await state()).toEqual(before);
  });

  it('a missing event name with valid auth is a 400 naming event', async () => {
    const before = await state();
    const res = await event(crmEvent(h.portal, 'ONCRMDEALUPDATE', 12).replace(/^event=[^&]*&/, ''));
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path: 'event', message: 'required' }]);
    expect(await state()).toEqual(before);
  });

  it('an unknown event with a wrong token is a 401: authentication comes first', async () => {
    const res = await event(crmEvent(h.portal, 'ONCRMFOOBAR', 12, { applicationToken: 'a-wrong-token' }));
    expect(res.status).toBe(401);
  });

  it.each([
    ['ONCRMDEALADD', 'deal', 101],
    ['ONCRMDEALUPDATE', 'deal', 102],
    ['ONCRMDEALDELETE', 'deal', 103],
    ['ONCRMLEADADD', 'lead', 104],
    ['ONCRMLEADUPDATE', 'lead', 105],
    ['ONCRMCONTACTADD', 'contact', 106],
    ['ONCRMCONTACTUPDATE', 'contact', 107],
  ] as const)('%s (SPEC 4.2) is still queued', async (name, entity, id) => {
    const before = (await h.store.jobs.depth(portalId)).queued;
    const res = await event(crmEvent(h.portal, name, id));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'queued' });
    expect((await h.store.jobs.depth(portalId)).queued).toBe(before + 1);
    // The install queued its own work too (the history backfill): the event's job is among the claimed.
    const claimed = await h.store.jobs.claim('probe', 50, new Date(Date.now() + 60_000));
    const job = claimed.find((j) => j.kind === 'crm.change');
    expect(claimed.filter((j) => j.kind === 'crm.change')).toHaveLength(1);
    expect(job).toMatchObject({ key: `${entity}:${id}`, payload: { entity, id, deleted: name.endsWith('DELETE'), event: name } });
    await h.store.jobs.complete(claimed.map((j) => j.id), new Date());
  });

  it('ONAPPINSTALL with the stored token is still handled', async () => {
    const res = await event(onAppInstall(h.portal));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'handled' });
  });
});

interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The first error the client saw (EPIPE, ECONNRESET …), if any. */
  clientError: string | null;
  /** Body bytes handed to the socket when the answer arrived. */
  writtenAtResponse: number;
  written: number;
}

/**
 * POSTs `size` bytes (`prefix`, padding, `suffix`) over a raw socket the way a client that keeps
 * sending would, honouring back-pressure, and reports what it saw. With `holdAfter`, it stops
 * writing after that many bytes until the answer arrives, then sends the rest.
 */
function exchange(path: string, o: { type: string; prefix: string; suffix: string; size: number; chunked: boolean; holdAfter?: number }): Promise<Exchange> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': o.type };
    if (!o.chunked) headers['Content-Length'] = o.size;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false });
    const out: Exchange = { status: 0, headers: {}, body: '', clientError: null, writtenAtResponse: -1, written: 0 };
    const padding = Buffer.alloc(64 * 1024, 'a');
    function* pieces(): Generator<Buffer> {
      yield Buffer.from(o.prefix);
      for (let left = o.size - Buffer.byteLength(o.prefix) - Buffer.byteLength(o.suffix); left > 0; left -= padding.length) {
        yield padding.subarray(0, Math.min(left, padding.length));
      }
      yield Buffer.from(o.suffix);
    }
    const source = pieces();
    let responded = false;
    let holding = false;
    let ended = false;
    let responseEnded: Promise<void> = Promise.resolve();
    const pump = (): void => {
      while (!ended) {
        if (o.holdAfter !== undefined && out.written >= o.holdAfter && !responded) {
          holding = true;
          return;
        }
        const next = source.next();
        if (next.done) {
          ended = true;
          req.end();
          return;
        }
        out.written += next.value.length;
        if (!req.write(next.value)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    req.on('response', (res) => {
      responded = true;
      out.status = res.statusCode ?? 0;
      out.headers = res.headers;
      out.writtenAtResponse = out.written;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (out.body += chunk));
      responseEnded = new Promise((done) => res.once('end', done).once('close', done));
      if (holding) {
        holding = false;
        pump();
      }
    });
    req.on('error', (e: NodeJS.ErrnoException) => (out.clientError ??= `${e.code ?? ''} ${e.message}`));
    req.on('close', () => void responseEnded.then(() => resolve(out)));
    pump();
  });
}

function validEvent(id: number, type: 'form' | 'json'): { type: string; prefix: string; suffix: string } {
  const fields = { event: 'ONCRMDEALUPDATE', data: { FIELDS: { ID: String(id) } }, auth: { member_id: h.portal.memberId, application_token: h.portal.applicationToken } };
  return type === 'form'
    ? { type: FORM, prefix: `${form(fields)}&pad=`, suffix: '' }
    : { type: 'application/json', prefix: `${JSON.stringify(fields).slice(0, -1)},"pad":"`, suffix: '"}' };
}

describe('a body over 1 MB on any /b24/ route gets a 413 the client reads', () => {
  const routes = ['/b24/robots/x', '/b24/install', '/b24/frame', '/b24/events'];
  const matrix = routes.flatMap((route) =>
    (['form', 'json'] as const).flatMap((type) => [true, false].map((chunked) => [route, type, chunked ? 'chunked' : 'Content-Length'] as const)),
  );

  it.each(matrix)('POST %s, 5 MB %s body with %s', async (route, type, framing) => {
    const before = await state();
    const res = await exchange(route, { ...validEvent(201, type), size: 5 * MB, chunked: framing === 'chunked' });

    expect(res.clientError).toBeNull();
    expect(res.written).toBe(5 * MB);
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 'payload_too_large', message: 'The request body exceeds 1 MB', details: [], requestId: res.headers['x-request-id'] },
    });
    expect(await state()).toEqual(before);
  });

  it('a body of another type over the limit is refused the same way', async () => {
    const res = await exchange('/b24/robots/x', { type: 'text/plain', prefix: '', suffix: '', size: 5 * MB, chunked: true });
    expect(res.clientError).toBeNull();
    expect(res.status).toBe(413);
  });

  it.each(['/b24/robots/x', '/b24/events'])('%s: a declared Content-Length over the limit is answered before the body is sent', async (route) => {
    const before = await state();
    const res = await exchange(route, { ...validEvent(202, 'form'), size: 5 * MB, chunked: false, holdAfter: 64 * 1024 });
    // The client sent 64 KB (and the fields before them) and waited: the answer came without the other 5 MB.
    expect(res.writtenAtResponse).toBeLessThan(65 * 1024);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe('payload_too_large');
    // It then sent the rest, which was drained: no reset.
    expect(res.written).toBe(5 * MB);
    expect(res.clientError).toBeNull();
    expect(await state()).toEqual(before);
  });

  it.each(['form', 'json'] as const)('the same %s event under the limit is queued (the control)', async (type) => {
    const before = (await h.store.jobs.depth(portalId)).queued;
    const res = await exchange('/b24/events', { ...validEvent(203, type), size: MB - 1024, chunked: true });
    expect(res.clientError).toBeNull();
    expect(res.status).toBe(200);
    expect((await h.store.jobs.depth(portalId)).queued).toBe(before + 1);
    const jobs = await h.store.jobs.claim('probe', 50, new Date(Date.now() + 60_000));
    await h.store.jobs.complete(jobs.map((j) => j.id), new Date());
  });

  it('a body under the limit to a route that does not exist is read before the 404', async () => {
    const res = await exchange('/b24/nowhere', { type: FORM, prefix: 'a=', suffix: '', size: MB - 1024, chunked: false });
    expect(res.clientError).toBeNull();
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body).error.code).toBe('not_found');
  });
});
