/**
 * Installation health against the sandbox portal over real HTTP (issue 12: "a field deleted by
 * hand on the portal is shown missing and restored by repair"). An admin deletes one of
 * Sarafan's user fields through the portal's own REST API; GET /api/health shows it absent;
 * POST /api/health/repair puts it back on the portal and lists it in `repaired`; the health
 * afterwards has everything present.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENT_ID } from '../../server/demo/sandbox-demo.js';
import { healthAnswerSchema, repairAnswerSchema, type HealthAnswer } from '../../src/contract/admin.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
let adminToken: string;
const FIELD = 'UF_CRM_SARAFAN_REWARD';

beforeAll(async () => {
  live = await startLive();
  // The portal's administrator (user 1), as the frame would get their token.
  adminToken = live.sandbox.portal.issueTokens(DEMO_CLIENT_ID, 1).accessToken;
});

afterAll(async () => {
  await live?.close();
});

async function api(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${live.sarafanUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'X-Sarafan-Portal': live.sandbox.portal.memberId },
  });
  return { status: res.status, body: await res.json() };
}

/** A REST call to the sandbox as the admin, the way a person with a webhook would make it. */
async function rest(method: string, params: Record<string, unknown>): Promise<unknown> {
  const res = await fetch(`${live.sandbox.url}/rest/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...params, auth: adminToken }),
  });
  const body = (await res.json()) as { result?: unknown; error?: string };
  if (!res.ok || body.error) throw new Error(`${method}: ${res.status} ${JSON.stringify(body)}`);
  return body.result;
}

const dealFieldNames = () => live.sandbox.portal.userFields('deal').map((u) => String(u.FIELD_NAME));
const absent = (h: HealthAnswer) => (h.registration ?? []).filter((i) => !i.present).map((i) => i.name);

describe('installation health on the sandbox portal', () => {
  it('shows a field deleted by hand as missing, and repair restores it on the portal', async () => {
    const before = await api('GET', '/api/health');
    expect(before.status).toBe(200);
    expect(absent(healthAnswerSchema.parse(before.body))).toEqual([]);

    const field = (await rest('crm.deal.userfield.list', { filter: { FIELD_NAME: FIELD } })) as { ID: string }[];
    expect(field).toHaveLength(1);
    expect(await rest('crm.deal.userfield.delete', { id: field[0]!.ID })).toBe(true);
    expect(dealFieldNames()).not.toContain(FIELD);

    const broken = await api('GET', '/api/health');
    expect(broken.status).toBe(200);
    const brokenHealth = healthAnswerSchema.parse(broken.body);
    expect(brokenHealth.registrationError).toBeNull();
    expect(absent(brokenHealth)).toEqual([`${FIELD} (deal)`]);
    // Reading the health wrote nothing: the field is still gone.
    expect(dealFieldNames()).not.toContain(FIELD);

    const repair = await api('POST', '/api/health/repair');
    expect(repair.status).toBe(200);
    const answer = repairAnswerSchema.parse(repair.body);
    expect(answer.repaired).toEqual([{ kind: 'field', name: `${FIELD} (deal)` }]);
    expect(absent(answer.health)).toEqual([]);
    expect(dealFieldNames()).toContain(FIELD);
    const restored = live.sandbox.portal.userFields('deal').find((u) => u.FIELD_NAME === FIELD)!;
    expect([restored.USER_TYPE_ID, restored.XML_ID]).toEqual(['double', FIELD.toLowerCase()]);

    const after = await api('GET', '/api/health');
    expect(after.status).toBe(200);
    const healthAfter = healthAnswerSchema.parse(after.body);
    expect(healthAfter.registration!.every((i) => i.present && i.problem === null)).toBe(true);
    await live.settle();
  });
});
