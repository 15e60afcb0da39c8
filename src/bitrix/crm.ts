/**
 * The CRM port over the portal gateway (STYLE.md practice 16): legacy entity methods
 * (`crm.deal.*`, `crm.contact.*`, `crm.lead.*`) with UPPER_CASE keys, every value a string,
 * empties as '' / null / false / '0' (reference §5.2, §6), answered to use cases in domain form.
 * Every call goes through the installation's one gateway (limits, batching, token refresh).
 */
import { positiveId } from '../rules/ids.js';
import { toMinor } from '../rules/money.js';
import type {
  CrmDeal,
  CrmEntity,
  CrmOutcome,
  CrmPerson,
  CrmPort,
  CrmPorts,
  CrmRead,
  CurrencyRate,
  PersonDetails,
  PersonEntity,
  PersonRef,
  PortalSettings,
} from '../handlers/ports.js';
import type { BatchCommand, BatchOutcome, PortalGateway, PortalGatewayFactory } from './portal-gateway.js';
import { F, parseCrmRef, shownProjection, toWire, wireText } from './crm-fields.js';

export { positiveId };

export function parseDeal(id: number, raw: Record<string, unknown>): CrmDeal {
  const semanticRaw = wireText(raw.STAGE_SEMANTIC_ID);
  const semantic = semanticRaw === 'S' || semanticRaw === 'F' ? semanticRaw : 'P';
  const contactId = positiveId(raw.CONTACT_ID);
  const leadId = positiveId(raw.LEAD_ID);
  return {
    id,
    stageId: wireText(raw.STAGE_ID) ?? '',
    semantic,
    amount: toMinor(wireText(raw.OPPORTUNITY) ?? '0') ?? 0,
    currency: (wireText(raw.CURRENCY_ID) ?? '').toUpperCase(),
    categoryId: positiveId(raw.CATEGORY_ID) ?? 0,
    client: contactId ? { entity: 'contact', id: contactId } : leadId ? { entity: 'lead', id: leadId } : null,
    leadId,
    refCode: wireText(raw[F.REF_CODE]),
    referrer: parseCrmRef(raw[F.REFERRER]),
    shown: shownProjection(raw),
    assignedById: positiveId(raw.ASSIGNED_BY_ID),
  };
}

/** The VALUEs of a multi-field (`PHONE`, `EMAIL`): `[{ID, TYPE_ID, VALUE, VALUE_TYPE}]`, absent when empty (reference §5.2). */
function multiValues(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((m) => wireText((m as Record<string, unknown> | null)?.VALUE)).filter((v): v is string => v !== null);
}

export function parsePerson(entity: PersonEntity, id: number, raw: Record<string, unknown>): CrmPerson {
  // A lead carries its amount like a deal (OPPORTUNITY, CURRENCY_ID).
  const amount = entity === 'lead' ? toMinor(wireText(raw.OPPORTUNITY) ?? '') : null;
  const currency = (wireText(raw.CURRENCY_ID) ?? '').toUpperCase();
  return {
    entity,
    id,
    refCode: wireText(raw[F.REF_CODE]),
    referrer: parseCrmRef(raw[F.REFERRER]),
    leadId: entity === 'contact' ? positiveId(raw.LEAD_ID) : null,
    shown: shownProjection(raw),
    phones: multiValues(raw.PHONE),
    emails: multiValues(raw.EMAIL),
    opportunity: amount !== null && amount > 0 ? { amount, currency } : null,
  };
}

/** Ids per `crm.X.list` command: one page (reference §3.3). */
const LIST_PAGE = 50;

/** Sarafan's user fields each read compares (the RFM segment is only ever written). */
const PERSON_READ = [F.CODE, F.LINK, F.BALANCE, F.PENDING, F.REFERRALS, F.TIER, F.JOINED, F.REF_CODE, F.REFERRER];
const DEAL_READ = [F.REF_CODE, F.REFERRER, F.REWARD, F.REDEEMED];

