/**
 * Sarafan's demo on the sandbox portal: Sarafan registered there as a local application, installed
 * headlessly (the wizard POST and installFinish, as the portal's install slider would), a furniture
 * shop seeded, a robot chain on the invoice stage (status → redeem above a balance), and the wait until Sarafan has credited the shop's won referred deals.
 *
 * The one place product code meets the sandbox (ESLint's zones let only server/demo import
 * sandbox/, and the sandbox imports nothing of the product). It uses only the sandbox's public
 * API: startSandbox, its Portal facade and its outbound deliveries. `npm start` loads it in
 * sandbox mode only, with a dynamic import, so production never loads sandbox code; the tests'
 * live harness and the bench build on it too.
 */
import { startSandbox, type AppSpec, type Sandbox, type SandboxOptions, type WebSettings } from '../../sandbox/server.js';
import type { Portal, StageRobot } from '../../sandbox/types.js';
import type { Log, Store } from '../../src/handlers/ports.js';
import { F } from '../../src/bitrix/crm-fields.js';
import { toMinor } from '../../src/rules/money.js';
import { seedFurnitureShop, type SeededShop } from './furniture-shop.js';
import { createSteppedClock, type SteppedClock } from '../../sandbox/clock.js';
import { importShopHistory, replayActivity, seededRandom, type Activity, type ImportedHistory } from './shop-history.js';

/** The keys the sandbox portal knows Sarafan by (sandbox mode has no B24 credentials). */
export const DEMO_CLIENT_ID = 'local.sarafan.sandbox';
export const DEMO_CLIENT_SECRET = 'sarafan-sandbox-secret';

/** Sarafan as a local application: what an admin enters in Bitrix24 (README, "Registering the app"). */
export function sarafanApp(appBaseUrl: string): AppSpec {
  const base = appBaseUrl.replace(/\/+$/, '');
  return {
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_CLIENT_SECRET,
    code: 'sarafan',
    title: 'Сарафан',
    version: '1',
    scope: 'crm,placement,bizproc,im,user_brief',
    handlerUrl: `${base}/b24/frame`,
    installUrl: `${base}/b24/install`,
  };
}

/** Sarafan's fields as list columns, and a walk through the demo on the portal's home page. */
const DEMO_WEB: WebSettings = {
  listColumns: {
    contact: [F.CODE, F.BALANCE, F.PENDING, F.REFERRALS, F.REF_CODE],
    lead: [F.CODE, F.REF_CODE],
    deal: [F.REF_CODE, F.REWARD, F.REDEEMED],
  },
  guide: {
    title: 'Попробуйте демо',
    steps: [
      ['Откройте ', { text: 'контакт', href: '/crm/contact/' }, ', у которого заполнено поле «Сарафан: реферальный код», и скопируйте код.'],
      [{ text: 'Создайте контакт', href: '/crm/contact/details/0/' }, ' и вставьте этот код в поле «Сарафан: код пригласившего».'],
      ['В карточке нового контакта нажмите «Создать сделку», укажите сумму и сохраните.'],
      ['Переведите сделку на стадию «Сделка успешна».'],
      ['Откройте карточку пригласившего контакта: на вкладке «Сарафан» и в поле «Сарафан: доступные бонусы» появится бонус.'],
      [
        'Цепочка роботов: переведите сделку клиента, у которого больше 1000 бонусов, на стадию «Счёт на предоплату» — ',
        { text: 'робот «статус»', href: '/automation/deal/' },
        ' вернёт баланс, и робот «списать» спишет всё, что можно; в поле «Сарафан: списано» сделки появится сумма.',
      ],
    ],
  },
};

export interface SarafanSandboxOptions extends Omit<SandboxOptions, 'apps' | 'web'> {
  /** Sarafan's base URL (APP_BASE_URL): the app the portal offers and installs. */
  appBaseUrl: string;
}

/** The sandbox portal knowing Sarafan as an installable app (not installed yet). */
export function startSarafanSandbox(opts: SarafanSandboxOptions): Promise<Sandbox> {
  const { appBaseUrl, ...sandboxOptions } = opts;
  return startSandbox({ ...sandboxOptions, apps: [sarafanApp(appBaseUrl)], web: DEMO_WEB });
}

