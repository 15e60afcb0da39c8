/**
 * GET /r/:portal/:code through createApp: the redirect to the program's landing URL with the
 * exact Location (query merged), the page in the portal's language when there is none, 404s,
 * open-redirect and header-injection attempts, the per-address rate limit on an injected clock,
 * and the click stored with a salted hash of the address, never the address.
 */
import { createHmac } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import type { Installation } from '../../src/handlers/ports.js';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import { installRequest, onAppUninstall } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';

let h: Harness;
let t = Date.UTC(2026, 11, 3, 9, 0, 0);
const clock = { now: () => new Date(t) };
const FORM = 'application/x-www-form-urlencoded';
const ADMIN = 'user-token-admin-0001';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148';
let ip = 0;
/** Each test its own client address (documentation range), so rate-limit buckets never mix. */
const nextIp = () => `203.0.113.${++ip}`;

let inst: Installation;
let code: string;
let memberId: number;

/** The install wizard's LANG is `ru` unless said otherwise. */
async function install(portal: MswPortal, lang?: string): Promise<Installation> {
  const wizard = installRequest(portal);
  const query = lang === undefined ? wizard.query : wizard.query.replace('LANG=ru', `LANG=${lang}`);
  const { body } = wizard;
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  const installation = (await h.store.installations.findByMemberId(portal.memberId))!;
  expect(installation.status).toBe('active');
  return installation;
}

async function enrol(installation: Installation, contactId: number, wanted: string): Promise<{ id: number; code: string }> {
  const member = await h.store.members.ensure(installation.id, 'contact', contactId, clock.now());
  const enrolled = await h.store.members.enroll(installation.id, member.id, wanted, clock.now());
  if (enrolled === 'code_taken') throw new Error('code taken');
  return { id: enrolled.id, code: enrolled.code! };
}

async function setProgram(installation: Installation, landingUrl: string | null) {
  await h.store.programs.create(installation.id, { ...(structuredClone(DEFAULT_PROGRAM) as Program), landingUrl }, null, clock.now());
}

function visit(path: string, from = nextIp(), userAgent = IPHONE) {
  return request(h.app).get(path).set('X-Forwarded-For', from).set('User-Agent', userAgent).redirects(0);
}

const allClicks = async (portalId = inst.id) => h.store.clicks.between(portalId, new Date(0), new Date(t + 1));

beforeAll(async () => {
  h = await createHarness({ clock });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  inst = await install(h.portal);
  ({ id: memberId, code } = await enrol(inst, 501, 'ANNA7KX'));
});

afterAll(async () => {
  await h.close();
});

describe('the link', () => {
  it('names the installation by a random public id, never its member_id', () => {
    expect(inst.publicId).toMatch(/^[0-9a-f]{20}$/);
    expect(inst.publicId).not.toContain(h.portal.memberId);
  });
});