/**
 * What the loop reads of each entity: the standard fields parseDeal and parsePerson use, and
 * Sarafan's user fields on that entity (install/manifest.ts) that they compare. Named one by one
 * (reference §5: always pass `select`): `*` and `UF_*` would bring some 60 fields per entity that
 * nothing reads, in batches of up to 2 500 entities — which the portal assembles, the network
 * carries, and the SDK copies and serializes once more for its own log, for every answer. A
 * person's PHONE and EMAIL (multi-fields, which only come when named: reference §5.2) are read
 * so that the self-referral check by phone or e-mail costs no request of its own.
 */
export const READ_SELECT: Record<CrmEntity, readonly string[]> = {
  deal: ['ID', 'STAGE_ID', 'STAGE_SEMANTIC_ID', 'OPPORTUNITY', 'CURRENCY_ID', 'CATEGORY_ID', 'CONTACT_ID', 'LEAD_ID', 'ASSIGNED_BY_ID', ...DEAL_READ],
  contact: ['ID', 'LEAD_ID', 'PHONE', 'EMAIL', ...PERSON_READ],
  // A lead carries its amount like a deal.
  lead: ['ID', 'OPPORTUNITY', 'CURRENCY_ID', 'PHONE', 'EMAIL', ...PERSON_READ],
};

/**
 * Reads entities with as few requests as the portal allows: one `crm.<entity>.list` command per
 * 50 ids (`@ID` filter, `start=-1`: no COUNT), so one `batch` request reads up to 2 500 entities
 * where `crm.<entity>.get` would read 50 (SPEC 11: ≤ 0.1 requests per credited deal). A list
 * silently leaves out what it does not return — deleted, or not visible to the token — so each id
 * missing from the lists is asked for with `get`, whose answer tells "Not found" apart from
 * "Access denied". Outcomes are in the order of `refs`, shaped as `get` answers.
 */
export async function readEntities(gateway: Pick<PortalGateway, 'batch'>, refs: { entity: CrmEntity; id: number }[]): Promise<BatchOutcome[]> {
  return (await readEntitiesWith(gateway, refs, [])).entities;
}

/** readEntities plus `extra` commands sent in the same first batch request(s); their outcomes in order. */
async function readEntitiesWith(
  gateway: Pick<PortalGateway, 'batch'>,
  refs: { entity: CrmEntity; id: number }[],
  extra: BatchCommand[],
): Promise<{ entities: BatchOutcome[]; extra: BatchOutcome[] }> {
  if (!refs.length && !extra.length) return { entities: [], extra: [] };
  const lists: { entity: CrmEntity; ids: number[] }[] = [];
  for (const entity of new Set(refs.map((r) => r.entity))) {
    const ids = [...new Set(refs.filter((r) => r.entity === entity).map((r) => r.id))];
    for (let i = 0; i < ids.length; i += LIST_PAGE) lists.push({ entity, ids: ids.slice(i, i + LIST_PAGE) });
  }
  const sent = await gateway.batch([
    ...lists.map((l) => ({ method: `crm.${l.entity}.list`, params: { filter: { '@ID': l.ids }, select: [...READ_SELECT[l.entity]], start: -1 } })),
    ...extra,
  ]);
  const answers = sent.slice(0, lists.length);
  const extraAnswers = sent.slice(lists.length);
  const found = new Map<string, BatchOutcome>();
  lists.forEach((l, i) => {
    const answer = answers[i]!;
    const rows = new Map<number, unknown>();
    if (answer.ok && Array.isArray(answer.result)) {
      for (const r of answer.result) {
        const id = positiveId((r as Record<string, unknown>)?.ID);
        if (id !== null) rows.set(id, r);
      }
    }
    for (const id of l.ids) {
      if (!answer.ok) found.set(`${l.entity}:${id}`, answer);
      else if (rows.has(id)) found.set(`${l.entity}:${id}`, { ok: true, result: rows.get(id) });
    }
  });
  const missing = lists.flatMap((l) => l.ids.filter((id) => !found.has(`${l.entity}:${id}`)).map((id) => ({ entity: l.entity, id })));
  if (missing.length) {
    const gets = await gateway.batch(missing.map((r) => ({ method: `crm.${r.entity}.get`, params: { id: r.id } })));
    missing.forEach((r, i) => found.set(`${r.entity}:${r.id}`, gets[i]!));
  }
  return { entities: refs.map((r) => found.get(`${r.entity}:${r.id}`)!), extra: extraAnswers };
}