/** Installs Sarafan without a browser, unless it is installed already; Sarafan must be listening. */
export async function installSarafan(sandbox: Sandbox): Promise<void> {
  if (sandbox.portal.app(DEMO_CLIENT_ID)?.installed) return;
  const page = await sandbox.outbound.installHeadless(DEMO_CLIENT_ID);
  if (page.status !== 200) throw new Error(`Sarafan's install page answered ${page.status} to the sandbox portal: ${page.body.slice(0, 300)}`);
}

/**
 * The demo's robot chain (README "Robots", the chain recipe): when a deal reaches the invoice
 * stage, "Sarafan: client's status" runs, and "Sarafan: redeem bonus" with an empty amount (the
 * most the program allows) runs after it only if the balance the first returned is above the
 * threshold — `{=A<status robot>:balance} > 1000`.
 */
export const DEMO_CHAIN = { stageId: 'PREPAYMENT_INVOICE', threshold: '1000' } as const;

/** Puts the chain on the deal stage unless a Sarafan status robot is there already; returns the two stage robots. */
export function addDemoChain(portal: Portal): { status: StageRobot; redeem: StageRobot } {
  const onStage = portal.stageRobots().filter((r) => r.clientId === DEMO_CLIENT_ID && r.documentType === 'DEAL' && r.stageId === DEMO_CHAIN.stageId);
  const existingStatus = onStage.find((r) => r.code === 'sarafan_status');
  const existingRedeem = onStage.find((r) => r.code === 'sarafan_redeem');
  if (existingStatus && existingRedeem) return { status: existingStatus, redeem: existingRedeem };
  const status = existingStatus ?? portal.addStageRobot({ clientId: DEMO_CLIENT_ID, code: 'sarafan_status', documentType: 'DEAL', stageId: DEMO_CHAIN.stageId, properties: {} });
  const redeem = portal.addStageRobot({
    clientId: DEMO_CLIENT_ID,
    code: 'sarafan_redeem',
    documentType: 'DEAL',
    stageId: DEMO_CHAIN.stageId,
    properties: { amount: '' },
    // The sandbox names a stage robot's activity A<id>: its return values are {=A<id>:key} (sandbox/robot-expressions.ts).
    condition: { operand: `{=A${status.id}:balance}`, operator: '>', value: DEMO_CHAIN.threshold },
  });
  return { status, redeem };
}

type DemoStore = Pick<Store, 'installations' | 'ledger' | 'members' | 'jobs'>;

export interface DemoPortalOptions {
  /** Where the sandbox portal listens (0 = any free port). */
  port: number;
  /** A server already listening to serve the portal on instead (SandboxOptions.server; tests). */
  server?: SandboxOptions['server'];
  /** The portal's domain name; default 127.0.0.1. */
  host?: string;
  /** Where the portal keeps its state; null = memory only. */
  dataDir: string | null;
  limits?: SandboxOptions['limits'];
  appBaseUrl: string;
  /** Sarafan's store, where the demo's credits must be recorded before the demo is ready. */
  store: DemoStore;
  log: Log;
  /** How long each step may take (Sarafan enrolling the first clients, then crediting); default 60 s. */
  stepTimeoutMs?: number;
  /** How often the waits look again; default 100 ms. */
  pollMs?: number;
  /**
   * The clock the portal and Sarafan share (Sarafan's deps.clock must read it too). With
   * `history`, a fresh portal gets the shop's past: a year of imported sales before the install
   * and, from where the clock starts to the wall clock, weeks of referral activity run through
   * Sarafan at their time; the clock is released (wall clock) before the demo resolves.
   */
  clock?: SteppedClock;
  history?: { seed?: number; clients?: number; stepDays?: number } | false;
}

/** How far back a demo with history starts: the install, half a year ago. */
export const HISTORY_MONTHS = 6;

/**
 * The clock `npm start` composes before anything reads it: half a year back when the demo will
 * replay its history (a fresh sandbox data directory), else the wall clock. A portal that is
 * already there keeps its timeline, so nothing ever sees time go back.
 */
export function demoClock(freshPortal: boolean, history = true): SteppedClock {
  return freshPortal && history ? createSteppedClock(Date.now() - Math.round((HISTORY_MONTHS * 365.25 * DAY_MS) / 12)) : createSteppedClock();
}

