/**
 * The card form: which fields an entity shows (standard ones and every user field), how values
 * read back from the portal become form values, and how a posted form becomes the fields of an
 * add/update call (only what changed, validated per type).
 */
import type { EntityKind, Portal, Row } from '../types.js';
import { allEntities, entityName, formText, langText } from './context.js';
import { html, raw, type Html } from './html.js';

type CrmType = 'CONTACT' | 'LEAD' | 'DEAL';

export type InputKind =
  | 'text'
  | 'tel'
  | 'email'
  | 'money'
  | 'currency'
  | 'contact'
  | 'category'
  | 'string'
  | 'url'
  | 'double'
  | 'integer'
  | 'date'
  | 'datetime'
  | 'boolean'
  | 'crm'
  | 'enumeration';

export interface FieldDef {
  name: string;
  label: string;
  input: InputKind;
  readonly: boolean;
  required: boolean;
  /** PHONE / EMAIL: a list of {ID, VALUE, VALUE_TYPE}; the form edits the first. */
  multiField?: boolean;
  /** A MULTIPLE user field: edited as comma-separated values. */
  multiple?: boolean;
  crmTypes?: CrmType[];
  /** More than one entity type enabled (companies included): values are `C_5`, else a bare id. */
  crmPrefixed?: boolean;
  enumItems?: { id: string; value: string }[];
  user?: boolean;
}

export const CURRENCIES = ['RUB', 'USD', 'EUR', 'KZT', 'BYN', 'UAH'];

const STANDARD: Record<EntityKind, FieldDef[]> = {
  contact: [
    std('NAME', 'Имя', 'text'),
    std('LAST_NAME', 'Фамилия', 'text'),
    { ...std('PHONE', 'Телефон', 'tel'), multiField: true },
    { ...std('EMAIL', 'E-mail', 'email'), multiField: true },
  ],
  lead: [
    std('TITLE', 'Название лида', 'text'),
    std('NAME', 'Имя', 'text'),
    std('LAST_NAME', 'Фамилия', 'text'),
    { ...std('PHONE', 'Телефон', 'tel'), multiField: true },
    { ...std('EMAIL', 'E-mail', 'email'), multiField: true },
    std('OPPORTUNITY', 'Сумма', 'money'),
  ],
  deal: [
    std('TITLE', 'Название сделки', 'text'),
    std('OPPORTUNITY', 'Сумма', 'money'),
    std('CURRENCY_ID', 'Валюта', 'currency'),
    std('CONTACT_ID', 'Контакт', 'contact'),
    std('CATEGORY_ID', 'Воронка', 'category'),
  ],
};

function std(name: string, label: string, input: InputKind): FieldDef {
  return { name, label, input, readonly: false, required: false };
}

export function ufLabel(uf: Row, which: 'EDIT_FORM_LABEL' | 'LIST_COLUMN_LABEL' = 'EDIT_FORM_LABEL'): string {
  const name = String(uf.FIELD_NAME ?? '');
  // A portal fills labels nobody gave with the field name: prefer a real one from another key.
  for (const key of [which, 'EDIT_FORM_LABEL', 'LIST_COLUMN_LABEL', 'LABEL']) {
    const text = langText(uf[key]);
    if (text && text !== name) return text;
  }
  return name;
}

const ON = (v: unknown): boolean => v === 'Y' || v === true || v === 1 || v === '1';

/** The entity types a crm field offers here, and whether its values carry a type prefix. */
function crmTypesOf(uf: Row): { types: CrmType[]; prefixed: boolean } {
  const settings = uf.SETTINGS && typeof uf.SETTINGS === 'object' ? (uf.SETTINGS as Row) : {};
  const enabled = Object.entries(settings).filter(([k, v]) => /^[A-Z_0-9]+$/.test(k) && k !== 'VISIBLE' && ON(v)).length;
  const types = (['CONTACT', 'LEAD', 'DEAL'] as const).filter((t) => ON(settings[t]));
  if (!types.length) return { types: ['CONTACT', 'LEAD'], prefixed: true };
  return { types: [...types], prefixed: enabled > 1 };
}

const UF_INPUTS: Record<string, InputKind> = {
  string: 'string',
  url: 'url',
  double: 'double',
  money: 'string',
  integer: 'integer',
  date: 'date',
  datetime: 'datetime',
  boolean: 'boolean',
  crm: 'crm',
  enumeration: 'enumeration',
};

