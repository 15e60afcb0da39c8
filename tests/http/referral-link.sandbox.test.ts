/**
 * A referral link as a customer gets it: written by Sarafan into the sandbox CRM's
 * UF_CRM_SARAFAN_LINK, then opened over real HTTP — to the program's landing URL with the code.
 * And the upgrade path: a link still in the old member_id form is rewritten by the re-projection
 * migration 0007 queues.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import type { Actor, EntityKind, Row } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
const manager: Actor = { userId: 2 };
const LANDING = 'https://shop.example.ru/friends?utm_campaign=spring';

beforeAll(async () => {
  live = await startLive();
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;
const get = (kind: EntityKind, id: number): Row => {
  const row = portal().getEntity(kind, id);
  if (!row) throw new Error(`no ${kind} ${id}`);
  return row;
};

describe('a referral link from the CRM', () => {
  let contact: number;
  let link: string;
  let code: string;

  it('is written into the contact by Sarafan with the public id, and leads to the landing URL with the code', async () => {
    const installation = await live.installation();
    await live.deps.store.programs.create(installation.id, { ...(structuredClone(DEFAULT_PROGRAM) as Program), landingUrl: LANDING }, 1, new Date());
    contact = portal().addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова' }, manager);
    const deal = portal().addEntity('deal', { TITLE: 'Диван', CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: 30000 }, manager);
    portal().updateEntity('deal', deal, { STAGE_ID: 'WON' }, manager);
    await live.settle();

    code = String(get('contact', contact)[F.CODE]);
    link = String(get('contact', contact)[F.LINK]);
    expect(link).toBe(`${live.sarafanUrl}/r/${installation.publicId}/${code}`);
    expect(link).not.toContain(portal().memberId);

    const res = await fetch(link, { redirect: 'manual', headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0' } });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`https://shop.example.ru/friends?utm_campaign=spring&ref=${code}&utm_source=sarafan&utm_medium=referral`);
    const clicks = await live.deps.store.clicks.between(installation.id, new Date(0), new Date(Date.now() + 60_000));
    expect(clicks.map((c) => ({ code: c.code, agentClass: c.agentClass }))).toEqual([{ code, agentClass: 'desktop' }]);
    expect(JSON.stringify(clicks)).not.toContain('127.0.0.1');
  });

  it('a link still in the old member_id form is rewritten by the re-projection the upgrade queues', async () => {
    const installation = await live.installation();
    const old = `${live.sarafanUrl}/r/${portal().memberId}/${code}`;
    // The state before the upgrade: the CRM and Sarafan's record of its last write show the old
    // form. The change's event is dropped, so nothing but the queued re-projection can fix it.
    live.sandbox.outbound.setFaults({ drop: 1 });
    portal().updateEntity('contact', contact, { [F.LINK]: old }, manager);
    await live.deps.store.projections.save(installation.id, 'contact', contact, { link: old }, new Date());
    await live.settle();
    expect(get('contact', contact)[F.LINK]).toBe(old);
    expect((await fetch(old, { redirect: 'manual' })).status).toBe(404);

    // What migration 0007 inserts for every enrolled member of an active portal.
    const member = await live.deps.store.members.findByEntity(installation.id, 'contact', contact);
    await live.deps.store.jobs.enqueue({ portalId: installation.id, kind: 'crm.project', key: 'relink:0', payload: { members: [member!.id], deals: [] } }, new Date());
    await live.settle();
    expect(get('contact', contact)[F.LINK]).toBe(link);
    expect((await fetch(String(get('contact', contact)[F.LINK]), { redirect: 'manual' })).status).toBe(302);
  });

  it('without a landing URL shows the code on a page in the language the portal installed Sarafan in', async () => {
    const installation = await live.installation();
    expect(installation.lang).toBe('ru');
    await live.deps.store.programs.create(installation.id, structuredClone(DEFAULT_PROGRAM), 1, new Date());
    const res = await fetch(link, { redirect: 'manual' });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<html lang="ru">');
    expect(html).toContain(`<code data-testid="code">${code}</code>`);
  });
});
