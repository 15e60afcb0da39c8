/**
 * Reading legacy CRM entities (`crm.deal.get`, `crm.contact.get`, `crm.lead.get`): UPPER_CASE
 * keys, every value a string, empty values as '' / null / false / '0' (reference §5.2, §6).
 */
import { F, parseCrmRef } from '../rules/crm-fields.js';
import { toMinor } from '../rules/money.js';
import type { BatchOutcome, CrmEntity, PersonEntity, PortalGateway } from './ports.js';

export interface PersonRef {
  entity: PersonEntity;
  id: number;
}

export interface DealFacts {
  id: number;
  stageId: string;
  semantic: 'P' | 'S' | 'F';
  amount: number; // minor units, deal currency
  currency: string;
  categoryId: number;
  /** The client: the deal's contact, else the lead it was converted from. */
  client: PersonRef | null;
  /** The lead the deal was converted from. */
  leadId: number | null;
  refCode: string | null;
  referrerRef: PersonRef | null;
  raw: Record<string, unknown>;
}

export interface PersonFacts {
  entity: PersonEntity;
  id: number;
  refCode: string | null;
  referrerRef: PersonRef | null;
  /** For contacts: the lead this contact was converted from. */
  leadId: number | null;
  raw: Record<string, unknown>;
}

export function positiveId(value: unknown): number | null {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function text(value: unknown): string | null {
  if (Array.isArray(value)) return text(value[0]);
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const s = String(value).trim();
  return s === '' ? null : s;
}

export function parseDeal(id: number, raw: Record<string, unknown>): DealFacts {
  const semanticRaw = text(raw.STAGE_SEMANTIC_ID);
  const semantic = semanticRaw === 'S' || semanticRaw === 'F' ? semanticRaw : 'P';
  const contactId = positiveId(raw.CONTACT_ID);
  const leadId = positiveId(raw.LEAD_ID);
  return {
    id,
    stageId: text(raw.STAGE_ID) ?? '',
    semantic,
    amount: toMinor(text(raw.OPPORTUNITY) ?? '0') ?? 0,
    currency: (text(raw.CURRENCY_ID) ?? '').toUpperCase(),
    categoryId: positiveId(raw.CATEGORY_ID) ?? 0,
    client: contactId ? { entity: 'contact', id: contactId } : leadId ? { entity: 'lead', id: leadId } : null,
    leadId,
    refCode: text(raw[F.REF_CODE]),
    referrerRef: parseCrmRef(raw[F.REFERRER]),
    raw,
  };
}

export function parsePerson(entity: PersonEntity, id: number, raw: Record<string, unknown>): PersonFacts {
  return {
    entity,
    id,
    refCode: text(raw[F.REF_CODE]),
    referrerRef: parseCrmRef(raw[F.REFERRER]),
    leadId: entity === 'contact' ? positiveId(raw.LEAD_ID) : null,
    raw,
  };
}

export function getMethod(entity: CrmEntity): string {
  return `crm.${entity}.get`;
}

export function updateMethod(entity: CrmEntity): string {
  return `crm.${entity}.update`;
}

/** Ids per `crm.X.list` command: one page (reference §3.3). */
const LIST_PAGE = 50;

/**
 * Reads entities with as few requests as the portal allows: one `crm.<entity>.list` command per
 * 50 ids (`@ID` filter, `start=-1`: no COUNT), so one `batch` request reads up to 2 500 entities
 * where `crm.<entity>.get` would read 50 (SPEC 11: ≤ 0.1 requests per credited deal). A list
 * silently leaves out what it does not return — deleted, or not visible to the token — so each id
 * missing from the lists is asked for with `get`, whose answer tells "Not found" apart from
 * "Access denied". Outcomes are in the order of `refs`, shaped as `get` answers.
 */
export async function readEntities(gateway: Pick<PortalGateway, 'batch'>, refs: { entity: CrmEntity; id: number }[]): Promise<BatchOutcome[]> {
  const lists: { entity: CrmEntity; ids: number[] }[] = [];
  for (const entity of new Set(refs.map((r) => r.entity))) {
    const ids = [...new Set(refs.filter((r) => r.entity === entity).map((r) => r.id))];
    for (let i = 0; i < ids.length; i += LIST_PAGE) lists.push({ entity, ids: ids.slice(i, i + LIST_PAGE) });
  }
  const answers = await gateway.batch(
    lists.map((l) => ({ method: `crm.${l.entity}.list`, params: { filter: { '@ID': l.ids }, select: ['*', 'UF_*'], start: -1 } })),
  );
  const found = new Map<string, BatchOutcome>();
  lists.forEach((l, i) => {
    const answer = answers[i]!;
    for (const id of l.ids) {
      if (!answer.ok) {
        found.set(`${l.entity}:${id}`, answer);
        continue;
      }
      const row = (Array.isArray(answer.result) ? answer.result : []).find((r) => positiveId((r as Record<string, unknown>)?.ID) === id);
      if (row) found.set(`${l.entity}:${id}`, { ok: true, result: row });
    }
  });
  const missing = lists.flatMap((l) => l.ids.filter((id) => !found.has(`${l.entity}:${id}`)).map((id) => ({ entity: l.entity, id })));
  if (missing.length) {
    const gets = await gateway.batch(missing.map((r) => ({ method: getMethod(r.entity), params: { id: r.id } })));
    missing.forEach((r, i) => found.set(`${r.entity}:${r.id}`, gets[i]!));
  }
  return refs.map((r) => found.get(`${r.entity}:${r.id}`)!);
}