/**
 * The settings commands: `server.time` answers in the portal's server time zone
 * (`2024-08-05T12:02:13+03:00`), which is the zone the portal's dates are stored in (reference
 * §3: "values are stored in server time zone"), so its offset is the portal's; `crm.currency.list`
 * gives each currency's AMOUNT base units per AMOUNT_CNT units.
 */
const SETTINGS_COMMANDS: BatchCommand[] = [{ method: 'server.time' }, { method: 'crm.currency.list', params: { order: { SORT: 'ASC' } } }];

const OFFSET = /([+-])(\d{2}):?(\d{2})$/;

export function parseSettings(time: BatchOutcome, currencies: BatchOutcome): CrmRead<Omit<PortalSettings, 'readAt'>> {
  if (!time.ok) return { status: 'failed', error: `${time.error}: ${time.description}` };
  if (!currencies.ok) return { status: 'failed', error: `${currencies.error}: ${currencies.description}` };
  const m = typeof time.result === 'string' ? OFFSET.exec(time.result) : null;
  if (!m) return { status: 'failed', error: `server.time answered no UTC offset: ${JSON.stringify(time.result)}` };
  const utcOffsetMinutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  const rows: CurrencyRate[] = [];
  for (const raw of Array.isArray(currencies.result) ? (currencies.result as Record<string, unknown>[]) : []) {
    const currency = wireText(raw?.CURRENCY)?.toUpperCase();
    const amount = wireText(raw?.AMOUNT);
    const amountCnt = Number(wireText(raw?.AMOUNT_CNT) ?? '1');
    // A row without a usable rate is left out: a deal in that currency is then not priced (logged).
    if (!currency || !amount || !/^\d+(\.\d+)?$/.test(amount) || !Number.isInteger(amountCnt) || amountCnt <= 0) continue;
    rows.push({ currency, amount, amountCnt, base: wireText(raw?.BASE) === 'Y' });
  }
  return { status: 'found', record: { utcOffsetMinutes, currencies: rows } };
}

/** Legacy methods answer a missing entity with an empty error code and "Not found" (reference §5.2). */
function isNotFound(outcome: Extract<BatchOutcome, { ok: false }>): boolean {
  return /not found/i.test(outcome.description);
}

function toRead<T>(outcome: BatchOutcome, parse: (raw: Record<string, unknown>) => T): CrmRead<T> {
  if (outcome.ok) return { status: 'found', record: parse((outcome.result ?? {}) as Record<string, unknown>) };
  if (isNotFound(outcome)) return { status: 'not_found' };
  return { status: 'failed', error: `${outcome.error}: ${outcome.description}` };
}

const toOutcome = (o: BatchOutcome): CrmOutcome => (o.ok ? { ok: true } : { ok: false, error: `${o.error}: ${o.description}`, notFound: isNotFound(o) });