describe('with a landing URL', () => {
  it('answers 302 to the landing URL with ref and the utm tags merged into its query, and records the click', async () => {
    await setProgram(inst, 'https://shop.example.ru/friends?x=1&utm_source=old#top');
    const from = nextIp();
    const res = await visit(`/r/${inst.publicId}/${code.toLowerCase()}?next=https://evil.example/`, from);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`https://shop.example.ru/friends?x=1&utm_source=sarafan&ref=${code}&utm_medium=referral#top`);
    expect(res.headers['cache-control']).toBe('no-store');

    const clicks = await allClicks();
    expect(clicks).toEqual([
      {
        portalId: inst.id,
        id: expect.any(Number),
        memberId,
        code,
        clickedAt: new Date(t),
        visitorHash: createHmac('sha256', inst.linkSalt).update(from).digest('hex'),
        agentClass: 'mobile',
      },
    ]);
    // Nothing of the address or the user agent itself is kept.
    expect(JSON.stringify(clicks)).not.toContain(from);
    expect(JSON.stringify(clicks)).not.toContain('iPhone');
  });

  it('classes a messenger preview as a bot (the funnel can leave it out)', async () => {
    const before = (await allClicks()).length;
    expect((await visit(`/r/${inst.publicId}/${code}`, nextIp(), 'TelegramBot (like TwitterBot)')).status).toBe(302);
    const clicks = await allClicks();
    expect(clicks).toHaveLength(before + 1);
    expect(clicks.at(-1)!.agentClass).toBe('bot');
  });

  it('answers a HEAD request (a link checker) the same way without recording a click', async () => {
    const before = (await allClicks()).length;
    const res = await request(h.app).head(`/r/${inst.publicId}/${code}`).set('X-Forwarded-For', nextIp()).redirects(0);
    expect(res.status).toBe(302);
    expect(res.headers.location).toContain(`ref=${code}`);
    expect(await allClicks()).toHaveLength(before);
  });

  it('never sends the visitor anywhere but the stored landing URL', async () => {
    const before = (await allClicks()).length;
    for (const path of [
      `/r/${inst.publicId}//evil.com`,
      `/r/${inst.publicId}/https:evil`,
      `/r/${inst.publicId}/%2F%2Fevil.com`,
      `/r/${inst.publicId}/https%3A%2F%2Fevil.com`,
      `/r/%2F%2Fevil.com/${code}`,
      `/r//evil.com/${code}`,
      `/r/${inst.publicId}/${code}%0D%0ASet-Cookie:%20a=b`,
      `/r/${inst.publicId}/${code}%0D%0ALocation:%20https://evil.com`,
    ]) {
      const res = await visit(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.location, path).toBeUndefined();
      expect(res.headers['set-cookie'], path).toBeUndefined();
    }
    expect(await allClicks()).toHaveLength(before);
  });

  it('refuses to save a landing URL that is not http(s) (PUT /api/program), so none can be stored through the API', async () => {
    for (const landingUrl of ['//evil.com', 'javascript:alert(1)', 'https:evil', 'data:text/html,x', 'evil.com']) {
      const res = await request(h.app)
        .put('/api/program')
        .set('Authorization', `Bearer ${ADMIN}`)
        .set('X-Sarafan-Portal', h.portal.memberId)
        .send({ ...structuredClone(DEFAULT_PROGRAM), landingUrl });
      if (landingUrl === 'https:evil') {
        // WHATWG URL reads it as https://evil/ — a host of its own, which only an admin can choose.
        expect(res.status).toBe(200);
        continue;
      }
      expect(res.status, landingUrl).toBe(400);
      expect(res.body.error.details).toEqual([{ path: 'landingUrl', message: 'must be an http(s) URL' }]);
    }
  });

  it('keeps CR/LF in a stored landing URL out of the Location header', async () => {
    await setProgram(inst, 'https://shop.example.ru/a\r\nSet-Cookie: x=y');
    const res = await visit(`/r/${inst.publicId}/${code}`);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`https://shop.example.ru/aSet-Cookie:%20x=y?ref=${code}&utm_source=sarafan&utm_medium=referral`);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('shows the page instead of redirecting when a stored landing URL is not http(s) (stored around the API)', async () => {
    await setProgram(inst, 'javascript:alert(1)');
    const res = await visit(`/r/${inst.publicId}/${code}`);
    expect(res.status).toBe(200);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain(code);
  });
});

