/**
 * Months of the furniture shop's life, so the admin dashboard's charts have something to say:
 * - before Sarafan: a year of won deals of earlier clients, brought in as a CRM import keeps
 *   them (DATE_CREATE and the close date of where they came from), in the main pipeline and
 *   a wholesale one; the install's backfill reads them into Sarafan's history;
 * - after the install: half a year of two-week steps on the demo clock (shared by the portal and
 *   Sarafan, only ever moving forward): earlier clients buy again and are enrolled, visitors
 *   open their referral links, friends come with codes (contacts and leads), their deals are
 *   won or lost weeks later, and one won deal is refunded. Sarafan does its part through the
 *   real loop at each step's time; the step waits for it before the clock moves on.
 *
 * Deterministic for a given seed: every choice comes from one seeded generator.
 */
import { F } from '../../src/bitrix/crm-fields.js';
import type { SteppedClock } from '../../sandbox/clock.js';
import type { Actor, ImportRow, Portal } from '../../sandbox/types.js';

const DAY = 86_400_000;
const MANAGER: Actor = { userId: 2 };
export const WHOLESALE = 'Оптовые продажи';

/** mulberry32: small, fast and good enough to pick demo data reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const between = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;

const MALE = ['Александр', 'Михаил', 'Артём', 'Максим', 'Иван', 'Никита', 'Роман', 'Владимир', 'Константин', 'Григорий', 'Олег', 'Евгений'];
const FEMALE = ['Анна', 'Екатерина', 'Ирина', 'Светлана', 'Ксения', 'Дарья', 'Вера', 'Людмила', 'Полина', 'Галина', 'Алина', 'Софья'];
const LAST = ['Белов', 'Захаров', 'Комаров', 'Макаров', 'Тихонов', 'Григорьев', 'Степанов', 'Крылов', 'Воробьёв', 'Гусев', 'Жуков', 'Баранов', 'Сорокин', 'Виноградов', 'Карпов'];
const GOODS = ['Диван', 'Кровать с подъёмным механизмом', 'Шкаф-купе', 'Кухонный гарнитур', 'Обеденный стол', 'Кресло', 'Стеллаж', 'Прихожая', 'Комод', 'Детская кровать', 'Матрас', 'Рабочий стол'];
const BULK = ['Партия стульев для кафе', 'Мебель для офиса', 'Кухни для новостройки', 'Мебель для гостиницы'];

interface Person {
  name: string;
  last: string;
  phone: string;
  email: string;
}

/** The n-th demo person; phones and e-mails unique, so no one looks like someone else's duplicate. */
function person(rng: Rng, n: number, prefix: string): Person {
  const female = rng() < 0.5;
  const last = pick(rng, LAST);
  return {
    name: pick(rng, female ? FEMALE : MALE),
    last: female ? `${last}а` : last,
    phone: `+7 9${String(10 + (n % 89)).padStart(2, '0')} ${String(100 + n).slice(-3)}-${String(between(rng, 10, 99))}-${String(between(rng, 10, 99))}`,
    email: `${prefix}${n}@example.ru`,
  };
}

function contactFields(p: Person): Record<string, unknown> {
  return { NAME: p.name, LAST_NAME: p.last, PHONE: [{ VALUE: p.phone, VALUE_TYPE: 'MOBILE' }], EMAIL: [{ VALUE: p.email, VALUE_TYPE: 'WORK' }] };
}

const amount = (rng: Rng, lo: number, hi: number): number => Math.round(between(rng, lo, hi) / 1000) * 1000;

export interface ImportedHistory {
  /** The earlier clients (contact ids), in import order. */
  clients: number[];
  /** Won deals imported, by pipeline id. */
  wonDeals: Map<number, number[]>;
}

/**
 * A year of the shop's sales before `until` (the install), imported as a CRM import keeps them:
 * `clients` earlier clients buying 1–5 times, some wholesale deals in their own pipeline, a few
 * lost deals. Nothing here involves Sarafan, which is not installed yet.
 */
