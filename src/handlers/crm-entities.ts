/**
 * Reading legacy CRM entities (`crm.deal.get`, `crm.contact.get`, `crm.lead.get`): UPPER_CASE
 * keys, every value a string, empty values as '' / null / false / '0' (reference §5.2, §6).
 */
import { F, parseCrmRef } from '../rules/crm-fields.js';
import { toMinor } from '../rules/money.js';
import type { CrmEntity, PersonEntity } from './ports.js';

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