const DAY_MS = 86_400_000;

/**
 * The worker's linger in sandbox mode. Lingering (default 1 s) gathers a production burst into
 * one run; the sandbox has one visitor clicking, and the history's replay waits for Sarafan
 * about three times a week for half a year: at 1 s a round the demo would take minutes to start.
 */
export const DEMO_WORKER_LINGER_MS = 150;

export interface DemoPortal {
  sandbox: Sandbox;
  /** The page to open, e.g. http://localhost:3001/ */
  url: string;
  /** What this start seeded; null when the portal already had its CRM (a restart). */
  seeded: SeededShop | null;
  /** The history seeded before the shop (with `history`, on a fresh portal). */
  history: { imported: ImportedHistory; activity: Activity; installedAt: Date } | null;
}

/**
 * Starts the sandbox portal with Sarafan installed and, into an empty portal, the demo shop; it
 * resolves once Sarafan has recorded the demo's credits and written them back to the CRM, so
 * what the visitor opens is complete. Rejects with what is missing when a step outlives its
 * deadline (the portal is closed then).
 */
export async function startDemoPortal(opts: DemoPortalOptions): Promise<DemoPortal> {
  const sandbox = await startSarafanSandbox({
    port: opts.port,
    ...(opts.server ? { server: opts.server } : {}),
    ...(opts.host ? { host: opts.host } : {}),
    dataDir: opts.dataDir,
    ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    appBaseUrl: opts.appBaseUrl,
    log: (msg, extra) => opts.log.warn({ ...extra }, `sandbox.${msg}`),
  });
  const wait = { timeoutMs: opts.stepTimeoutMs ?? 60_000, pollMs: opts.pollMs ?? 100 };
  try {
    let history: DemoPortal['history'] = null;
    const fresh = !sandbox.portal.listEntities('contact', { start: -1, select: ['ID'] }).rows.length;
    if (fresh && opts.history && opts.clock && !opts.clock.released) {
      history = await seedHistory(sandbox, opts, opts.clock, opts.history, wait);
    }
    // The shop's own demo happens now, on the wall clock.
    opts.clock?.release();
    if (!history) await installSarafan(sandbox);
    const seeded = await seedFurnitureShop(sandbox.portal, {
      fresh: fresh || undefined,
      waitForCodes: (contacts) =>
        until(wait, `Sarafan did not enrol the demo's first clients (contacts ${contacts.join(', ')} have no ${F.CODE})`, () => {
          const codes = contacts.map((id) => sandbox.portal.getEntity('contact', id)?.[F.CODE]);
          return codes.every((c): c is string => typeof c === 'string' && c.length > 0) ? codes : null;
        }),
    });
    if (seeded) {
      // A fresh portal gets the chain; on a restart the admin's automation stays as they left it.
      addDemoChain(sandbox.portal);
      opts.log.info({ deals: seeded.wonReferredDeals }, 'demo.seeded');
      await waitForCredits(sandbox, opts.store, seeded.wonReferredDeals, wait);
    }
    return { sandbox, url: `${sandbox.url}/`, seeded, history };
  } catch (e) {
    await sandbox.close();
    throw e;
  }
}

/**
 * The shop's past on a fresh portal: the import of a year of sales, Sarafan installed at the
 * clock's start (its backfill reads that year), then the weekly steps up to the wall clock,
 * each waiting until Sarafan has processed what it caused.
 */
async function seedHistory(
  sandbox: Sandbox,
  opts: DemoPortalOptions,
  clock: SteppedClock,
  settings: { seed?: number; clients?: number; stepDays?: number },
  wait: Wait,
): Promise<NonNullable<DemoPortal['history']>> {
  const rng = seededRandom(settings.seed ?? 12);
  const installedAt = new Date(clock.now());
  const imported = importShopHistory(sandbox.portal, rng, installedAt.getTime(), settings.clients ?? 70);
  await installSarafan(sandbox);
  const settle = (): Promise<void> => waitForQuiet(sandbox, opts.store, wait);
  await settle();
  const activity = await replayActivity(sandbox.portal, rng, imported, {
    clock,
    until: Date.now(),
    ...(settings.stepDays ? { stepDays: settings.stepDays } : {}),
    settle,
    async visit(url) {
      const res = await fetch(url, { redirect: 'manual' });
      await res.arrayBuffer();
      if (res.status !== 302 && res.status !== 200) throw new Error(`The demo's referral link ${url} answered ${res.status}`);
    },
  });
  opts.log.info({ steps: activity.steps, clicks: activity.clicks, won: activity.wonReferredDeals.length }, 'demo.history_replayed');
  return { imported, activity, installedAt };
}

