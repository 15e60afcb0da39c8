/**
 * GET /api/program/versions through createApp: admins only, newest first, each version with who
 * saved it, when (the injected clock), and its changes against the version before.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programVersionsAnswerSchema } from '../../src/contract/admin.js';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
let now = new Date('2026-12-03T09:00:00.000Z');
const ADMIN = 'user-token-admin-0001';
const OTHER_ADMIN = 'user-token-admin-0003';
const MANAGER = 'user-token-manager-0002';
const FORM = 'application/x-www-form-urlencoded';

function api(method: 'get' | 'put', path: string, token: string) {
  return request(h.app)[method](path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);
}

const program = (): Program => structuredClone(DEFAULT_PROGRAM) as Program;

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(now.getTime()) } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(OTHER_ADMIN, { ID: '12', ADMIN: true, NAME: 'Второй админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
});

afterAll(async () => {
  await h.close();
});

describe('GET /api/program/versions', () => {
  it('refuses a non-admin (403) and a caller without credentials (401)', async () => {
    expect((await api('get', '/api/program/versions', MANAGER)).status).toBe(403);
    expect((await request(h.app).get('/api/program/versions')).status).toBe(401);
  });

  it('lists versions newest first with who, when and what changed', async () => {
    const pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
    const first = await api('get', '/api/program/versions', ADMIN);
    expect(first.status).toBe(200);
    // The default program is version 1, created by nobody, with nothing before it.
    expect(first.body.versions).toEqual([{ version: 1, createdAt: expect.any(String), createdBy: null, changes: [] }]);

    now = new Date('2026-12-04T10:00:00.000Z');
    const v2 = program();
    v2.referral.levels = [{ percent: 10 }, { percent: 5 }];
    v2.referral.referee = { fixed: 500 };
    expect((await api('put', '/api/program', ADMIN).send(v2)).body.version).toBe(2);

    now = new Date('2026-12-05T11:30:00.000Z');
    const v3 = structuredClone(v2);
    v3.referral.levels = [{ percent: 12 }];
    v3.landingUrl = 'https://shop.example/';
    expect((await api('put', '/api/program', OTHER_ADMIN).send(v3)).body.version).toBe(3);

    const res = await api('get', '/api/program/versions', ADMIN);
    expect(res.status).toBe(200);
    const answer = programVersionsAnswerSchema.parse(res.body);
    expect(answer.versions.map((v) => [v.version, v.createdAt, v.createdBy])).toEqual([
      [3, '2026-12-05T11:30:00.000Z', 12],
      [2, '2026-12-04T10:00:00.000Z', 1],
      [1, first.body.versions[0].createdAt, null],
    ]);
    expect(answer.versions[0]!.changes).toEqual([
      { path: 'referral.levels.0.percent', from: 10, to: 12 },
      { path: 'referral.levels.1', from: { percent: 5 } },
      { path: 'landingUrl', from: null, to: 'https://shop.example/' },
    ]);
    expect(answer.versions[1]!.changes).toEqual([
      { path: 'referral.levels.1', to: { percent: 5 } },
      { path: 'referral.referee', from: null, to: { fixed: 500 } },
    ]);
    expect(answer.versions[2]!.changes).toEqual([]);
    // The answer is what the store holds: three versions of this portal, nothing else written.
    expect((await h.store.programs.list(pid, 50)).map((v) => v.version)).toEqual([3, 2, 1]);
  });

  it('shows at most 50 versions, the oldest shown still diffed against the one before it', async () => {
    const pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
    for (let hold = 1; hold <= 50; hold++) {
      const doc = program();
      doc.referral.holdDays = hold;
      await h.store.programs.create(pid, doc, 1, now);
    }
    const res = await api('get', '/api/program/versions', ADMIN);
    const answer = programVersionsAnswerSchema.parse(res.body);
    expect(answer.versions).toHaveLength(50);
    expect(answer.versions[0]!.version).toBe(53);
    expect(answer.versions[49]!.version).toBe(4);
    expect(answer.versions[49]!.changes).toContainEqual({ path: 'referral.holdDays', from: 0, to: 1 });
  });
});
