/**
 * SPEC 6: "an event is never lost once acknowledged, even if the process is killed". Sarafan runs
 * as a real deployment in a child process against the sandbox portal (in this process); a burst
 * of 40 won referred deals is sent, and the child is SIGKILLed at a moment fixed by what the
 * portal has seen — after its k-th acknowledged delivery (k = 3, 15, 30), or at Sarafan's first
 * CRM write of the burst (the ledger committed, the write-back under way) — then restarted on the
 * same data and left to finish. Checked from the store and the portal: every deal whose event was
 * acknowledged is credited exactly once, no deal more than once, and each such deal's
 * UF_CRM_SARAFAN_REWARD and the referrer's UF_CRM_SARAFAN_BALANCE equal the ledger.
 *
 * Once on the embedded store (DATA_DIR: the restart takes the data-directory lock over from the
 * killed pid and recovers every job found running) and once on PostgreSQL (the killed worker's
 * leases run out and a live worker takes the jobs back).
 *
 * The sandbox's deliveries are observed at the transport (fetch, which the sandbox's outbound
 * uses), at most 8 at a time: the kill is sent synchronously from the k-th 200 answer, before the
 * portal records it, and the set of acknowledged deals is cross-checked against the portal's own
 * delivery log.
 * "Quiet" is the queue found empty — read directly on PostgreSQL; on the embedded store, whose
 * lock the child holds, by stopping it gracefully and opening its data directory — after the
 * portal has seen no request or delivery for a while. Deadlines are failure guards only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import qs from 'qs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { openStore, type SqlStore } from '../../src/store/open-store.js';
import { DEMO_CLIENT_ID as SANDBOX_CLIENT_ID, DEMO_CLIENT_SECRET as SANDBOX_CLIENT_SECRET, sarafanApp } from '../../server/demo/sandbox-demo.js';
import { startSandbox, type Sandbox } from '../../sandbox/server.js';
import type { Actor, Row } from '../../sandbox/types.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';
import { freePort, SarafanProcess, SARAFAN_SECRET_KEY } from './sarafan-process.js';

const BURST = 40;
const QUIET_MS = 2_500;
/** Failure guards, never expectations about speed. */
const GUARD_MS = 900_000;
const SETTLE_GUARD_MS = 420_000;

