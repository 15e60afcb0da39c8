/**
 * CRM vocabulary of the sandbox: standard fields per entity (legacy names, types, crm.item
 * names), value normalization into the legacy read shape (strings), user field values, list
 * filtering/ordering/selecting, and the crm.item (camelCase, numbers) view of a row.
 */
import type { EntityKind, Row } from './types.js';
import { PortalError } from './types.js';

export type FieldType =
  | 'integer'
  | 'double'
  | 'string'
  | 'char'
  | 'datetime'
  | 'date'
  | 'crm_status'
  | 'crm_currency'
  | 'crm_category'
  | 'user'
  | 'crm_lead'
  | 'crm_contact'
  | 'crm_company'
  | 'crm_multifield';

export interface FieldSpec {
  name: string;
  type: FieldType;
  title: string;
  /** crm.item name (camelCase). */
  item: string;
  readOnly?: boolean;
  immutable?: boolean;
  multiple?: boolean;
  statusType?: string;
}

const f = (name: string, type: FieldType, title: string, item: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({
  name,
  type,
  title,
  item,
  ...extra,
});

const RO = { readOnly: true };

const COMMON_TAIL: FieldSpec[] = [
  f('ASSIGNED_BY_ID', 'user', 'Ответственный', 'assignedById'),
  f('CREATED_BY_ID', 'user', 'Кем создана', 'createdBy', RO),
  f('MODIFY_BY_ID', 'user', 'Кем изменена', 'updatedBy', RO),
  f('DATE_CREATE', 'datetime', 'Дата создания', 'createdTime', RO),
  f('DATE_MODIFY', 'datetime', 'Дата изменения', 'updatedTime', RO),
  f('OPENED', 'char', 'Доступна для всех', 'opened'),
  f('COMMENTS', 'string', 'Комментарий', 'comments'),
  f('SOURCE_ID', 'crm_status', 'Источник', 'sourceId', { statusType: 'SOURCE' }),
  f('SOURCE_DESCRIPTION', 'string', 'Дополнительно об источнике', 'sourceDescription'),
  f('UTM_SOURCE', 'string', 'Рекламная система', 'utmSource'),
  f('UTM_MEDIUM', 'string', 'Тип трафика', 'utmMedium'),
  f('UTM_CAMPAIGN', 'string', 'Обозначение рекламной кампании', 'utmCampaign'),
  f('UTM_CONTENT', 'string', 'Содержание кампании', 'utmContent'),
  f('UTM_TERM', 'string', 'Условие поиска кампании', 'utmTerm'),
];

export const FIELDS: Record<EntityKind, FieldSpec[]> = {
  deal: [
    f('ID', 'integer', 'ID', 'id', RO),
    f('TITLE', 'string', 'Название', 'title'),
    f('TYPE_ID', 'crm_status', 'Тип', 'typeId', { statusType: 'DEAL_TYPE' }),
    f('CATEGORY_ID', 'crm_category', 'Воронка', 'categoryId', { immutable: true }),
    f('STAGE_ID', 'crm_status', 'Стадия сделки', 'stageId', { statusType: 'DEAL_STAGE' }),
    f('STAGE_SEMANTIC_ID', 'string', 'Группа стадии', 'stageSemanticId', RO),
    f('IS_NEW', 'char', 'Новая сделка', 'isNew', RO),
    f('PROBABILITY', 'integer', 'Вероятность', 'probability'),
    f('CURRENCY_ID', 'crm_currency', 'Валюта', 'currencyId'),
    f('OPPORTUNITY', 'double', 'Сумма', 'opportunity'),
    f('IS_MANUAL_OPPORTUNITY', 'char', 'Сумма заполнена вручную', 'isManualOpportunity'),
    f('TAX_VALUE', 'double', 'Ставка налога', 'taxValue'),
    f('COMPANY_ID', 'crm_company', 'Компания', 'companyId'),
    f('CONTACT_ID', 'crm_contact', 'Контакт', 'contactId'),
    f('LEAD_ID', 'crm_lead', 'Лид', 'leadId'),
    f('BEGINDATE', 'date', 'Дата начала', 'begindate'),
    f('CLOSEDATE', 'date', 'Предполагаемая дата закрытия', 'closedate'),
    f('CLOSED', 'char', 'Сделка закрыта', 'closed'),
    f('MOVED_BY_ID', 'user', 'Кто изменил стадию', 'movedBy', RO),
    f('MOVED_TIME', 'datetime', 'Дата изменения стадии', 'movedTime', RO),
    f('LAST_ACTIVITY_TIME', 'datetime', 'Последняя активность', 'lastActivityTime', RO),
    ...COMMON_TAIL,
  ],
  lead: [
    f('ID', 'integer', 'ID', 'id', RO),
    f('TITLE', 'string', 'Название лида', 'title'),
    f('NAME', 'string', 'Имя', 'name'),
    f('SECOND_NAME', 'string', 'Отчество', 'secondName'),
    f('LAST_NAME', 'string', 'Фамилия', 'lastName'),
    f('COMPANY_TITLE', 'string', 'Название компании', 'companyTitle'),
    f('STATUS_ID', 'crm_status', 'Стадия', 'stageId', { statusType: 'STATUS' }),
    f('STATUS_DESCRIPTION', 'string', 'Дополнительно о стадии', 'statusDescription'),
    f('STATUS_SEMANTIC_ID', 'string', 'Статус обработки', 'stageSemanticId', RO),
    f('CURRENCY_ID', 'crm_currency', 'Валюта', 'currencyId'),
    f('OPPORTUNITY', 'double', 'Сумма', 'opportunity'),
    f('IS_MANUAL_OPPORTUNITY', 'char', 'Сумма заполнена вручную', 'isManualOpportunity'),
    f('CONTACT_ID', 'crm_contact', 'Контакт', 'contactId'),
    f('COMPANY_ID', 'crm_company', 'Компания', 'companyId'),
    f('DATE_CLOSED', 'datetime', 'Дата закрытия', 'dateClosed', RO),
    f('MOVED_BY_ID', 'user', 'Кто изменил стадию', 'movedBy', RO),
    f('MOVED_TIME', 'datetime', 'Дата изменения стадии', 'movedTime', RO),
    f('HAS_PHONE', 'char', 'Задан телефон', 'hasPhone', RO),
    f('HAS_EMAIL', 'char', 'Задан e-mail', 'hasEmail', RO),
    f('PHONE', 'crm_multifield', 'Телефон', 'phone', { multiple: true }),
    f('EMAIL', 'crm_multifield', 'E-mail', 'email', { multiple: true }),
    ...COMMON_TAIL,
  ],
  contact: [
    f('ID', 'integer', 'ID', 'id', RO),
    f('NAME', 'string', 'Имя', 'name'),
    f('SECOND_NAME', 'string', 'Отчество', 'secondName'),
    f('LAST_NAME', 'string', 'Фамилия', 'lastName'),
    f('POST', 'string', 'Должность', 'post'),
    f('BIRTHDATE', 'date', 'Дата рождения', 'birthdate'),
    f('TYPE_ID', 'crm_status', 'Тип контакта', 'typeId', { statusType: 'CONTACT_TYPE' }),
    f('COMPANY_ID', 'crm_company', 'Компания', 'companyId'),
    f('LEAD_ID', 'crm_lead', 'Лид', 'leadId'),
    f('EXPORT', 'char', 'Участвует в экспорте', 'export'),
    f('HAS_PHONE', 'char', 'Задан телефон', 'hasPhone', RO),
    f('HAS_EMAIL', 'char', 'Задан e-mail', 'hasEmail', RO),
    f('PHONE', 'crm_multifield', 'Телефон', 'phone', { multiple: true }),
    f('EMAIL', 'crm_multifield', 'E-mail', 'email', { multiple: true }),
    ...COMMON_TAIL,
  ],
};

export const FIELD_MAP: Record<EntityKind, Map<string, FieldSpec>> = {
  deal: new Map(FIELDS.deal.map((s) => [s.name, s])),
  lead: new Map(FIELDS.lead.map((s) => [s.name, s])),
  contact: new Map(FIELDS.contact.map((s) => [s.name, s])),
};

export const ENTITY_TYPE_ID: Record<EntityKind, number> = { lead: 1, deal: 2, contact: 3 };
export const KIND_BY_TYPE_ID: Record<number, EntityKind> = { 1: 'lead', 2: 'deal', 3: 'contact' };
export const UF_ENTITY_ID: Record<EntityKind, string> = { lead: 'CRM_LEAD', deal: 'CRM_DEAL', contact: 'CRM_CONTACT' };
export const ENTITY_ABBR: Record<string, string> = { LEAD: 'L', DEAL: 'D', CONTACT: 'C', COMPANY: 'CO', QUOTE: 'Q', SMART_INVOICE: 'SI' };

export const SOURCES: { STATUS_ID: string; NAME: string }[] = [
  { STATUS_ID: 'CALL', NAME: 'Звонок' },
  { STATUS_ID: 'EMAIL', NAME: 'Электронная почта' },
  { STATUS_ID: 'WEB', NAME: 'Веб-сайт' },
  { STATUS_ID: 'ADVERTISING', NAME: 'Реклама' },
  { STATUS_ID: 'PARTNER', NAME: 'Существующий клиент' },
  { STATUS_ID: 'RECOMMENDATION', NAME: 'По рекомендации' },
  { STATUS_ID: 'OTHER', NAME: 'Другое' },
];

// ---------------------------------------------------------------------------------------------
// Dates: the portal's server time zone is fixed at UTC+3.
// ---------------------------------------------------------------------------------------------

const OFFSET_MIN = 180;
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `2024-08-30T14:29:00+03:00` */
export function isoDateTime(ms: number): string {
  const d = new Date(ms + OFFSET_MIN * 60_000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+03:00`;
}

/** `2024-08-30T00:00:00+03:00` for the calendar day of `ms` in the portal's zone. */
export function isoDay(ms: number): string {
  return `${isoDateTime(ms).slice(0, 10)}T00:00:00+03:00`;
}

/** Parses what clients send for a date/datetime; null when unreadable. */
export function parseDateInput(v: unknown, dateOnly: boolean): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return dateOnly ? isoDay(v * 1000) : isoDateTime(v * 1000);
  const s = String(v).trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) return `${m[1]}-${m[2]}-${m[3]}T00:00:00+03:00`;
  m = /^(\d{2})\.(\d{2})\.(\d{4})(?:\s+(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (m) {
    if (dateOnly || !m[4]) return `${m[3]}-${m[2]}-${m[1]}T00:00:00+03:00`;
    return `${m[3]}-${m[2]}-${m[1]}T${m[4]}:${m[5]}:${m[6] ?? '00'}+03:00`;
  }
  const ms = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(s) || !s.includes('T') ? s : `${s}+03:00`);
  if (Number.isNaN(ms)) return null;
  if (dateOnly) {
    // A date with a time part: keep the calendar day as written.
    const day = /^(\d{4}-\d{2}-\d{2})/.exec(s);
    return day ? `${day[1]}T00:00:00+03:00` : isoDay(ms);
  }
  return isoDateTime(ms);
}

// ---------------------------------------------------------------------------------------------
// Standard field values
// ---------------------------------------------------------------------------------------------

export const isNumeric = (v: unknown): boolean =>
  (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v));

const asId = (v: unknown): string | null => {
  if (v === null || v === undefined || v === '' || v === false) return null;
  const n = Number.parseInt(String(v), 10);
  return Number.isFinite(n) && n > 0 ? String(n) : null;
};

const asChar = (v: unknown): string => (v === true || v === 1 || v === '1' || v === 'Y' || v === 'y' ? 'Y' : 'N');

/** The stored (legacy read) form of a standard field value; multifields are handled apart. */
export function normalizeStandard(spec: FieldSpec, v: unknown): unknown {
  switch (spec.type) {
    case 'integer':
    case 'user':
    case 'crm_lead':
    case 'crm_contact':
    case 'crm_company':
      return asId(v);
    case 'crm_category': {
      const n = Number.parseInt(String(v ?? '0'), 10);
      return String(Number.isFinite(n) && n >= 0 ? n : 0);
    }
    case 'double': {
      const n = Number(typeof v === 'string' ? v.replace(',', '.').split('|')[0] : v);
      return (Number.isFinite(n) ? n : 0).toFixed(2);
    }
    case 'char':
      return asChar(v);
    case 'date':
      return parseDateInput(v, true);
    case 'datetime':
      return parseDateInput(v, false);
    case 'string':
    case 'crm_status':
    case 'crm_currency':
      if (v === null || v === undefined) return null;
      if (typeof v === 'object') return JSON.stringify(v);
      return String(v);
    case 'crm_multifield':
      return v;
  }
}

export interface MultifieldValue {
  ID: string;
  TYPE_ID: string;
  VALUE: string;
  VALUE_TYPE: string;
}

/**
 * Applies a multifield write: items with an existing ID update (empty VALUE or DELETE:'Y'
 * removes), items without ID are added.
 */
export function applyMultifield(current: MultifieldValue[], typeId: 'PHONE' | 'EMAIL', input: unknown, nextId: () => number): MultifieldValue[] {
  const out = current.map((x) => ({ ...x }));
  const items: unknown[] = Array.isArray(input)
    ? input
    : input && typeof input === 'object'
      ? Object.values(input)
      : typeof input === 'string' && input !== ''
        ? [{ VALUE: input }]
        : [];
  for (const raw of items) {
    const item = (typeof raw === 'string' ? { VALUE: raw } : raw) as Row | null;
    if (!item || typeof item !== 'object') continue;
    const value = item.VALUE === undefined || item.VALUE === null ? '' : String(item.VALUE).trim();
    const valueType = item.VALUE_TYPE ? String(item.VALUE_TYPE) : 'WORK';
    const id = item.ID !== undefined && item.ID !== null && item.ID !== '' ? String(item.ID) : null;
    const existing = id ? out.findIndex((x) => x.ID === id) : -1;
    if (existing >= 0) {
      if (value === '' || item.DELETE === 'Y') out.splice(existing, 1);
      else out[existing] = { ...out[existing]!, VALUE: value, VALUE_TYPE: valueType };
    } else if (value !== '') {
      out.push({ ID: String(nextId()), TYPE_ID: typeId, VALUE: value, VALUE_TYPE: valueType });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// User fields
// ---------------------------------------------------------------------------------------------

export const UF_TYPES = new Set([
  'string',
  'integer',
  'double',
  'boolean',
  'date',
  'datetime',
  'money',
  'url',
  'address',
  'enumeration',
  'file',
  'employee',
  'crm_status',
  'crm',
  'iblock_section',
  'iblock_element',
]);

export const LANGS = ['ru', 'en', 'de'];

/** The entity types a `crm` user field links to (keys with 'Y' in SETTINGS). */
export function crmUfTypes(settings: unknown): string[] {
  if (!settings || typeof settings !== 'object') return ['LEAD', 'CONTACT', 'COMPANY', 'DEAL'];
  return Object.entries(settings as Row)
    .filter(([k, v]) => k in ENTITY_ABBR && (v === 'Y' || v === true || v === '1'))
    .map(([k]) => k);
}

function normalizeUfScalar(field: Row, v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object') return null;
  const s = String(v).trim();
  const type = String(field.USER_TYPE_ID);
  switch (type) {
    case 'boolean':
      if (s === '') return '0';
      return v === true || s === '1' || s === 'Y' || s === 'y' || s.toLowerCase() === 'true' ? '1' : '0';
    case 'integer': {
      if (s === '') return null;
      const n = Number.parseInt(s, 10);
      return Number.isFinite(n) ? String(n) : null;
    }
    case 'double': {
      if (s === '') return null;
      const n = Number(s.replace(',', '.'));
      return Number.isFinite(n) ? String(n) : null;
    }
    case 'date':
      return parseDateInput(s, true);
    case 'datetime':
      return parseDateInput(s, false);
    case 'crm': {
      if (s === '') return null;
      const types = crmUfTypes(field.SETTINGS);
      const m = /^([A-Z]+\d*)_(\d+)$/.exec(s.toUpperCase());
      if (types.length === 1) return m ? m[2]! : s;
      return m ? `${m[1]}_${m[2]}` : s;
    }
    default:
      return s === '' ? null : s;
  }
}

/** The stored (legacy read) form of a user field value. */
export function normalizeUf(field: Row, v: unknown): unknown {
  if (field.MULTIPLE === 'Y') {
    const list = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : v === null || v === undefined || v === '' ? [] : [v];
    return list.map((x) => normalizeUfScalar(field, x)).filter((x): x is string => x !== null);
  }
  const one = Array.isArray(v) ? v[0] : v;
  return normalizeUfScalar(field, one);
}

/** A user field's default value (SETTINGS.DEFAULT_VALUE), stored form; undefined when none. */
export function ufDefault(field: Row, now: number): unknown {
  const settings = (field.SETTINGS ?? {}) as Row;
  const def = settings.DEFAULT_VALUE;
  if (String(field.USER_TYPE_ID) === 'boolean') return field.MULTIPLE === 'Y' ? [] : normalizeUfScalar(field, def ?? 0);
  if (def === undefined || def === null || def === '') return undefined;
  if (typeof def === 'object') {
    const d = def as Row;
    if (d.TYPE === 'NOW') return field.USER_TYPE_ID === 'date' ? isoDay(now) : isoDateTime(now);
    if (d.TYPE === 'FIXED' && d.VALUE) return normalizeUf(field, d.VALUE);
    return undefined;
  }
  return normalizeUf(field, def);
}

/** FIELD_NAME as Bitrix24 builds it, or a PortalError. */
export function normalizeUfName(raw: unknown): string {
  if (raw === undefined || raw === null || String(raw).trim() === '') {
    throw new PortalError('', "The 'FIELD_NAME' field is not found.");
  }
  let name = String(raw).trim().toUpperCase();
  if (!name.startsWith('UF_CRM_')) name = name.startsWith('UF_') ? `UF_CRM_${name.slice(3)}` : `UF_CRM_${name}`;
  if (name.length === 'UF_CRM_'.length || !/^UF_CRM_[A-Z0-9_]+$/.test(name)) {
    throw new PortalError('ERROR_CORE', 'The field name may contain only Latin letters, digits and the underscore.');
  }
  if (name.length > 50) throw new PortalError('ERROR_CORE', 'The field name is too long: at most 50 characters, the UF_CRM_ prefix included.');
  return name;
}

/** `UF_CRM_…` → crm.item name (reference §5.4). */
export function ufItemName(name: string): string {
  const rest = name.startsWith('UF_CRM_') ? name.slice(7) : name;
  const parts = rest.split('_');
  const objectNumber = parts.length > 1 && /^\d+$/.test(parts[0]!);
  const mixed = parts.some((p) => /\d/.test(p) && /[A-Z]/.test(p));
  if (!objectNumber || mixed) return `ufCrm_${rest}`;
  let out = `ufCrm${parts[0]!}`;
  for (const p of parts.slice(1)) {
    if (p === '') continue;
    out += /^\d+$/.test(p) ? `_${p}` : p.charAt(0) + p.slice(1).toLowerCase();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

const FILTER_KEY = /^(>=|<=|!@|!=%|!%=|!=|!%|=%|%=|>|<|=|!|@|%)?(.+)$/;

/** The values a row holds for a filter/sort key (multifields and multiple fields: several). */
function rowValues(row: Row, key: string): unknown[] {
  const v = row[key];
  if (Array.isArray(v)) return v.map((x) => (x && typeof x === 'object' && 'VALUE' in x ? (x as Row).VALUE : x));
  return [v];
}

const norm = (v: unknown): string => (v === null || v === undefined || v === false ? '' : String(v)).toLowerCase();

function equal(a: unknown, b: unknown): boolean {
  if (isNumeric(a) && isNumeric(b)) return Number(a) === Number(b);
  if (b === true) return a === 'Y' || a === '1';
  if (b === false) return a === 'N' || a === '0' || a === null || a === '';
  return norm(a) === norm(b);
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

function compare(a: unknown, b: unknown): number {
  if (isNumeric(a) && isNumeric(b)) return Number(a) - Number(b);
  // Date-times compare as instants, whatever offset a filter value was sent with (reference §3.1).
  if (typeof a === 'string' && typeof b === 'string' && DATE_TIME.test(a) && DATE_TIME.test(b)) {
    const x = parseDateInput(a, false);
    const y = parseDateInput(b, false);
    if (x !== null && y !== null) return Date.parse(x) - Date.parse(y);
  }
  return norm(a) < norm(b) ? -1 : norm(a) > norm(b) ? 1 : 0;
}

function like(value: unknown, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split('%').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(norm(value));
}

const listOf = (v: unknown): unknown[] =>
  Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : typeof v === 'string' && v.includes(',') ? v.split(',') : [v];

/** Whether `row` passes `filter` (legacy prefixes; a key without prefix is `=`, array value = IN). */
export function matchesFilter(row: Row, filter: Row): boolean {
  for (const [rawKey, want] of Object.entries(filter)) {
    const m = FILTER_KEY.exec(rawKey);
    if (!m) continue;
    const op = m[1] ?? '=';
    const key = m[2]!;
    if (key === 'LOGIC' || key === 'logic') continue;
    const have = rowValues(row, key);
    const empty = have.length === 0 ? [null] : have;
    let ok: boolean;
    switch (op) {
      case '=':
        ok = Array.isArray(want) ? empty.some((h) => want.some((w) => equal(h, w))) : empty.some((h) => equal(h, want));
        break;
      case '!':
      case '!=':
        ok = Array.isArray(want) ? !empty.some((h) => want.some((w) => equal(h, w))) : !empty.some((h) => equal(h, want));
        break;
      case '@':
        ok = empty.some((h) => listOf(want).some((w) => equal(h, w)));
        break;
      case '!@':
        ok = !empty.some((h) => listOf(want).some((w) => equal(h, w)));
        break;
      case '%':
        ok = have.some((h) => norm(h).includes(norm(want)));
        break;
      case '!%':
        ok = !have.some((h) => norm(h).includes(norm(want)));
        break;
      case '=%':
      case '%=':
        ok = have.some((h) => like(h, String(want)));
        break;
      case '!=%':
      case '!%=':
        ok = !have.some((h) => like(h, String(want)));
        break;
      default: {
        const real = have.filter((h) => h !== null && h !== undefined && h !== '');
        ok = real.some((h) => {
          const c = compare(h, want);
          return op === '>' ? c > 0 : op === '<' ? c < 0 : op === '>=' ? c >= 0 : c <= 0;
        });
      }
    }
    if (!ok) return false;
  }
  return true;
}

/** Sorts rows by `order` ({FIELD:'ASC'|'DESC'}), then by ID ascending. */
export function sortRows(rows: Row[], order: Record<string, string> | undefined): Row[] {
  const keys = Object.entries(order ?? {}).map(([k, d]) => [k, String(d).toUpperCase() === 'DESC' ? -1 : 1] as const);
  return rows.sort((a, b) => {
    for (const [k, dir] of keys) {
      const av = rowValues(a, k)[0];
      const bv = rowValues(b, k)[0];
      const ae = av === null || av === undefined || av === '';
      const be = bv === null || bv === undefined || bv === '';
      if (ae !== be) return (ae ? -1 : 1) * dir;
      const c = compare(av, bv);
      if (c !== 0) return c * dir;
    }
    return Number(a.ID) - Number(b.ID);
  });
}

export const PAGE = 50;
