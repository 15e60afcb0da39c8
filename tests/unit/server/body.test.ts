import express, { type Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import qs from 'qs';
import { BODY_LIMIT_BYTES, bitrixBody, MAX_DEPTH, MAX_PARAMETERS, parseSimpleForm, QS_OPTIONS, queryParser } from '../../../server/middleware/body.js';
import { errorHandler, requestId } from '../../../server/middleware/error-handler.js';

const silent = { warn: () => {}, error: () => {} };

function echoApp(): Express {
  const app = express();
  app.set('query parser', queryParser);
  app.use(requestId());
  app.post('/echo', bitrixBody(), (req, res) => {
    res.json({ body: req.body ?? null, query: req.query });
  });
  app.get('/query', (req, res) => {
    res.json({ query: req.query });
  });
  app.use(errorHandler(silent));
  return app;
}

const app = echoApp();
const FORM = 'application/x-www-form-urlencoded';

function expectErrorShape(res: request.Response, code: string): void {
  expect(res.body).toEqual({
    error: { code, message: expect.any(String), details: expect.any(Array), requestId: res.headers['x-request-id'] },
  });
}

const nested = (depth: number): string => `a${'[x]'.repeat(depth)}=1`;

describe('bitrixBody: form bodies', () => {
  it('builds nested objects and arrays from bracket keys (reference 4.2, 8.2)', async () => {
    const body = [
      'event=ONCRMDEALUPDATE',
      'data[FIELDS][ID]=759',
      'ts=1736405807',
      'auth[member_id]=a223c4',
      'auth[domain]=acme.bitrix24.ru',
      'document_id[0]=crm',
      'document_id[1]=CCrmDocumentDeal',
      'document_id[2]=DEAL_123',
      'properties[amount]=1500.00',
      'auth%5Bscope%5D=crm%2Cbizproc',
    ].join('&');
    const res = await request(app).post('/echo').type(FORM).send(body).expect(200);
    expect(res.body.body).toEqual({
      event: 'ONCRMDEALUPDATE',
      data: { FIELDS: { ID: '759' } },
      ts: '1736405807',
      auth: { member_id: 'a223c4', domain: 'acme.bitrix24.ru', scope: 'crm,bizproc' },
      document_id: ['crm', 'CCrmDocumentDeal', 'DEAL_123'],
      properties: { amount: '1500.00' },
    });
  });

  it('parses bracket keys in the query string with the same settings', async () => {
    const res = await request(app).get('/query?DOMAIN=acme.bitrix24.ru&PLACEMENT_OPTIONS[ID]=8061&ids[]=1&ids[]=2').expect(200);
    expect(res.body.query).toEqual({ DOMAIN: 'acme.bitrix24.ru', PLACEMENT_OPTIONS: { ID: '8061' }, ids: ['1', '2'] });
  });

  it(`accepts exactly ${MAX_DEPTH} levels of nesting`, async () => {
    const res = await request(app).post('/echo').type(FORM).send(nested(MAX_DEPTH)).expect(200);
    let node: unknown = res.body.body.a;
    for (let i = 0; i < MAX_DEPTH; i++) node = (node as Record<string, unknown>).x;
    expect(node).toBe('1');
  });

  it.each([MAX_DEPTH + 1, 20])('rejects %i levels of nesting with 400, not a flattened key', async (depth) => {
    const res = await request(app).post('/echo').type(FORM).send(nested(depth)).expect(400);
    expectErrorShape(res, 'bad_request');
    expect(res.body.error.message).toMatch(/deeper than 8 levels/);
    expect(res.body.error.details).toEqual([{ path: 'body', message: expect.stringMatching(/nesting/) }]);
  });

  it(`accepts ${MAX_PARAMETERS} parameters and rejects 5000 with 400, not truncation`, async () => {
    const params = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=${i}`).join('&');
    const ok = await request(app).post('/echo').type(FORM).send(params(MAX_PARAMETERS)).expect(200);
    expect(Object.keys(ok.body.body)).toHaveLength(MAX_PARAMETERS);
    const res = await request(app).post('/echo').type(FORM).send(params(5000)).expect(400);
    expectErrorShape(res, 'bad_request');
    expect(res.body.error.message).toMatch(/more than 1000 parameters/);
  });

  it('rejects an array index past the limit instead of turning the array into an object', async () => {
    const res = await request(app).post('/echo').type(FORM).send('document_id[5000]=DEAL_1').expect(400);
    expectErrorShape(res, 'bad_request');
  });

  it('answers 413 for a body over 1 MB', async () => {
    const res = await request(app)
      .post('/echo')
      .type(FORM)
      .send(`big=${'a'.repeat(BODY_LIMIT_BYTES + 1)}`)
      .expect(413);
    expectErrorShape(res, 'payload_too_large');
    expect(res.body.error.message).toMatch(/1 MB/);
  });

  it('drops prototype keys', async () => {
    const res = await request(app).post('/echo').type(FORM).send('__proto__[polluted]=1&constructor[prototype][x]=1&ok=1').expect(200);
    expect(res.body.body).toEqual({ ok: '1' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects an unsupported charset with 400', async () => {
    const res = await request(app).post('/echo').set('Content-Type', `${FORM}; charset=koi8-r`).send('a=1').expect(400);
    expectErrorShape(res, 'bad_request');
  });

  it('reads iso-8859-1 forms', async () => {
    const res = await request(app).post('/echo').set('Content-Type', `${FORM}; charset=iso-8859-1`).send('name=Caf%E9').expect(200);
    expect(res.body.body).toEqual({ name: 'Café' });
  });
});

describe('bitrixBody: JSON bodies', () => {
  it('parses JSON', async () => {
    const res = await request(app).post('/echo').send({ amount: 150.5, comment: 'gift', tags: ['a'] }).expect(200);
    expect(res.body.body).toEqual({ amount: 150.5, comment: 'gift', tags: ['a'] });
  });

  it('answers 400 for malformed JSON without echoing the body', async () => {
    const res = await request(app).post('/echo').type('application/json').send('{"access_token":"s3cr3t-value", nope}').expect(400);
    expectErrorShape(res, 'bad_request');
    expect(JSON.stringify(res.body)).not.toContain('s3cr3t-value');
  });

  it('answers 413 for JSON over 1 MB', async () => {
    const res = await request(app)
      .post('/echo')
      .type('application/json')
      .send(JSON.stringify({ big: 'a'.repeat(BODY_LIMIT_BYTES) }))
      .expect(413);
    expectErrorShape(res, 'payload_too_large');
  });

  it('rejects JSON nested deeper than the limit, naming where', async () => {
    const deep = (n: number): unknown => (n === 0 ? 1 : { x: deep(n - 1) });
    // The same bound as a form: `a[x]…[x]=1` with MAX_DEPTH brackets is `{ a: deep(MAX_DEPTH) }`.
    await request(app).post('/echo').send({ a: deep(MAX_DEPTH) }).expect(200);
    await request(app).post('/echo').send({ a: deep(MAX_DEPTH + 1) }).expect(400);
    const res = await request(app).post('/echo').send({ a: deep(20) }).expect(400);
    expectErrorShape(res, 'bad_request');
    expect(res.body.error.details[0].path).toBe(`a${'.x'.repeat(MAX_DEPTH)}`);
  });

  it('rejects deeply nested arrays too', async () => {
    const res = await request(app).post('/echo').type('application/json').send(`${'['.repeat(5000)}${']'.repeat(5000)}`).expect(400);
    expectErrorShape(res, 'bad_request');
  });
});

describe('bitrixBody: other requests', () => {
  it('leaves other content types unparsed', async () => {
    const res = await request(app).post('/echo').type('text/plain').send('hello').expect(200);
    expect(res.body.body).toBeNull();
  });

  it('answers 413 for a body of another type over 1 MB', async () => {
    const res = await request(app).post('/echo').type('application/octet-stream').send(Buffer.alloc(BODY_LIMIT_BYTES + 1)).expect(413);
    expectErrorShape(res, 'payload_too_large');
  });

  it('refuses a compressed body with 400 naming content-encoding', async () => {
    const res = await request(app).post('/echo').type(FORM).set('Content-Encoding', 'gzip').send('a=1').expect(400);
    expectErrorShape(res, 'bad_request');
    expect(res.body.error.details).toEqual([{ path: 'content-encoding', message: 'must be identity' }]);
  });

  it('reads the body once: a second bitrixBody on the route is a no-op', async () => {
    const twice = express();
    twice.use(bitrixBody());
    twice.post('/echo', bitrixBody(), (req, res) => {
      res.json({ body: req.body ?? null });
    });
    const res = await request(twice).post('/echo').type(FORM).send('a[b]=1').expect(200);
    expect(res.body.body).toEqual({ a: { b: '1' } });
  });
});

describe('queryParser', () => {
  it('answers 400 for a query nested too deep', async () => {
    const res = await request(app).get(`/query?${nested(20)}`).expect(400);
    expectErrorShape(res, 'bad_request');
    expect(res.body.error.details).toEqual([{ path: 'query', message: expect.stringMatching(/nesting/) }]);
  });

  it('handles an absent query', () => {
    expect(queryParser(undefined)).toEqual({});
    expect(queryParser('')).toEqual({});
  });
});

describe('parseSimpleForm: the fast path of form bodies', () => {
  const parse = (text: string) => qs.parse(text, { ...QS_OPTIONS, charset: 'utf-8' });

  it('parses an event as qs does', () => {
    const body =
      'event=ONCRMDEALUPDATE&event_handler_id=12&data%5BFIELDS%5D%5BID%5D=759&ts=1736405807&auth%5Bdomain%5D=acme.bitrix24.ru&auth[member_id]=a+b%20c&auth[application_token]=t%C3%A9';
    expect(parseSimpleForm(body)).toEqual(parse(body));
    expect(parseSimpleForm(body)).toMatchObject({ data: { FIELDS: { ID: '759' } }, auth: { member_id: 'a b c', application_token: 'té' } });
  });

  it.each([
    ['array indices', 'document_id[0]=crm&document_id[1]=x'],
    ['empty brackets', 'ids[]=1&ids[]=2'],
    ['a duplicate key', 'a=1&a=2'],
    ['a value that is also an object', 'a=1&a[b]=2'],
    ['an object that is also a value', 'a[b]=2&a=1'],
    ['a prototype name', 'auth[__proto__]=x'],
    ['an empty parameter', 'a=1&&b=2'],
    ['a key deeper than the limit', `a${'[x]'.repeat(MAX_DEPTH + 1)}=1`],
    ['too many parameters', Array.from({ length: MAX_PARAMETERS + 1 }, (_, i) => `k${i}=1`).join('&')],
    ['a malformed key', 'a[b=1'],
  ])('leaves %s to qs', (_what, body) => {
    expect(parseSimpleForm(body)).toBeNull();
  });

  it('answers as qs does, or leaves the body to qs, for any body', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9_%+.~-]{1,6}$/);
    const key = fc.tuple(name, fc.array(fc.oneof({ arbitrary: name, weight: 12 }, { arbitrary: fc.constantFrom('', '0', '__proto__'), weight: 1 }), { maxLength: 10 })).map(([first, rest]) => first + rest.map((s) => `[${s}]`).join(''));
    const value = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9%+=&[\] é-]{0,8}$/).map(encodeURIComponent), fc.stringMatching(/^[a-z0-9+%=]{0,6}$/));
    const part = fc.tuple(key, fc.option(value, { nil: undefined })).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
        const body = parts.join('&');
        const fast = parseSimpleForm(body);
        let slow: unknown;
        try {
          slow = parse(body);
        } catch {
          // qs refuses it: the fast path must not have accepted it.
          expect(fast).toBeNull();
          return;
        }
        if (fast !== null) {
          accepted++;
          expect(fast).toEqual(slow);
        }
      }),
      { numRuns: 3000 },
    );
    // The fast path answered a good share of them (else this compares nothing).
    expect(accepted).toBeGreaterThan(300);
  });
});