export function importShopHistory(portal: Portal, rng: Rng, until: number, clients = 60): ImportedHistory {
  const wholesale = portal.addCategory(WHOLESALE);
  const yearAgo = until - 365 * DAY;
  const people = Array.from({ length: clients }, (_v, i) => ({ person: person(rng, i + 1, 'klient'), firstAt: yearAgo + between(rng, 0, 300) * DAY }));
  people.sort((a, b) => a.firstAt - b.firstAt);
  const contactRows: ImportRow[] = people.map((p) => ({ fields: contactFields(p.person), createdAt: p.firstAt - between(rng, 1, 10) * DAY }));
  const contactIds = portal.importEntities('contact', contactRows, MANAGER);

  const deals: (ImportRow & { won: boolean; category: number })[] = [];
  people.forEach((p, i) => {
    // Most clients buy once or twice; some keep coming back (up to five purchases).
    const r = rng();
    const purchases = r < 0.3 ? 1 : r < 0.6 ? 2 : r < 0.8 ? 3 : r < 0.93 ? 4 : 5;
    let at = p.firstAt;
    for (let k = 0; k < purchases && at < until - 3 * DAY; k++) {
      const bulk = rng() < 0.08;
      const won = rng() < 0.9;
      const closedAt = Math.min(at + between(rng, 3, 30) * DAY, until - DAY);
      deals.push({
        fields: {
          TITLE: bulk ? pick(rng, BULK) : pick(rng, GOODS),
          OPPORTUNITY: bulk ? amount(rng, 150_000, 400_000) : amount(rng, 20_000, 250_000),
          CURRENCY_ID: 'RUB',
          CONTACT_ID: contactIds[i],
          CATEGORY_ID: bulk ? wholesale : 0,
          STAGE_ID: bulk ? `C${wholesale}:${won ? 'WON' : 'LOSE'}` : won ? 'WON' : 'LOSE',
        },
        createdAt: at,
        closedAt,
        won,
        category: bulk ? wholesale : 0,
      });
      at = closedAt + between(rng, 20, 120) * DAY;
    }
  });
  // The big wholesale buyer: a pipeline with a handful of deals at least.
  for (let k = 0; k < 4; k++) {
    const at = yearAgo + (40 + k * 70) * DAY;
    deals.push({
      fields: { TITLE: pick(rng, BULK), OPPORTUNITY: amount(rng, 200_000, 400_000), CURRENCY_ID: 'RUB', CONTACT_ID: contactIds[0], CATEGORY_ID: wholesale, STAGE_ID: `C${wholesale}:WON` },
      createdAt: at,
      closedAt: at + 10 * DAY,
      won: true,
      category: wholesale,
    });
  }
  deals.sort((a, b) => a.createdAt - b.createdAt);
  const dealIds = portal.importEntities('deal', deals, MANAGER);
  const wonDeals = new Map<number, number[]>();
  deals.forEach((d, i) => {
    if (d.won) wonDeals.set(d.category, [...(wonDeals.get(d.category) ?? []), dealIds[i]!]);
  });
  return { clients: contactIds, wonDeals };
}

export interface ActivityOptions {
  clock: SteppedClock;
  /** Where the weekly steps end (Unix ms); the clock is left there. */
  until: number;
  /** Default 14: each step waits for Sarafan a few times, and on a shared 2-core machine that is what costs start-up time. */
  stepDays?: number;
  /** Resolves once Sarafan has processed everything the step caused (see sandbox-demo.ts). */
  settle(): Promise<void>;
  /** A visitor opening a referral link (GET, redirects not followed). */
  visit(url: string): Promise<void>;
}

export interface Activity {
  steps: number;
  clicks: number;
  referredContacts: number[];
  referredLeads: number[];
  wonReferredDeals: number[];
  lostReferredDeals: number[];
  /** The won referred deal later refunded (moved back to lost). */
  refunded: number | null;
}

interface Pending {
  dealId: number;
  dueStep: number;
  win: boolean;
}

/**
 * The weeks since the install, replayed on the demo clock: each step happens at its time, then
 * waits for Sarafan, then the clock moves a step forward (never back).
 */
