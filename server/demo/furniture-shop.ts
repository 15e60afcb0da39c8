/**
 * The demo a fresh `npm start` shows: a furniture shop's CRM in Russian. Three clients bought
 * before and so are in Sarafan's program; friends came with their codes, some of those deals
 * are won (their referrers get a bonus), some are still in progress for the visitor to win.
 *
 * Everything goes through the portal as a manager's work would, so events flow and Sarafan does
 * its part: the referrers' codes exist only after Sarafan has enrolled them, which the seed waits
 * for before it creates the referred clients.
 */
import { F } from '../../src/bitrix/crm-fields.js';
import type { Actor, Portal, Row } from '../../sandbox/types.js';

interface Person {
  name: string;
  last: string;
  phone: string;
  email: string;
}

interface DealSeed {
  title: string;
  amount: number;
  stage: string;
}

const MANAGER: Actor = { userId: 2 };

const REFERRERS: { person: Person; deal: DealSeed }[] = [
  { person: { name: 'Ольга', last: 'Смирнова', phone: '+7 916 204-11-35', email: 'olga.smirnova@example.ru' }, deal: { title: 'Кухонный гарнитур «Прованс»', amount: 180_000, stage: 'WON' } },
  { person: { name: 'Дмитрий', last: 'Кузнецов', phone: '+7 903 517-42-08', email: 'd.kuznetsov@example.ru' }, deal: { title: 'Шкаф-купе в спальню', amount: 95_000, stage: 'WON' } },
  { person: { name: 'Елена', last: 'Попова', phone: '+7 925 330-76-19', email: 'elena.popova@example.ru' }, deal: { title: 'Обеденная группа', amount: 64_000, stage: 'WON' } },
];

/** Friends who came with a referrer's code (index into REFERRERS). */
const REFERRED: { person: Person; referrer: number; deal: DealSeed }[] = [
  { person: { name: 'Сергей', last: 'Волков', phone: '+7 917 845-23-60', email: 'volkov.s@example.ru' }, referrer: 0, deal: { title: 'Прихожая с зеркалом', amount: 72_000, stage: 'WON' } },
  { person: { name: 'Наталья', last: 'Морозова', phone: '+7 926 118-90-44', email: 'morozova.n@example.ru' }, referrer: 0, deal: { title: 'Детская комната', amount: 120_000, stage: 'EXECUTING' } },
  { person: { name: 'Алексей', last: 'Новиков', phone: '+7 905 672-15-83', email: 'a.novikov@example.ru' }, referrer: 1, deal: { title: 'Гардеробная', amount: 150_000, stage: 'WON' } },
  { person: { name: 'Мария', last: 'Фёдорова', phone: '+7 915 403-58-27', email: 'maria.fedorova@example.ru' }, referrer: 2, deal: { title: 'Кухня под ключ', amount: 210_000, stage: 'PREPARATION' } },
];

const OTHERS: { person: Person; deal: DealSeed | null }[] = [
  { person: { name: 'Андрей', last: 'Соколов', phone: '+7 909 251-64-70', email: 'sokolov.a@example.ru' }, deal: { title: 'Диван угловой', amount: 45_000, stage: 'NEW' } },
  { person: { name: 'Татьяна', last: 'Лебедева', phone: '+7 916 780-33-12', email: 't.lebedeva@example.ru' }, deal: null },
  { person: { name: 'Игорь', last: 'Козлов', phone: '+7 903 964-27-51', email: 'kozlov.igor@example.ru' }, deal: { title: 'Стеллаж в кабинет', amount: 28_000, stage: 'LOSE' } },
  { person: { name: 'Анастасия', last: 'Новикова', phone: '+7 926 347-81-09', email: 'a.novikova@example.ru' }, deal: { title: 'Комод и тумбы', amount: 38_000, stage: 'NEW' } },
  { person: { name: 'Павел', last: 'Егоров', phone: '+7 985 612-40-96', email: 'p.egorov@example.ru' }, deal: null },
];

const LEADS: { title: string; person: Person; referrer: number | null; amount: number }[] = [
  { title: 'Заявка с сайта: шкаф в прихожую', person: { name: 'Виктор', last: 'Орлов', phone: '+7 917 503-26-48', email: 'orlov.v@example.ru' }, referrer: 2, amount: 60_000 },
  { title: 'Звонок: кухня в новостройку', person: { name: 'Юлия', last: 'Павлова', phone: '+7 929 184-67-35', email: 'yulia.pavlova@example.ru' }, referrer: null, amount: 240_000 },
];

/** What the seed created that Sarafan owes something for. */
export interface SeededShop {
  /** The three earlier buyers, in REFERRERS order. */
  referrers: number[];
  /** The referred deals seeded as won: each must be credited to its referrer. */
  wonReferredDeals: number[];
}

export interface SeedOptions {
  /** Resolves once Sarafan has given these contacts their codes (or rejects with the reason). */
  waitForCodes(contacts: number[]): Promise<string[]>;
  /** The caller knows the portal was empty before it seeded its own history (sandbox-demo.ts). */
  fresh?: boolean;
}

/** Seeds the demo into an empty portal; a portal that already has contacts is left alone (null). */
export async function seedFurnitureShop(portal: Portal, opts: SeedOptions): Promise<SeededShop | null> {
  if (!opts.fresh && portal.listEntities('contact', { start: -1, select: ['ID'] }).rows.length) return null;

  const referrers = REFERRERS.map(({ person, deal }) => {
    const contact = addContact(portal, person, {});
    addDeal(portal, contact, deal);
    return contact;
  });
  for (const { person, deal } of OTHERS) {
    const contact = addContact(portal, person, {});
    if (deal) addDeal(portal, contact, deal);
  }

  const codes = await opts.waitForCodes(referrers);
  const wonReferredDeals: number[] = [];
  for (const { person, referrer, deal } of REFERRED) {
    const contact = addContact(portal, person, { [F.REF_CODE]: codes[referrer] });
    const id = addDeal(portal, contact, deal);
    if (deal.stage === 'WON') wonReferredDeals.push(id);
  }
  for (const lead of LEADS) {
    portal.addEntity(
      'lead',
      {
        TITLE: lead.title,
        NAME: lead.person.name,
        LAST_NAME: lead.person.last,
        PHONE: [{ VALUE: lead.person.phone, VALUE_TYPE: 'MOBILE' }],
        EMAIL: [{ VALUE: lead.person.email, VALUE_TYPE: 'WORK' }],
        OPPORTUNITY: lead.amount,
        ...(lead.referrer === null ? {} : { [F.REF_CODE]: codes[lead.referrer] }),
      },
      MANAGER,
    );
  }
  return { referrers, wonReferredDeals };
}

function addContact(portal: Portal, p: Person, extra: Row): number {
  return portal.addEntity(
    'contact',
    {
      NAME: p.name,
      LAST_NAME: p.last,
      PHONE: [{ VALUE: p.phone, VALUE_TYPE: 'MOBILE' }],
      EMAIL: [{ VALUE: p.email, VALUE_TYPE: 'WORK' }],
      ...extra,
    },
    MANAGER,
  );
}

function addDeal(portal: Portal, contactId: number, d: DealSeed): number {
  // Created in progress and then moved, as a manager would: the stage change is what fires robots.
  const id = portal.addEntity('deal', { TITLE: d.title, OPPORTUNITY: d.amount, CURRENCY_ID: 'RUB', CONTACT_ID: contactId, STAGE_ID: 'NEW' }, MANAGER);
  if (d.stage !== 'NEW') portal.updateEntity('deal', id, { STAGE_ID: d.stage }, MANAGER);
  return id;
}