export function createCrm(gateway: Pick<PortalGateway, 'batch'>): CrmPort {
  return {
    async read({ deals, people, settings }) {
      const refs: { entity: CrmEntity; id: number }[] = [...deals.map((id) => ({ entity: 'deal' as const, id })), ...people];
      const { entities: answers, extra } = await readEntitiesWith(gateway, refs, settings ? SETTINGS_COMMANDS : []);
      const dealReads = new Map<number, CrmRead<CrmDeal>>();
      const peopleReads = new Map<string, CrmRead<CrmPerson>>();
      refs.forEach((ref, i) => {
        if (ref.entity === 'deal') dealReads.set(ref.id, toRead(answers[i]!, (raw) => parseDeal(ref.id, raw)));
        else peopleReads.set(`${ref.entity}:${ref.id}`, toRead(answers[i]!, (raw) => parsePerson(ref.entity as PersonEntity, ref.id, raw)));
      });
      return { deals: dealReads, people: peopleReads, ...(settings ? { settings: parseSettings(extra[0]!, extra[1]!) } : {}) };
    },

    async writeProjections(writes) {
      if (!writes.length) return [];
      // REGISTER_SONET_EVENT=N: a projection is bookkeeping, not news for the live feed.
      const outcomes = await gateway.batch(
        writes.map((w) => ({ method: `crm.${w.entity}.update`, params: { id: w.id, fields: toWire(w.values), params: { REGISTER_SONET_EVENT: 'N' } } })),
      );
      return outcomes.map(toOutcome);
    },

    async sendFeedback(messages) {
      if (!messages.length) return [];
      const outcomes = await gateway.batch(
        messages.map(({ to, text, tag }) =>
          'userId' in to
            ? { method: 'im.notify.system.add', params: { USER_ID: to.userId, MESSAGE: text, ...(tag ? { TAG: tag } : {}) } }
            : // Only the lower-case `fields` key is accepted (reference §5.6).
              { method: 'crm.timeline.comment.add', params: { fields: { ENTITY_ID: to.id, ENTITY_TYPE: to.entity, COMMENT: text } } },
        ),
      );
      return outcomes.map(toOutcome);
    },

    async answerRobot(eventToken, values, log) {
      // One batch: the line for the robot's log, then the answer the workflow waits for (reference
      // §8.3) — in that order, because the answer uses the token up and the workflow moves on.
      const outcomes = await gateway.batch([
        { method: 'bizproc.activity.log', params: { EVENT_TOKEN: eventToken, LOG_MESSAGE: log } },
        { method: 'bizproc.event.send', params: { EVENT_TOKEN: eventToken, RETURN_VALUES: values, LOG_MESSAGE: log } },
      ]);
      return outcomes.map(toOutcome);
    },

    contactDetails: (people) => readDetails(gateway, people),
  };
}

/** Only what a payout needs: names, PHONE and EMAIL (multi-fields are left out of `*`). */
const DETAILS_SELECT = ['ID', 'NAME', 'SECOND_NAME', 'LAST_NAME', 'PHONE', 'EMAIL'];

/**
 * People's details in one `batch` request per 2 500 people: one `crm.<entity>.list` command per
 * 50 ids (`@ID`, `start=-1`: no COUNT), never a request per person. Unlike readEntities, ids a
 * list leaves out are not asked for again with `get`: an export shows them without a name.
 */
async function readDetails(gateway: Pick<PortalGateway, 'batch'>, people: PersonRef[]): Promise<Map<string, CrmRead<PersonDetails>>> {
  const lists: { entity: PersonEntity; ids: number[] }[] = [];
  for (const entity of ['contact', 'lead'] as const) {
    const ids = [...new Set(people.filter((p) => p.entity === entity).map((p) => p.id))];
    for (let i = 0; i < ids.length; i += LIST_PAGE) lists.push({ entity, ids: ids.slice(i, i + LIST_PAGE) });
  }
  const result = new Map<string, CrmRead<PersonDetails>>();
  if (!lists.length) return result;
  const answers = await gateway.batch(lists.map((l) => ({ method: `crm.${l.entity}.list`, params: { filter: { '@ID': l.ids }, select: DETAILS_SELECT, start: -1 } })));
  lists.forEach((l, i) => {
    const answer = answers[i]!;
    const rows = new Map<number, Record<string, unknown>>();
    if (answer.ok && Array.isArray(answer.result)) {
      for (const r of answer.result as Record<string, unknown>[]) {
        const id = positiveId(r?.ID);
        if (id !== null) rows.set(id, r);
      }
    }
    for (const id of l.ids) {
      const key = `${l.entity}:${id}`;
      const raw = rows.get(id);
      if (!answer.ok) result.set(key, { status: 'failed', error: `${answer.error}: ${answer.description}` });
      else if (!raw) result.set(key, { status: 'not_found' });
      else {
        result.set(key, {
          status: 'found',
          record: { name: wireText(raw.NAME), secondName: wireText(raw.SECOND_NAME), lastName: wireText(raw.LAST_NAME), phones: multiValues(raw.PHONE), emails: multiValues(raw.EMAIL) },
        });
      }
    }
  });
  return result;
}

export function createCrmPorts(gateways: Pick<PortalGatewayFactory, 'forInstallation'>): CrmPorts {
  return { forInstallation: (installation) => createCrm(gateways.forInstallation(installation)) };
}

export type { PersonRef };