export async function replayActivity(portal: Portal, rng: Rng, history: ImportedHistory, opts: ActivityOptions): Promise<Activity> {
  const stepMs = (opts.stepDays ?? 14) * DAY;
  const out: Activity = { steps: 0, clicks: 0, referredContacts: [], referredLeads: [], wonReferredDeals: [], lostReferredDeals: [], refunded: null };
  const returning = [...history.clients];
  const pending: Pending[] = [];
  let friend = 0;
  for (let step = 0; opts.clock.now() < opts.until; step++) {
    out.steps++;
    const stepStart = opts.clock.now();
    // Earlier clients come back; a won deal enrols them (the program's default), giving them a code.
    for (let k = between(rng, 1, 3); k > 0 && returning.length; k--) {
      const contact = returning.splice(Math.floor(rng() * returning.length), 1)[0]!;
      const id = portal.addEntity('deal', { TITLE: pick(rng, GOODS), OPPORTUNITY: amount(rng, 20_000, 200_000), CURRENCY_ID: 'RUB', CONTACT_ID: contact, STAGE_ID: 'NEW' }, MANAGER);
      portal.updateEntity('deal', id, { STAGE_ID: 'WON' }, MANAGER);
    }
    const referrers = history.clients
      .map((id) => ({ id, row: portal.getEntity('contact', id) }))
      .filter((r) => typeof r.row?.[F.CODE] === 'string' && r.row[F.CODE] !== '' && typeof r.row[F.LINK] === 'string');
    const links = referrers.map((r) => String(r.row![F.LINK]));
    if (referrers.length) {
      // Some visitors become clients: a contact with the code, and a deal decided in one or two steps.
      for (let k = between(rng, 0, 3); k > 0; k--) {
        const ref = pick(rng, referrers);
        const contact = portal.addEntity('contact', { ...contactFields(person(rng, ++friend, 'drug')), [F.REF_CODE]: ref.row![F.CODE] }, MANAGER);
        out.referredContacts.push(contact);
        const deal = portal.addEntity('deal', { TITLE: pick(rng, GOODS), OPPORTUNITY: amount(rng, 30_000, 300_000), CURRENCY_ID: 'RUB', CONTACT_ID: contact, STAGE_ID: 'NEW' }, MANAGER);
        pending.push({ dealId: deal, dueStep: step + between(rng, 1, 2), win: rng() < 0.75 });
      }
      // Others leave a request (a lead with the code) that is still being worked on.
      if (rng() < 0.6) {
        const ref = pick(rng, referrers);
        const p = person(rng, ++friend, 'drug');
        out.referredLeads.push(portal.addEntity('lead', { TITLE: `Заявка с сайта: ${pick(rng, GOODS).toLowerCase()}`, ...contactFields(p), OPPORTUNITY: amount(rng, 30_000, 200_000), [F.REF_CODE]: ref.row![F.CODE] }, MANAGER));
      }
    }
    for (const due of pending.filter((p) => p.dueStep <= step)) {
      pending.splice(pending.indexOf(due), 1);
      portal.updateEntity('deal', due.dealId, { STAGE_ID: due.win ? 'WON' : 'LOSE' }, MANAGER);
      (due.win ? out.wonReferredDeals : out.lostReferredDeals).push(due.dealId);
    }
    // Midway, a client returns a purchase: the won deal goes back to lost, and Sarafan reverses its reward.
    if (out.refunded === null && step >= 6 && out.wonReferredDeals.length > 1) {
      out.refunded = out.wonReferredDeals[0]!;
      portal.updateEntity('deal', out.refunded, { STAGE_ID: 'LOSE', COMMENTS: 'Возврат: клиент отказался от покупки' }, MANAGER);
    }
    await opts.settle();
    // Visitors open the links over the days of the step; a click only records a row, so no wait between.
    const end = Math.min(opts.until, stepStart + stepMs);
    const clicks = links.length ? between(rng, 4, 14) : 0;
    for (let k = 1; k <= clicks; k++) {
      opts.clock.advanceTo(Math.max(opts.clock.now(), stepStart + Math.floor(((end - stepStart) * k) / (clicks + 1))));
      await opts.visit(pick(rng, links));
      out.clicks++;
    }
    opts.clock.advanceTo(Math.max(opts.clock.now(), end));
  }
  // Deals still open stay in progress, as in any live pipeline.
  await opts.settle();
  return out;
}
