/**
 * Migration 0007 on a store that already has portals (PGlite and PostgreSQL): every existing
 * installation gets its own public id and link salt, and every enrolled member of an active
 * portal is queued for re-projection (crm.project jobs of at most 500 members), so the links
 * already written into the CRM with the member_id are rewritten in the new form.
 */
import { PGlite } from '@electric-sql/pglite';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';

const dir = new URL('../../src/store/migrations/', import.meta.url);
const journal = JSON.parse(readFileSync(new URL('meta/_journal.json', dir), 'utf8')) as { entries: { idx: number; tag: string }[] };
const statements = (tag: string) =>
  readFileSync(new URL(`${tag}.sql`, dir), 'utf8')
    .split('--> statement-breakpoint')
    .map((s) => s.trim())
    .filter(Boolean);

type Query = (sql: string) => Promise<Record<string, unknown>[]>;

async function scenario(query: Query) {
  for (const e of journal.entries.filter((e) => e.idx < 7)) for (const s of statements(e.tag)) await query(s);
  const installation = (member: string, status: string) =>
    `INSERT INTO installations (member_id, domain, client_endpoint, server_endpoint, status, created_at, updated_at)
     VALUES ('${member}', '${member}.bitrix24.ru', 'https://x/rest/', 'https://oauth.bitrix.info/rest/', '${status}', now(), now()) RETURNING id`;
  const [active] = await query(installation('active-portal', 'active'));
  const [gone] = await query(installation('gone-portal', 'uninstalled'));
  // 1 001 enrolled members (three jobs of 500, 500, 1) and one without a code on the active portal.
  await query(`INSERT INTO members (portal_id, contact_id, code, created_at) SELECT ${active!.id}, g, 'C' || g, now() FROM generate_series(1, 1001) g`);
  await query(`INSERT INTO members (portal_id, contact_id, created_at) VALUES (${active!.id}, 5000, now())`);
  await query(`INSERT INTO members (portal_id, contact_id, code, created_at) VALUES (${gone!.id}, 1, 'GONE1', now())`);

  for (const s of statements('0007_referral_links')) await query(s);

  const rows = await query('SELECT id, member_id, public_id, link_salt, lang FROM installations ORDER BY id');
  expect(rows).toHaveLength(2);
  for (const r of rows) {
    expect(r.public_id).toMatch(/^[0-9a-f]{20}$/);
    expect(r.link_salt).toMatch(/^[0-9a-f]{32}$/);
    expect(r.lang).toBeNull();
  }
  expect(rows[0]!.public_id).not.toBe(rows[1]!.public_id);
  expect(rows[0]!.link_salt).not.toBe(rows[1]!.link_salt);

  const jobs = await query(`SELECT portal_id, kind, key, status, payload FROM jobs ORDER BY key`);
  expect(jobs.map((j) => [j.portal_id, j.kind, j.key, j.status])).toEqual([
    [active!.id, 'crm.project', 'relink:0', 'queued'],
    [active!.id, 'crm.project', 'relink:1', 'queued'],
    [active!.id, 'crm.project', 'relink:2', 'queued'],
  ]);
  const payloads = jobs.map((j) => (typeof j.payload === 'string' ? JSON.parse(j.payload) : j.payload) as { members: number[]; deals: number[] });
  expect(payloads.map((p) => p.members.length)).toEqual([500, 500, 1]);
  expect(payloads.every((p) => p.deals.length === 0)).toBe(true);
  const queued = new Set(payloads.flatMap((p) => p.members).map(Number));
  const enrolled = await query(`SELECT id FROM members WHERE portal_id = ${active!.id} AND code IS NOT NULL`);
  expect(queued).toEqual(new Set(enrolled.map((m) => Number(m.id))));

  // A new installation gets its own values from the defaults.
  const [added] = await query(`${installation('new-portal', 'new').replace('RETURNING id', 'RETURNING public_id, link_salt')}`);
  expect(added!.public_id).toMatch(/^[0-9a-f]{20}$/);
}

describe('migration 0007: referral links', () => {
  it('on PGlite', async () => {
    const db = new PGlite();
    try {
      await scenario(async (sql) => (await db.query<Record<string, unknown>>(sql)).rows);
    } finally {
      await db.close();
    }
  }, 60_000);

  const databases: string[] = [];
  afterAll(async () => {
    for (const name of databases) await dropDatabase(name);
  });

  it.skipIf(process.env.SARAFAN_SKIP_POSTGRES === '1')('on PostgreSQL', async () => {
    const name = await createDatabase();
    databases.push(name);
    const client = new pg.Client({ connectionString: withDatabase(serverUrl, name) });
    await client.connect();
    try {
      await scenario(async (sql) => (await client.query(sql)).rows as Record<string, unknown>[]);
    } finally {
      await client.end();
    }
  }, 60_000);
});