/** The fields of a card, standard first, then every user field in SORT order. */
export function fieldDefs(portal: Portal, kind: EntityKind, creating: boolean): FieldDef[] {
  const defs = STANDARD[kind].filter((d) => creating || d.input !== 'category');
  const ufs = [...portal.userFields(kind)].sort((a, b) => Number(a.SORT ?? 100) - Number(b.SORT ?? 100) || Number(a.ID ?? 0) - Number(b.ID ?? 0));
  for (const uf of ufs) {
    const name = String(uf.FIELD_NAME ?? '');
    if (!name) continue;
    const type = String(uf.USER_TYPE_ID ?? 'string');
    const input = UF_INPUTS[type] ?? 'string';
    const def: FieldDef = {
      name,
      label: ufLabel(uf),
      input,
      readonly: uf.EDIT_IN_LIST === 'N',
      required: uf.MANDATORY === 'Y',
      multiple: uf.MULTIPLE === 'Y',
      user: true,
    };
    if (input === 'crm') {
      const { types, prefixed } = crmTypesOf(uf);
      def.crmTypes = types;
      def.crmPrefixed = prefixed;
    }
    if (input === 'enumeration' && Array.isArray(uf.LIST)) {
      def.enumItems = (uf.LIST as unknown[])
        .filter((i): i is Row => !!i && typeof i === 'object')
        .map((i) => ({ id: String(i.ID ?? i.VALUE ?? ''), value: String(i.VALUE ?? '') }));
    }
    defs.push(def);
  }
  return defs;
}

const CRM_PREFIX: Record<CrmType, string> = { CONTACT: 'C', LEAD: 'L', DEAL: 'D' };
const CRM_KIND: Record<CrmType, EntityKind> = { CONTACT: 'contact', LEAD: 'lead', DEAL: 'deal' };
const CRM_TEXT: Record<CrmType, string> = { CONTACT: 'Контакт', LEAD: 'Лид', DEAL: 'Сделка' };

/** A crm-type value in the form the field's options use: a bare id for one type, `C_5` for several. */
function crmOptionValue(def: FieldDef, value: unknown): string {
  const first = Array.isArray(value) ? value[0] : value;
  if (first === null || first === undefined || first === false) return '';
  const text = String(first).trim();
  if (!text || text === '0') return '';
  const types = def.crmTypes ?? ['CONTACT'];
  const prefixed = /^([A-Z]+)_(\d+)$/.exec(text);
  if (!def.crmPrefixed) return prefixed ? (prefixed[2] ?? '') : text;
  if (prefixed) return text;
  return /^\d+$/.test(text) ? `${CRM_PREFIX[types[0] ?? 'CONTACT']}_${text}` : text;
}

function dateValue(value: unknown): string {
  if (typeof value !== 'string' || !value) return '';
  const iso = /^(\d{4}-\d{2}-\d{2})/.exec(value);
  if (iso) return iso[1] ?? '';
  const ru = /^(\d{2})\.(\d{2})\.(\d{4})/.exec(value);
  return ru ? `${ru[3]}-${ru[2]}-${ru[1]}` : value;
}

function truthy(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 'Y' || value === 'true';
}

/** The form value of a field as the portal returns it. */
export function formValue(def: FieldDef, row: Row | null): string {
  if (!row) return '';
  const value = row[def.name];
  if (def.multiField) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first && typeof first === 'object') return String((first as Row).VALUE ?? '');
    return first === null || first === undefined ? '' : String(first);
  }
  switch (def.input) {
    case 'boolean':
      return truthy(value) ? '1' : '0';
    case 'date':
      return dateValue(Array.isArray(value) ? value[0] : value);
    case 'crm':
      if (def.multiple && Array.isArray(value)) return value.map((v) => crmOptionValue(def, v)).filter(Boolean).join(', ');
      return crmOptionValue(def, value);
    case 'contact':
    case 'category':
      return value === null || value === undefined || value === '' || (def.input === 'contact' && String(value) === '0') ? '' : String(value);
    default:
      if (Array.isArray(value)) return value.map((v) => (v === null || v === undefined ? '' : String(v))).join(', ');
      return value === null || value === undefined || value === false ? '' : String(value);
  }
}

/** Choices for the selects of a form, read once per render. */
export interface FormChoices {
  contacts: { value: string; label: string }[];
  crm: Map<CrmType, { id: string; label: string }[]>;
  categories: { value: string; label: string }[];
}

