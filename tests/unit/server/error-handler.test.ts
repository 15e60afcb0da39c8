import express, { type Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, type ErrorCode } from '../../../src/handlers/errors.js';
import { appErrorFromHttpError, errorHandler, httpStatusFor, notFound, requestId } from '../../../server/middleware/error-handler.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function recordingLog() {
  const entries: Array<{ level: 'warn' | 'error'; fields: Record<string, unknown>; msg: string }> = [];
  return {
    entries,
    warn: (fields: Record<string, unknown>, msg: string) => void entries.push({ level: 'warn', fields, msg }),
    error: (fields: Record<string, unknown>, msg: string) => void entries.push({ level: 'error', fields, msg }),
  };
}

function appThrowing(error: unknown, log = recordingLog()): { app: Express; log: ReturnType<typeof recordingLog> } {
  const app = express();
  app.use(requestId());
  app.get('/sync', () => {
    throw error;
  });
  app.get('/async', async () => {
    await Promise.resolve();
    throw error;
  });
  app.get('/partial', (_req, res) => {
    res.status(200).write('partial');
    throw error;
  });
  app.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(notFound);
  app.use(errorHandler(log));
  return { app, log };
}

describe('httpStatusFor', () => {
  const table: Record<ErrorCode, number> = {
    bad_request: 400,
    unauthorized: 401,
    forbidden: 403,
    not_found: 404,
    conflict: 409,
    payload_too_large: 413,
    install_unverified: 401,
    insecure_portal: 400,
    portal_error: 502,
    portal_unavailable: 503,
    internal: 500,
  };

  it.each(Object.entries(table))('maps %s to %i', (code, status) => {
    expect(httpStatusFor(code as ErrorCode)).toBe(status);
  });

  it('covers every error code', () => {
    expect(Object.keys(table).sort()).toEqual([...ERROR_CODES].sort());
  });
});

describe('errorHandler', () => {
  it.each(ERROR_CODES.filter((c) => c !== 'internal'))('answers AppError %s with its status and the error shape', async (code) => {
    const details = [{ path: 'data.FIELDS.ID', message: 'expected a positive integer' }];
    const { app } = appThrowing(new AppError(code, `failed: ${code}`, details));
    const res = await request(app).get('/async');
    expect(res.status).toBe(httpStatusFor(code));
    expect(res.body).toEqual({ error: { code, message: `failed: ${code}`, details, requestId: res.headers['x-request-id'] } });
  });

  it('answers an unknown error with 500, a generic message and the request id, and logs the stack', async () => {
    const { app, log } = appThrowing(new TypeError('cannot read x of undefined; access_token=leaky-token-123'));
    const res = await request(app).get('/sync').expect(500);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'Internal server error', details: [], requestId: id } });
    expect(JSON.stringify(res.body)).not.toContain('cannot read');
    expect(log.entries).toHaveLength(1);
    const [entry] = log.entries;
    expect(entry).toMatchObject({ level: 'error', msg: 'http.unhandled_error', fields: { requestId: id, status: 500, method: 'GET', path: '/sync' } });
    const err = entry!.fields.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('TypeError');
    expect(err.stack).toContain('TypeError: cannot read x of undefined');
    expect(JSON.stringify(entry)).not.toContain('leaky-token-123');
  });

  it('answers AppError internal like an unknown error', async () => {
    const { app } = appThrowing(new AppError('internal', 'store exploded at row 5'));
    const res = await request(app).get('/sync').expect(500);
    expect(res.body.error).toMatchObject({ code: 'internal', message: 'Internal server error' });
  });

  it('handles thrown non-errors', async () => {
    const { app, log } = appThrowing('a string');
    const res = await request(app).get('/async').expect(500);
    expect(res.body.error.code).toBe('internal');
    expect(log.entries[0]?.level).toBe('error');
  });

  it('logs 4xx as warnings and 5xx AppErrors as errors', async () => {
    const rejected = appThrowing(new AppError('conflict', 'insufficient balance'));
    await request(rejected.app).get('/sync').expect(409);
    expect(rejected.log.entries).toMatchObject([{ level: 'warn', msg: 'http.rejected', fields: { code: 'conflict', status: 409 } }]);

    const failed = appThrowing(new AppError('portal_unavailable', 'portal did not answer'));
    await request(failed.app).get('/sync').expect(503);
    expect(failed.log.entries).toMatchObject([{ level: 'error', msg: 'http.failed', fields: { code: 'portal_unavailable', status: 503 } }]);
  });

  it('masks secrets in error messages sent to the client', async () => {
    const { app } = appThrowing(new AppError('portal_error', 'crm.deal.get failed: auth=abc access_token=t0k3n-9'));
    const res = await request(app).get('/sync').expect(502);
    expect(res.body.error.message).not.toContain('t0k3n-9');
  });

  it('maps client http-errors (status 4xx, expose) to 4xx, never 500', async () => {
    const malformed = Object.assign(new Error('Failed to decode param %E0%A4%A'), { status: 400, expose: true });
    const { app } = appThrowing(malformed);
    const res = await request(app).get('/sync').expect(400);
    expect(res.body.error.code).toBe('bad_request');
  });

  it('hands errors after the headers were sent to Express', async () => {
    const { app, log } = appThrowing(new Error('late'));
    await request(app)
      .get('/partial')
      .catch(() => undefined);
    expect(log.entries[0]).toMatchObject({ level: 'error', msg: 'http.error_after_headers' });
  });
});