describe('without a landing URL', () => {
  it('shows the code and the company in the portal language (ru), escaped', async () => {
    await setProgram(inst, null);
    const res = await visit(`/r/${inst.publicId}/${code}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('<html lang="ru">');
    expect(res.text).toContain('Вас пригласили в <b>acme.bitrix24.ru</b>');
    expect(res.text).toContain(`<code data-testid="code">${code}</code>`);
    expect(res.headers['x-robots-tag']).toBe('noindex');
  });

  it('answers in English for a portal installed in English', async () => {
    const other = new MswPortal({ domain: 'acme.bitrix24.com' });
    h.msw.use(...other.handlers());
    const otherInst = await install(other, 'en');
    expect(otherInst.lang).toBe('en');
    const { code: otherCode } = await enrol(otherInst, 77, 'JOHN2345');
    const res = await visit(`/r/${otherInst.publicId}/${otherCode}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('<html lang="en">');
    expect(res.text).toContain('You have been invited to <b>acme.bitrix24.com</b>');
    expect(res.text).toContain(`<code data-testid="code">${otherCode}</code>`);
    // Another portal's code under this portal's id is unknown here (tenant isolation).
    expect((await visit(`/r/${inst.publicId}/${otherCode}`)).status).toBe(404);
    expect((await allClicks()).some((c) => c.code === otherCode)).toBe(false);
  });
});

describe('the page language', () => {
  it("is the install wizard's: a .com portal installed in Russian answers in Russian", async () => {
    const portal = new MswPortal({ domain: 'moscow-shop.bitrix24.com' });
    h.msw.use(...portal.handlers());
    const installed = await install(portal, 'ru');
    const { code: c } = await enrol(installed, 9, 'MSK23456');
    const res = await visit(`/r/${installed.publicId}/${c}`);
    expect(res.text).toContain('<html lang="ru">');
    expect(res.text).toContain('Вас пригласили в <b>moscow-shop.bitrix24.com</b>');
  });

  it('is the domain\'s when the wizard sent no language, and escapes what it shows', async () => {
    const portal = new MswPortal({ domain: 'x.bitrix24.de' });
    h.msw.use(...portal.handlers());
    const installed = await install(portal, '');
    expect(installed.lang).toBeNull();
    // A domain as the store could hold it, with markup in it: shown as text only.
    await h.store.installations.upsertVerified(
      { memberId: portal.memberId, domain: 'x.bitrix24.de"><script>alert(1)</script>', clientEndpoint: installed.clientEndpoint, serverEndpoint: installed.serverEndpoint, scope: installed.scope, userId: installed.userId, tokens: installed.tokens! },
      clock.now(),
    );
    const { code: c } = await enrol(installed, 10, 'DE234567');
    const res = await visit(`/r/${installed.publicId}/${c}`);
    expect(res.text).toContain('<html lang="en">');
    expect(res.text).not.toContain('<script>alert(1)</script>');
    expect(res.text).toContain('x.bitrix24.de&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});

describe('404', () => {
  it('for an unknown portal, an unknown code, and the old member_id form; nothing recorded', async () => {
    const before = (await allClicks()).length;
    const unknownPortal = await visit(`/r/0123456789abcdef0123/${code}`);
    expect(unknownPortal.status).toBe(404);
    expect(unknownPortal.text).toContain('<html lang="en">');
    const unknownCode = await visit(`/r/${inst.publicId}/NOSUCH9`);
    expect(unknownCode.status).toBe(404);
    expect(unknownCode.text).toContain('Ссылка не найдена');
    expect((await visit(`/r/${h.portal.memberId}/${code}`)).status).toBe(404);
    expect(await allClicks()).toHaveLength(before);
  });

  it('for an uninstalled portal', async () => {
    const gone = new MswPortal({ domain: 'gone.bitrix24.ru' });
    h.msw.use(...gone.handlers());
    const goneInst = await install(gone);
    const { code: goneCode } = await enrol(goneInst, 5, 'GONE2345');
    expect((await visit(`/r/${goneInst.publicId}/${goneCode}`)).status).toBe(200);
    expect((await request(h.app).post('/b24/events').set('Content-Type', FORM).send(onAppUninstall(gone, { clean: false }))).status).toBe(200);
    expect((await visit(`/r/${goneInst.publicId}/${goneCode}`)).status).toBe(404);
  });
});

describe('rate limit per client address', () => {
  it('answers 429 with Retry-After past the burst, lets another address through, and recovers as the clock moves', async () => {
    const app = createApp({ ...h.deps, ready: () => h.store.ready(), referralLinks: { burst: 3, perSecond: 0.5 } });
    const get = (from: string) => request(app).get(`/r/${inst.publicId}/${code}`).set('X-Forwarded-For', from).redirects(0);
    const busy = nextIp();
    for (let i = 0; i < 3; i++) expect((await get(busy)).status).toBe(200);
    const before = (await allClicks()).length;
    const refused = await get(busy);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('2');
    expect(await allClicks()).toHaveLength(before);
    expect((await get(nextIp())).status).toBe(200);

    t += 1_000;
    expect((await get(busy)).status).toBe(429);
    expect((await get(busy)).headers['retry-after']).toBe('1');
    t += 1_000;
    expect((await get(busy)).status).toBe(200);
    expect((await get(busy)).status).toBe(429);
  });
});