const manager: Actor = { userId: 2 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The portal's deliveries, seen at its transport. Installed before any sandbox is created: the
// sandbox's outbound takes the global fetch when it is constructed.
// ---------------------------------------------------------------------------------------------

interface Ack {
  event: string;
  id: number;
}
const acks: Ack[] = [];
let onAck: ((ack: Ack) => void) | null = null;
const realFetch = globalThis.fetch;
/**
 * At most IN_FLIGHT deliveries to Sarafan at a time (the sandbox alone sends a whole burst at
 * once, and the 3rd answer would then come after Sarafan had answered all 40): the kill after the
 * k-th acknowledgement lands with k to k + IN_FLIGHT - 1 acknowledged, while several are still
 * being enqueued — where an acknowledgement given before the job is durable would be lost.
 */
const IN_FLIGHT = 8;
const DELIVERY_TIMEOUT_MS = 10_000;
let inFlight = 0;
const waiting: (() => void)[] = [];
async function slot(): Promise<() => void> {
  if (inFlight >= IN_FLIGHT) await new Promise<void>((resolve) => waiting.push(resolve));
  inFlight++;
  return () => {
    inFlight--;
    waiting.shift()?.();
  };
}
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!url.endsWith('/b24/events')) return realFetch(input, init);
  const done = await slot();
  try {
    // The portal's per-delivery timeout counts from the send, not from the wait for a slot.
    const res = await realFetch(input, { ...init, signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    if (res.status === 200 && typeof init?.body === 'string') {
      const form = qs.parse(init.body) as { event?: string; data?: { FIELDS?: { ID?: string } } };
      const ack = { event: String(form.event ?? ''), id: Number(form.data?.FIELDS?.ID ?? 0) };
      acks.push(ack);
      onAck?.(ack);
    }
    return res;
  } finally {
    done();
  }
};

type Kill = { afterAcks: number } | { atFirstWrite: true };
/** Each round is a new burst; a second kill hits the first run that writes after the restart. */
const ROUNDS: { name: string; kills: Kill[] }[] = [
  { name: 'after 3 acknowledged deliveries, then at the first CRM write after the restart', kills: [{ afterAcks: 3 }, { atFirstWrite: true }] },
  { name: 'after 15 acknowledged deliveries', kills: [{ afterAcks: 15 }] },
  { name: 'after 30 acknowledged deliveries, then at the first CRM write after the restart', kills: [{ afterAcks: 30 }, { atFirstWrite: true }] },
  { name: 'at the first CRM write of the burst', kills: [{ atFirstWrite: true }] },
];

interface StoreVariant {
  name: string;
  /** Where the child keeps its data; the same for every restart. */
  prepare(): Promise<{ dataDir: string } | { databaseUrl: string }>;
  /** The store, for the assertions: on the embedded store only while the child is stopped. */
  open(): Promise<SqlStore>;
  /** On PostgreSQL the queue can be read while the child runs. */
  liveDepth?: () => Promise<number>;
  release(store: SqlStore): Promise<void>;
  cleanup(): Promise<void>;
}

function embedded(): StoreVariant {
  const root = mkdtempSync(join(tmpdir(), 'sarafan-sigkill-'));
  const dataDir = join(root, 'data');
  return {
    name: 'embedded store (DATA_DIR)',
    prepare: async () => ({ dataDir }),
    open: () => openStore({ dataDir, secretKey: SARAFAN_SECRET_KEY }),
    release: (store) => store.close(),
    cleanup: async () => rmSync(root, { recursive: true, force: true }),
  };
}

function postgres(): StoreVariant {
  let name = '';
  let store: SqlStore | null = null;
  const open = async () => (store ??= await openStore({ databaseUrl: withDatabase(serverUrl, name), secretKey: SARAFAN_SECRET_KEY }));
  return {
    name: 'PostgreSQL (DATABASE_URL)',
    async prepare() {
      name = await createDatabase();
      return { databaseUrl: withDatabase(serverUrl, name) };
    },
    open,
    liveDepth: async () => {
      const d = await (await open()).jobs.depth();
      return d.queued + d.running;
    },
    release: async () => {},
    async cleanup() {
      await store?.close();
      if (name) await dropDatabase(name);
    },
  };
}

const variants: (() => StoreVariant)[] = [embedded];
if (process.env.SARAFAN_SKIP_POSTGRES === '1') console.warn('sigkill process test on PostgreSQL — skipped: SARAFAN_SKIP_POSTGRES=1 is set');
else variants.push(postgres);

describe.each(variants.map((make) => [make().name, make] as const))('Sarafan SIGKILLed during a burst of won referred deals — %s', (_name, make) => {
  const variant = make();
  let sandbox: Sandbox;
  let sarafan: SarafanProcess;
  const sandboxLog: string[] = [];
  let referrer = 0;
  let code = '';

  const portal = () => sandbox.portal;
  const entity = (kind: 'contact' | 'deal', id: number): Row => {
    const row = portal().getEntity(kind, id);
    if (!row) throw new Error(`no ${kind} ${id}`);
    return row;
  };

  async function until(what: string, check: () => boolean | Promise<boolean>, guardMs = 180_000): Promise<void> {
    const deadline = Date.now() + guardMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not reached within ${guardMs} ms\n${sarafan.tail()}\nsandbox:\n${sandboxLog.slice(-20).join('\n')}`);
      await sleep(100);
    }
  }

  /** No REST request and no delivery at the portal for QUIET_MS, nothing in flight. */
  async function portalQuiet(): Promise<void> {
    const mark = () => `${sandbox.stats.requests}/${sandbox.stats.throttled}/${sandbox.outbound.deliveries.at(-1)?.id ?? 0}`;
    let seen = mark();
    let since = Date.now();
    for (;;) {
      await sleep(100);
      await sandbox.outbound.idle();
      const now = mark();
      if (now !== seen) {
        seen = now;
        since = Date.now();
      } else if (Date.now() - since >= QUIET_MS) return;
    }
  }

  /** Runs Sarafan until its queue is empty, then stops it gracefully and hands over its store. */
  async function settle(): Promise<SqlStore> {
    const deadline = Date.now() + SETTLE_GUARD_MS;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`the queue did not empty within ${SETTLE_GUARD_MS} ms\n${sarafan.tail()}`);
      if (!sarafan.running) await sarafan.start();
      await portalQuiet();
      if (variant.liveDepth && (await variant.liveDepth()) > 0) continue;
      await sarafan.stop();
      const store = await variant.open();
      const depth = await store.jobs.depth();
      if (depth.queued === 0 && depth.running === 0) return store;
      await variant.release(store);
    }
  }

  beforeAll(async () => {
    sandbox = await startSandbox({
      port: 0,
      dataDir: null,
      limits: { drainPerSec: 2, burst: 50 },
      log: (msg, extra) => sandboxLog.push(`${msg} ${JSON.stringify(extra ?? {})}`),
    });
    const port = await freePort();
    sandbox.portal.upsertApp(sarafanApp(`http://127.0.0.1:${port}`));
    sarafan = new SarafanProcess(port, { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, oauthUrl: sandbox.url, store: await variant.prepare() });
    await sarafan.start();
    const page = await sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
    if (page.status !== 200) throw new Error(`the install wizard answered ${page.status}: ${page.body.slice(0, 300)}\n${sarafan.tail()}`);

    // The referrer: enrolled by winning a first deal.
    referrer = portal().addEntity('contact', { NAME: 'Реферер' }, manager);
    const first = portal().addEntity('deal', { CONTACT_ID: referrer, OPPORTUNITY: 1000 }, manager);
    portal().updateEntity('deal', first, { STAGE_ID: 'WON' }, manager);
    await until('the referrer enrolled', () => Boolean(entity('contact', referrer)[F.CODE]));
    code = String(entity('contact', referrer)[F.CODE]);
  }, GUARD_MS);

  afterAll(async () => {
    onAck = null;
    await sarafan?.stop();
    await sandbox?.close();
    await variant.cleanup();
  }, GUARD_MS);

  /** Sends SIGKILL at the moment `kill` names; resolves once it was sent (a guard fails it if never). */
  function arm(kill: Kill, inBurst: Set<number>, burstAcks: () => number, killed: (moment: string) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let off = () => {};
      const guard = setTimeout(() => {
        off();
        reject(new Error(`the kill ${JSON.stringify(kill)} never came\n${sarafan.tail()}`));
      }, 180_000);
      const fire = (moment: string) => {
        off();
        clearTimeout(guard);
        sarafan.kill();
        killed(moment);
        resolve();
      };
      if ('afterAcks' in kill) {
        onAck = (ack) => {
          if (ack.event === 'ONCRMDEALUPDATE' && inBurst.has(ack.id) && burstAcks() >= kill.afterAcks) fire(`ack ${kill.afterAcks}`);
        };
        off = () => {
          onAck = null;
        };
      } else {
        const unsubscribe = portal().onChange((note) => {
          if (note.kind === 'update' && note.actor.clientId === SANDBOX_CLIENT_ID) fire(`write ${note.entity} ${note.id}`);
        });
        off = () => void unsubscribe();
      }
    });
  }

  it.each(ROUNDS)('killed $name, restarted: every acknowledged win credited once, REWARD and BALANCE equal the ledger', async ({ kills }) => {
    if (!sarafan.running) await sarafan.start();
    // 40 referred clients with deals in progress, attributed before the burst.
    const clients: number[] = [];
    const deals: number[] = [];
    for (let i = 0; i < BURST; i++) {
      const client = portal().addEntity('contact', { NAME: `Клиент ${i + 1}`, [F.REF_CODE]: code }, manager);
      clients.push(client);
      deals.push(portal().addEntity('deal', { CONTACT_ID: client, OPPORTUNITY: 10_000 + 100 * i, STAGE_ID: 'EXECUTING' }, manager));
    }
    await until('the clients attributed', () => clients.every((c) => entity('contact', c)[F.REFERRER] === `C_${referrer}`));
    await portalQuiet();

    // The burst, and the kills at the chosen moments.
    const inBurst = new Set(deals);
    const burstAcks = () => acks.filter((a) => a.event === 'ONCRMDEALUPDATE' && inBurst.has(a.id)).length;
    const firstDelivery = (sandbox.outbound.deliveries.at(-1)?.id ?? 0) + 1;
    acks.length = 0;
    const killedAt: { acks: number; moment: string }[] = [];
    for (const [n, kill] of kills.entries()) {
      const fired = arm(kill, inBurst, burstAcks, (moment) => killedAt.push({ acks: burstAcks(), moment }));
      // A kill armed for the recovery may strike before the restarted process answers /readyz.
      const started = n === 0 ? null : sarafan.start().catch((e: unknown) => e);
      if (n === 0) for (const id of deals) portal().updateEntity('deal', id, { STAGE_ID: 'WON' }, manager);
      await fired;
      await sarafan.dead();
      await started;
      // What the portal sends while Sarafan is down fails, and is never retried (reference §4.4).
      await sandbox.outbound.idle();
    }

    const store = await settle();
    try {
      const installation = await store.installations.findByMemberId(portal().memberId);
      expect(installation?.status).toBe('active');
      const portalId = installation!.id;

      // The portal's delivery log agrees with what was seen at its transport.
      const logged = sandbox.outbound.deliveries.filter((d) => d.id >= firstDelivery && d.event === 'ONCRMDEALUPDATE' && d.status === 200);
      expect(logged.length).toBe(acks.filter((a) => a.event === 'ONCRMDEALUPDATE').length);
      const acknowledged = [...new Set(acks.filter((a) => a.event === 'ONCRMDEALUPDATE' && inBurst.has(a.id)).map((a) => a.id))].sort((a, b) => a - b);
      const first = kills[0]!;
      // Besides the k-th, only the deliveries in flight at the kill can have been acknowledged.
      const atKill = 'afterAcks' in first ? first.afterAcks : killedAt[0]!.acks;
      expect(acknowledged.length).toBeGreaterThanOrEqual(atKill);
      expect(acknowledged.length).toBeLessThanOrEqual(atKill + IN_FLIGHT - 1);

      const entries = await store.ledger.forDeals(portalId, deals);
      const credits = (deal: number) => entries.filter((e) => e.dealId === deal && e.kind === 'credit').length;
      const net = (deal: number) => entries.filter((e) => e.dealId === deal).reduce((s, e) => s + e.amount, 0);
      const reward = (deal: number) => {
        const v = entity('deal', deal)[F.REWARD];
        return v === null || v === undefined || v === '' ? null : Math.round(Number(v) * 100);
      };
      console.info(
        `${variant.name}: killed at ${JSON.stringify(killedAt)}; ${acknowledged.length} of ${BURST} wins acknowledged, ` +
          `${deals.filter((d) => credits(d) === 1).length} credited; Sarafan started ${sarafan.starts.length} times so far`,
      );
      const problems = {
        creditedTwice: deals.filter((d) => credits(d) > 1),
        acknowledgedNotCredited: acknowledged.filter((d) => credits(d) !== 1),
        rewardNotLedger: acknowledged.filter((d) => reward(d) !== net(d)).map((d) => ({ deal: d, crm: reward(d), ledger: net(d) })),
      };
      expect(problems, `killed at ${JSON.stringify(killedAt)}; acknowledged ${acknowledged.length} of ${BURST}`).toEqual({
        creditedTwice: [],
        acknowledgedNotCredited: [],
        rewardNotLedger: [],
      });

      const member = await store.members.findByEntity(portalId, 'contact', referrer);
      const balance = (await store.ledger.balances(portalId, [member!.id], new Date())).get(member!.id)!;
      expect(Math.round(Number(entity('contact', referrer)[F.BALANCE]) * 100)).toBe(balance.available);
      expect((await store.jobs.depth(portalId)).dead).toBe(0);
    } finally {
      await variant.release(store);
    }
  }, GUARD_MS);
});