export function loadChoices(portal: Portal, defs: FieldDef[]): FormChoices {
  const crm = new Map<CrmType, { id: string; label: string }[]>();
  const needed = new Set<CrmType>();
  for (const def of defs) {
    if (def.input === 'contact') needed.add('CONTACT');
    if (def.input === 'crm') for (const t of def.crmTypes ?? []) needed.add(t);
  }
  for (const t of needed) {
    const kind = CRM_KIND[t];
    crm.set(
      t,
      allEntities(portal, kind, ['ID', 'TITLE', 'NAME', 'LAST_NAME'], 1000).map((r) => ({ id: String(r.ID ?? ''), label: entityName(kind, r) })),
    );
  }
  return {
    contacts: (crm.get('CONTACT') ?? []).map((c) => ({ value: c.id, label: `${c.label} (#${c.id})` })),
    crm,
    categories: portal
      .categories()
      .slice()
      .sort((a, b) => a.sort - b.sort)
      .map((c) => ({ value: String(c.id), label: c.name })),
  };
}

function crmOptions(def: FieldDef, choices: FormChoices): { value: string; label: string }[] {
  const types = def.crmTypes ?? ['CONTACT'];
  const out: { value: string; label: string }[] = [];
  for (const t of types) {
    for (const item of choices.crm.get(t) ?? []) {
      out.push({ value: def.crmPrefixed ? `${CRM_PREFIX[t]}_${item.id}` : item.id, label: `${CRM_TEXT[t]}: ${item.label} (#${item.id})` });
    }
  }
  return out;
}

export interface FormError {
  field: string;
  message: string;
}

export interface ParsedForm {
  fields: Row;
  /** What the user typed, to show the form again on an error. */
  values: Record<string, string>;
  error: FormError | null;
}

function fieldError(def: FieldDef, message: string): FormError {
  return { field: def.name, message: `Поле «${def.label}» (${def.name}): ${message}` };
}

const NUMBER = /^-?\d+(?:[.,]\d+)?$/;

/** Validates one posted value; returns the normalized form value or an error text. */
function validate(def: FieldDef, text: string, choices: FormChoices): { value: string } | { error: string } {
  if (text === '') return { value: '' };
  switch (def.input) {
    case 'money':
    case 'double':
      return NUMBER.test(text) ? { value: text.replace(',', '.') } : { error: 'должно быть числом, например 1500 или 99.90' };
    case 'integer':
      return /^-?\d+$/.test(text) ? { value: text } : { error: 'должно быть целым числом' };
    case 'url': {
      try {
        const url = new URL(text);
        return url.protocol === 'http:' || url.protocol === 'https:' ? { value: text } : { error: 'нужна ссылка http:// или https://' };
      } catch {
        return { error: 'нужна ссылка вида https://example.ru/…' };
      }
    }
    case 'email':
      return /^[^\s@]+@[^\s@]+$/.test(text) ? { value: text } : { error: 'нужен адрес вида name@example.ru' };
    case 'date':
    case 'datetime': {
      const value = dateValue(text);
      const date = new Date(`${value}T00:00:00Z`);
      return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value
        ? { value }
        : { error: 'нужна дата ГГГГ-ММ-ДД' };
    }
    case 'boolean':
      return { value: truthy(text) ? '1' : '0' };
    case 'currency':
      return CURRENCIES.includes(text) ? { value: text } : { error: `неизвестная валюта (${CURRENCIES.join(', ')})` };
    case 'contact':
      return choices.contacts.some((c) => c.value === text) ? { value: text } : { error: `контакт #${text} не найден` };
    case 'category':
      return choices.categories.some((c) => c.value === text) ? { value: text } : { error: `воронка ${text} не найдена` };
    case 'crm': {
      const allowed = new Set(crmOptions(def, choices).map((o) => o.value));
      const items = def.multiple ? text.split(',').map((s) => s.trim()).filter(Boolean) : [text];
      const bad = items.find((i) => !allowed.has(i));
      return bad === undefined ? { value: items.join(', ') } : { error: `запись ${bad} не найдена` };
    }
    case 'enumeration':
      return !def.enumItems?.length || def.enumItems.some((i) => i.id === text) ? { value: text } : { error: 'нет такого варианта' };
    default:
      return { value: text };
  }
}

function sameValue(def: FieldDef, a: string, b: string): boolean {
  if (a === b) return true;
  if ((def.input === 'money' || def.input === 'double' || def.input === 'integer') && a !== '' && b !== '') return Number(a) === Number(b);
  return false;
}

function toPortal(def: FieldDef, value: string, current: Row | null): unknown {
  if (def.multiField) {
    const list = current ? current[def.name] : undefined;
    const first = Array.isArray(list) ? list[0] : undefined;
    const id = first && typeof first === 'object' ? (first as Row).ID : undefined;
    if (id !== undefined && id !== null && id !== '') return [{ ID: id, VALUE: value, VALUE_TYPE: (first as Row).VALUE_TYPE ?? 'WORK' }];
    return [{ VALUE: value, VALUE_TYPE: 'WORK' }];
  }
  if (def.input === 'contact') return value === '' ? 0 : Number(value);
  if (def.input === 'category') return Number(value);
  if (def.multiple) return value === '' ? [] : value.split(',').map((s) => s.trim()).filter(Boolean);
  return value;
}