describe('notFound', () => {
  it('answers 404 in the error shape', async () => {
    const { app } = appThrowing(new Error('unused'));
    const res = await request(app).get('/nowhere').expect(404);
    expect(res.body).toEqual({
      error: { code: 'not_found', message: 'No route for GET /nowhere', details: [], requestId: res.headers['x-request-id'] },
    });
  });
});

describe('requestId', () => {
  it('gives each request a fresh UUID in X-Request-Id', async () => {
    const { app } = appThrowing(new Error('unused'));
    const a = await request(app).get('/ok').expect(200);
    const b = await request(app).get('/ok').expect(200);
    expect(a.headers['x-request-id']).toMatch(UUID);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('echoes an acceptable incoming id and replaces an unsafe one', async () => {
    const { app } = appThrowing(new Error('unused'));
    const kept = await request(app).get('/ok').set('X-Request-Id', 'lb-7f3a9c21-0001').expect(200);
    expect(kept.headers['x-request-id']).toBe('lb-7f3a9c21-0001');
    const replaced = await request(app).get('/ok').set('X-Request-Id', 'x"><script>').expect(200);
    expect(replaced.headers['x-request-id']).toMatch(UUID);
  });
});

describe('appErrorFromHttpError', () => {
  it.each([
    [{ status: 413, expose: true, type: 'entity.too.large' }, 'payload_too_large'],
    [{ status: 400, expose: true, type: 'entity.parse.failed', message: 'Unexpected token } in "{"access_token":"x"' }, 'bad_request'],
    [{ status: 415, expose: true, type: 'encoding.unsupported', message: 'unsupported content encoding "br2"' }, 'bad_request'],
    [{ status: 404, expose: true }, 'not_found'],
    [{ statusCode: 403, expose: true }, 'forbidden'],
  ])('maps %o to %s', (err, code) => {
    expect(appErrorFromHttpError(Object.assign(new Error(String((err as { message?: string }).message ?? 'x')), err))?.code).toBe(code);
  });

  it('never echoes a JSON parser message', () => {
    const err = Object.assign(new SyntaxError('Unexpected token in "{"access_token":"s3cr3t"'), { status: 400, expose: true, type: 'entity.parse.failed' });
    expect(appErrorFromHttpError(err)?.message).toBe('Malformed JSON body');
  });

  it('leaves server errors and plain errors alone', () => {
    expect(appErrorFromHttpError(Object.assign(new Error('x'), { status: 500, expose: false }))).toBeNull();
    expect(appErrorFromHttpError(new Error('x'))).toBeNull();
    expect(appErrorFromHttpError(new AppError('conflict', 'x'))).toBeNull();
    expect(appErrorFromHttpError(null)).toBeNull();
  });
});