/** The portal has delivered everything and Sarafan's queue for it is empty. */
async function waitForQuiet(sandbox: Sandbox, store: DemoStore, wait: Wait): Promise<void> {
  const installation = await store.installations.findByMemberId(sandbox.portal.memberId);
  if (!installation) throw new Error(`Sarafan has no installation for the sandbox portal ${sandbox.portal.memberId}`);
  let left = 0;
  await until(wait, () => `Sarafan did not process the demo's history (${left} queued CRM changes)`, async () => {
    await sandbox.outbound.idle();
    const depth = await store.jobs.depth(installation.id);
    left = depth.queued + depth.running;
    if (left) return null;
    // Sarafan's own writes echo back as events: quiet only when none is in flight either.
    await sandbox.outbound.idle();
    const again = await store.jobs.depth(installation.id);
    return again.queued + again.running ? null : true;
  });
}

/**
 * Every deal has its referral credit in Sarafan's ledger, and the CRM shows it: the reward on the
 * deal, and on each credited contact the available balance the ledger gives; and the queue has
 * drained, so the rest of the demo's cards are complete as well.
 */
async function waitForCredits(sandbox: Sandbox, store: DemoStore, dealIds: number[], wait: Wait): Promise<void> {
  const { portal } = sandbox;
  const installation = await store.installations.findByMemberId(portal.memberId);
  if (!installation) throw new Error(`Sarafan has no installation for the sandbox portal ${portal.memberId}`);
  const crmMinor = (value: unknown): number => toMinor(String(value ?? '')) ?? 0;
  let missing = '';
  const notYet = (why: string): null => {
    missing = why;
    return null;
  };
  await until(wait, () => `Sarafan did not record the demo's credits (${missing})`, async () => {
    await sandbox.outbound.idle();
    const credits = (await store.ledger.forDeals(installation.id, dealIds)).filter((e) => e.reason === 'referral' && e.kind === 'credit');
    const uncredited = dealIds.filter((id) => !credits.some((e) => e.dealId === id));
    if (uncredited.length) return notYet(`no credit in the ledger for won referred deals ${uncredited.join(', ')}`);
    const noReward = dealIds.filter((id) => !crmMinor(portal.getEntity('deal', id)?.[F.REWARD]));
    if (noReward.length) return notYet(`${F.REWARD} not written on deals ${noReward.join(', ')}`);
    const memberIds = [...new Set(credits.map((e) => e.memberId))];
    const balances = await store.ledger.balances(installation.id, memberIds, new Date());
    for (const member of await store.members.getMany(installation.id, memberIds)) {
      const expected = balances.get(member.id)?.available ?? 0;
      const shown = member.contactId === null ? expected : crmMinor(portal.getEntity('contact', member.contactId)?.[F.BALANCE]);
      if (shown !== expected) return notYet(`${F.BALANCE} of contact ${member.contactId} differs from the ledger`);
    }
    // The rest of the demo's changes (enrolments, referral counts, the echoes of Sarafan's own writes) too.
    const depth = await store.jobs.depth(installation.id);
    if (depth.queued + depth.running) return notYet(`${depth.queued + depth.running} queued CRM changes still to process`);
    return true;
  });
}

interface Wait {
  timeoutMs: number;
  pollMs: number;
}

async function until<T>(wait: Wait, failure: string | (() => string), probe: () => T | null | Promise<T | null>): Promise<T> {
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() >= deadline) {
      const why = typeof failure === 'string' ? failure : failure();
      throw new Error(`The demo is not ready: ${why} within ${Math.round(wait.timeoutMs / 1000)} s. Is Sarafan's worker running (SARAFAN_ROLE=all)? See the log above.`);
    }
    await new Promise((r) => setTimeout(r, wait.pollMs));
  }
}