/** Reads the posted card: the changed fields (all filled ones when creating) or the first error. */
export function parseForm(defs: FieldDef[], body: unknown, current: Row | null, choices: FormChoices): ParsedForm {
  const fields: Row = {};
  const values: Record<string, string> = {};
  let error: FormError | null = null;
  for (const def of defs) {
    if (def.readonly) continue;
    const posted = def.input === 'boolean' ? (formText(body, def.name) ? '1' : '0') : formText(body, def.name).trim();
    values[def.name] = posted;
    if (error) continue;
    const checked = validate(def, posted, choices);
    if ('error' in checked) {
      error = fieldError(def, checked.error);
      continue;
    }
    const value = checked.value;
    values[def.name] = value;
    if (def.required && (value === '' || (def.input === 'boolean' && value === '0'))) {
      error = fieldError(def, 'обязательное поле');
      continue;
    }
    if (current === null) {
      if (value === '' || (def.input === 'boolean' && value === '0')) continue;
      fields[def.name] = toPortal(def, value, null);
    } else if (!sameValue(def, value, formValue(def, current))) {
      if (def.multiField && value === '' && formValue(def, current) === '') continue;
      fields[def.name] = toPortal(def, value, current);
    }
  }
  return { fields, values, error };
}

/** The inputs of the card form. */
export function renderFields(defs: FieldDef[], values: Record<string, string>, choices: FormChoices, errorField: string | null): Html {
  return html`<div class="form-grid">${defs.map((def) => {
    const value = values[def.name] ?? '';
    const id = `f-${def.name}`;
    const cls = def.name === errorField ? 'field-error' : '';
    const ro = def.readonly ? raw(' readonly') : '';
    const common = html`id="${id}" name="${def.name}" data-testid="field-${def.name}" class="${cls}"${ro}${def.name === errorField ? raw(' aria-invalid="true" autofocus') : ''}`;
    let input: Html;
    const select = (opts: { value: string; label: string }[], empty: string | null): Html =>
      html`<select ${common}${def.readonly ? raw(' disabled') : ''}>${empty === null ? '' : html`<option value="">${empty}</option>`}${opts.map(
        (o) => html`<option value="${o.value}"${raw(o.value === value ? ' selected' : '')}>${o.label}</option>`,
      )}${value && !opts.some((o) => o.value === value) ? html`<option value="${value}" selected>${value}</option>` : ''}</select>`;
    switch (def.input) {
      case 'money':
      case 'double':
        input = html`<input type="text" inputmode="decimal" ${common} value="${value}">`;
        break;
      case 'integer':
        input = html`<input type="number" step="1" ${common} value="${value}">`;
        break;
      case 'url':
        input = html`<input type="url" ${common} value="${value}">`;
        break;
      case 'date':
      case 'datetime':
        input = html`<input type="date" ${common} value="${value}">`;
        break;
      case 'email':
        input = html`<input type="email" ${common} value="${value}">`;
        break;
      case 'tel':
        input = html`<input type="tel" ${common} value="${value}">`;
        break;
      case 'boolean':
        input = html`<input type="checkbox" value="1" ${common}${raw(value === '1' ? ' checked' : '')}${def.readonly ? raw(' disabled') : ''}>`;
        break;
      case 'currency':
        input = select(CURRENCIES.map((c) => ({ value: c, label: c })), null);
        break;
      case 'contact':
        input = select(choices.contacts, '— не выбран —');
        break;
      case 'category':
        input = select(choices.categories, null);
        break;
      case 'crm':
        input = def.multiple
          ? html`<input type="text" ${common} value="${value}" placeholder="C_1, L_2">`
          : select(crmOptions(def, choices), '— не выбрано —');
        break;
      case 'enumeration':
        input = def.enumItems?.length ? select(def.enumItems.map((i) => ({ value: i.id, label: i.value })), '— не выбрано —') : html`<input type="text" ${common} value="${value}">`;
        break;
      default:
        input = html`<input type="text" ${common} value="${value}">`;
    }
    const hint = def.readonly ? html`<div class="hint">Заполняет приложение</div>` : def.multiple ? html`<div class="hint">Несколько значений через запятую</div>` : '';
    return html`<label for="${id}">${def.label}${def.required ? ' *' : ''}</label><div>${input}</div>${hint}`;
  })}</div>`;
}
