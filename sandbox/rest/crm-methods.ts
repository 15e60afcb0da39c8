/**
 * CRM methods: legacy crm.{deal,lead,contact}.*, their user fields, crm.item.* (camelCase view),
 * statuses, categories, currencies, timeline comments, to-dos and duplicate search.
 */
import { PortalError } from '../types.js';
import type { EntityKind, Row } from '../types.js';
import { FIELDS, FIELD_MAP, KIND_BY_TYPE_ID, SOURCES, ufItemName, matchesFilter, sortRows, type FieldSpec } from '../crm.js';
import type { SandboxPortal } from '../portal.js';
import { ListResult, asList, asRow, isObject, param, positiveId, yes, type CallContext, type MethodTable } from './registry.js';

const KINDS: EntityKind[] = ['deal', 'lead', 'contact'];

function legacyId(params: Row): number {
  const id = positiveId(param(params, 'id', 'ID'));
  if (id === null) throw new PortalError('', 'ID is not defined or invalid.');
  return id;
}

function legacyFields(params: Row): Row {
  const fields = param(params, 'fields', 'FIELDS');
  const row = fields === undefined ? {} : asRow(fields);
  if (!row) throw new PortalError('', 'Invalid fields.');
  return row;
}

function legacyFilter(params: Row): Row {
  const f = param(params, 'filter', 'FILTER');
  if (f === undefined || f === null) return {};
  if (Array.isArray(f)) return asRow(f)!;
  if (!isObject(f)) throw new PortalError('', "Parameter 'filter' must be array.");
  return f;
}

function orderOf(v: unknown): Record<string, string> | undefined {
  const o = asRow(v);
  if (!o) return undefined;
  return Object.fromEntries(Object.entries(o).map(([k, d]) => [k, String(d)]));
}

function startOf(v: unknown): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

function fieldsDescription(portal: SandboxPortal, kind: EntityKind): Row {
  const out: Row = {};
  for (const s of FIELDS[kind]) {
    const d: Row = {
      type: s.type,
      isRequired: false,
      isReadOnly: !!s.readOnly,
      isImmutable: !!s.immutable,
      isMultiple: !!s.multiple,
      isDynamic: false,
      title: s.title,
    };
    if (s.statusType) d.statusType = s.statusType;
    out[s.name] = d;
  }
  for (const uf of portal.userFields(kind)) {
    const name = String(uf.FIELD_NAME);
    const label = (key: string): string => String(((uf[key] as Row | undefined) ?? {}).ru ?? name);
    out[name] = {
      type: uf.USER_TYPE_ID,
      isRequired: uf.MANDATORY === 'Y',
      isReadOnly: false,
      isImmutable: false,
      isMultiple: uf.MULTIPLE === 'Y',
      isDynamic: true,
      title: name,
      listLabel: label('LIST_COLUMN_LABEL'),
      formLabel: label('EDIT_FORM_LABEL'),
      filterLabel: label('LIST_FILTER_LABEL'),
      settings: uf.SETTINGS ?? {},
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// User fields
// ---------------------------------------------------------------------------------------------

/** Empty SETTINGS come back as `[]` (PHP's empty array). */
const phpSettings = (u: Row): Row => ({ ...u, SETTINGS: isObject(u.SETTINGS) && Object.keys(u.SETTINGS).length ? u.SETTINGS : [] });

const UF_LABELS = ['EDIT_FORM_LABEL', 'LIST_COLUMN_LABEL', 'LIST_FILTER_LABEL', 'ERROR_MESSAGE', 'HELP_MESSAGE'];

function userFieldMethods(kind: EntityKind): MethodTable {
  const p = `crm.${kind}.userfield`;
  const ufId = (params: Row): number => {
    const id = positiveId(param(params, 'id', 'ID'));
    if (id === null) throw new PortalError('', 'ID is not defined or invalid.');
    return id;
  };
  return {
    [`${p}.add`]: {
      admin: true,
      handler: (params, ctx) => ctx.portal.addUserField(kind, legacyFields(params)),
    },
    [`${p}.list`]: {
      handler: (params, ctx) => {
        const filter = { ...(asRow(param(params, 'filter', 'FILTER')) ?? {}) };
        const langKey = Object.keys(filter).find((k) => k.toUpperCase() === 'LANG');
        const lang = langKey ? String(filter[langKey]) : null;
        if (langKey) delete filter[langKey];
        const rows = ctx.portal.userFields(kind).filter((u) => matchesFilter(u, filter));
        const order = orderOf(param(params, 'order', 'ORDER')) ?? { SORT: 'ASC', ID: 'ASC' };
        sortRows(rows, order);
        return rows.map((u) => {
          const out: Row = phpSettings(u);
          for (const key of UF_LABELS) {
            if (lang) out[key] = String(((u[key] as Row | undefined) ?? {})[lang] ?? '');
            else delete out[key];
          }
          return out;
        });
      },
    },
    [`${p}.get`]: {
      handler: (params, ctx) => {
        const u = ctx.portal.userField(kind, ufId(params));
        if (!u) throw new PortalError('ERROR_NOT_FOUND', 'The entity with ID is not found.');
        return phpSettings(u);
      },
    },
    [`${p}.update`]: {
      admin: true,
      handler: (params, ctx) => {
        ctx.portal.updateUserField(kind, ufId(params), legacyFields(params));
        return true;
      },
    },
    [`${p}.delete`]: {
      admin: true,
      handler: (params, ctx) => {
        ctx.portal.deleteUserField(kind, ufId(params));
        return true;
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Legacy entity methods
// ---------------------------------------------------------------------------------------------

function entityMethods(kind: EntityKind): MethodTable {
  const p = `crm.${kind}`;
  return {
    [`${p}.get`]: {
      handler: (params, ctx) => {
        const row = ctx.portal.getEntity(kind, legacyId(params));
        if (!row) throw new PortalError('', 'Not found');
        return row;
      },
    },
    [`${p}.list`]: {
      handler: (params, ctx) => {
        const select = asList(param(params, 'select', 'SELECT')).map(String);
        const page = ctx.portal.listEntities(kind, {
          filter: legacyFilter(params),
          order: orderOf(param(params, 'order', 'ORDER')) ?? { ID: 'ASC' },
          select: select.length ? select : ['*'],
          start: startOf(param(params, 'start')),
        });
        return new ListResult(page.rows, page.total, page.next);
      },
    },
    [`${p}.add`]: {
      handler: (params, ctx) => ctx.portal.addEntity(kind, legacyFields(params), ctx.actor),
    },
    [`${p}.update`]: {
      handler: (params, ctx) => {
        const id = legacyId(params);
        const fields = legacyFields(params);
        ctx.portal.updateEntity(kind, id, fields, ctx.actor);
        return true;
      },
    },
    [`${p}.delete`]: {
      handler: (params, ctx) => {
        ctx.portal.deleteEntity(kind, legacyId(params), ctx.actor);
        return true;
      },
    },
    [`${p}.fields`]: { handler: (_params, ctx) => fieldsDescription(ctx.portal, kind) },
    ...userFieldMethods(kind),
  };
}

// ---------------------------------------------------------------------------------------------
// crm.item.*
// ---------------------------------------------------------------------------------------------

interface ItemNames {
  /** item name → legacy name */
  toLegacy: Map<string, string>;
  /** legacy name → item name */
  toItem: Map<string, string>;
  specs: Map<string, FieldSpec>;
  ufs: Map<string, Row>;
}

function itemNames(portal: SandboxPortal, kind: EntityKind, originalUf: boolean): ItemNames {
  const toLegacy = new Map<string, string>();
  const toItem = new Map<string, string>();
  for (const s of FIELDS[kind]) {
    if (s.type === 'crm_multifield') continue;
    toLegacy.set(s.item, s.name);
    toItem.set(s.name, s.item);
  }
  const ufs = new Map<string, Row>();
  for (const uf of portal.userFields(kind)) {
    const name = String(uf.FIELD_NAME);
    ufs.set(name, uf);
    let item = originalUf ? name : ufItemName(name);
    if (toLegacy.has(item)) item = name;
    toLegacy.set(item, name);
    toItem.set(name, item);
  }
  return { toLegacy, toItem, specs: FIELD_MAP[kind], ufs };
}

function kindOf(params: Row): EntityKind {
  const id = Number(param(params, 'entityTypeId', 'ENTITY_TYPE_ID'));
  const kind = KIND_BY_TYPE_ID[id];
  if (!kind) throw new PortalError('NOT_FOUND', 'Smart process not found');
  return kind;
}

const toNumber = (v: unknown): number | null => (v === null || v === undefined || v === '' ? null : Number(v));

function itemValue(names: ItemNames, legacy: string, v: unknown): unknown {
  const spec = names.specs.get(legacy);
  if (spec) {
    switch (spec.type) {
      case 'integer':
      case 'user':
      case 'crm_lead':
      case 'crm_contact':
      case 'crm_company':
      case 'crm_category':
      case 'double':
        return toNumber(v);
      default:
        return v;
    }
  }
  const uf = names.ufs.get(legacy);
  if (!uf) return v;
  const conv = (x: unknown): unknown => {
    switch (uf.USER_TYPE_ID) {
      case 'integer':
      case 'double':
        return toNumber(x);
      case 'boolean':
        return x === null || x === undefined ? null : x === '1' ? 'Y' : 'N';
      default:
        return x;
    }
  };
  return Array.isArray(v) ? v.map(conv) : conv(v);
}

function toItem(portal: SandboxPortal, kind: EntityKind, names: ItemNames, row: Row, select: string[] | null): Row {
  const all = !select || select.includes('*');
  const wanted = new Set(select ?? []);
  const out: Row = {};
  for (const [legacy, v] of Object.entries(row)) {
    const item = names.toItem.get(legacy);
    if (!item) continue;
    if (!all && !wanted.has(item) && item !== 'id') continue;
    out[item] = itemValue(names, legacy, v);
  }
  if (kind === 'deal' && (all || wanted.has('contactIds'))) out.contactIds = portal.dealContactIds(Number(row.ID));
  if (kind !== 'deal' && all) {
    const fm = [...((row.PHONE as Row[] | undefined) ?? []), ...((row.EMAIL as Row[] | undefined) ?? [])];
    out.fm = fm.map((m) => ({ id: Number(m.ID), typeId: m.TYPE_ID, valueType: m.VALUE_TYPE, value: m.VALUE }));
  }
  return out;
}

function fromItemFields(names: ItemNames, fields: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'contactIds') {
      out.CONTACT_IDS = v;
      continue;
    }
    if (k === 'fm') continue;
    const legacy = names.toLegacy.get(k) ?? (names.specs.has(k) || names.ufs.has(k) ? k : null);
    if (legacy) out[legacy] = v;
  }
  return out;
}

const FILTER_PREFIX = /^(>=|<=|!@|!=%|!%=|!=|!%|=%|%=|>|<|=|!|@|%)?(.+)$/;

function itemFilter(names: ItemNames, filter: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(filter)) {
    const m = FILTER_PREFIX.exec(k);
    if (!m) continue;
    const legacy = names.toLegacy.get(m[2]!) ?? (names.ufs.has(m[2]!) ? m[2]! : null);
    if (!legacy) throw new PortalError('INVALID_ARG_VALUE', `Invalid filter: field '${m[2]!}' is not allowed in filter`);
    out[`${m[1] ?? ''}${legacy}`] = v;
  }
  return out;
}

function itemOrder(names: ItemNames, order: unknown): Record<string, string> {
  const o = asRow(order) ?? { id: 'ASC' };
  const out: Record<string, string> = {};
  for (const [k, d] of Object.entries(o)) {
    const legacy = names.toLegacy.get(k) ?? (names.ufs.has(k) ? k : null);
    const dir = String(d).toUpperCase();
    if (!legacy || (dir !== 'ASC' && dir !== 'DESC')) throw new PortalError('INVALID_ARG_VALUE', `Invalid order: field '${k}'`);
    out[legacy] = dir;
  }
  return out;
}

function itemId(params: Row): number {
  const id = positiveId(param(params, 'id'));
  if (id === null) throw new PortalError('NOT_FOUND', 'Element not found');
  return id;
}

function loadItem(ctx: CallContext, kind: EntityKind, names: ItemNames, id: number): Row {
  const row = ctx.portal.getEntity(kind, id);
  if (!row) throw new PortalError('NOT_FOUND', 'Element not found');
  return { item: toItem(ctx.portal, kind, names, row, null) };
}

const original = (params: Row): boolean => yes(param(params, 'useOriginalUfNames'));

const itemMethods: MethodTable = {
  'crm.item.get': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      return loadItem(ctx, kind, itemNames(ctx.portal, kind, original(params)), itemId(params));
    },
  },
  'crm.item.list': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      const names = itemNames(ctx.portal, kind, original(params));
      const filter = asRow(param(params, 'filter')) ?? {};
      const select = asList(param(params, 'select')).map(String);
      const page = ctx.portal.listEntities(kind, {
        filter: itemFilter(names, filter),
        order: itemOrder(names, param(params, 'order')),
        start: startOf(param(params, 'start')),
      });
      const items = page.rows.map((r) => toItem(ctx.portal, kind, names, r, select.length ? select : null));
      return new ListResult({ items }, page.total, page.next);
    },
  },
  'crm.item.add': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      const names = itemNames(ctx.portal, kind, original(params));
      const fields = asRow(param(params, 'fields')) ?? {};
      const id = ctx.portal.addEntity(kind, fromItemFields(names, fields), ctx.actor);
      return loadItem(ctx, kind, names, id);
    },
  },
  'crm.item.update': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      const names = itemNames(ctx.portal, kind, original(params));
      const id = itemId(params);
      if (!ctx.portal.getEntity(kind, id)) throw new PortalError('NOT_FOUND', 'Element not found');
      const fields = asRow(param(params, 'fields')) ?? {};
      ctx.portal.updateEntity(kind, id, fromItemFields(names, fields), ctx.actor, { allowCategoryChange: true });
      return loadItem(ctx, kind, names, id);
    },
  },
  'crm.item.delete': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      const id = itemId(params);
      if (!ctx.portal.getEntity(kind, id)) throw new PortalError('NOT_FOUND', 'Element not found');
      ctx.portal.deleteEntity(kind, id, ctx.actor);
      return [];
    },
  },
  'crm.item.fields': {
    handler: (params, ctx) => {
      const kind = kindOf(params);
      const names = itemNames(ctx.portal, kind, original(params));
      const legacy = fieldsDescription(ctx.portal, kind);
      const fields: Row = {};
      for (const [name, d] of Object.entries(legacy)) {
        const item = names.toItem.get(name);
        if (item) fields[item] = { ...(d as Row), upperName: name };
      }
      return { fields };
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Statuses, categories, currencies, timeline, duplicates
// ---------------------------------------------------------------------------------------------

function statusRows(portal: SandboxPortal): Row[] {
  const rows: Row[] = [];
  let id = 1;
  const push = (entityId: string, s: { STATUS_ID: string; NAME: string; SORT: number; SEMANTICS: null | 'S' | 'F'; COLOR: string }, categoryId: number | null): void => {
    rows.push({
      ID: String(id++),
      ENTITY_ID: entityId,
      STATUS_ID: s.STATUS_ID,
      NAME: s.NAME,
      NAME_INIT: s.NAME,
      SORT: String(s.SORT),
      SYSTEM: ['NEW', 'WON', 'LOSE', 'CONVERTED', 'JUNK'].includes(s.STATUS_ID.replace(/^C\d+:/, '')) ? 'Y' : 'N',
      CATEGORY_ID: categoryId === null ? null : String(categoryId),
      COLOR: s.COLOR,
      SEMANTICS: s.SEMANTICS,
      EXTRA: { SEMANTICS: s.SEMANTICS === 'S' ? 'success' : s.SEMANTICS === 'F' ? 'failure' : 'process', COLOR: s.COLOR },
    });
  };
  for (const s of portal.stages('lead')) push('STATUS', s, null);
  for (const c of portal.categories()) {
    for (const s of portal.stages('deal', c.id)) push(c.id === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${c.id}`, s, c.id);
  }
  SOURCES.forEach((s, i) => push('SOURCE', { ...s, SORT: (i + 1) * 10, SEMANTICS: null, COLOR: '' }, null));
  return rows;
}

function digits(v: unknown): string {
  return String(v ?? '').replace(/\D/g, '');
}

const miscMethods: MethodTable = {
  'crm.status.list': {
    handler: (params, ctx) => {
      const rows = statusRows(ctx.portal).filter((r) => matchesFilter(r, asRow(param(params, 'filter')) ?? {}));
      const order = orderOf(param(params, 'order'));
      if (order) sortRows(rows, order);
      return new ListResult(rows, rows.length);
    },
  },
  'crm.status.entity.items': {
    handler: (params, ctx) => {
      const entityId = String(param(params, 'entityId') ?? '');
      return statusRows(ctx.portal)
        .filter((r) => r.ENTITY_ID === entityId)
        .map((r) => ({ NAME: r.NAME, SORT: Number(r.SORT), STATUS_ID: r.STATUS_ID }));
    },
  },
  'crm.dealcategory.stage.list': {
    handler: (params, ctx) => {
      const id = Number(param(params, 'id') ?? 0) || 0;
      return ctx.portal.stages('deal', id).map((s) => ({ NAME: s.NAME, SORT: String(s.SORT), STATUS_ID: s.STATUS_ID }));
    },
  },
  'crm.category.list': {
    handler: (params, ctx) => {
      const typeId = Number(param(params, 'entityTypeId'));
      if (typeId !== 2) throw new PortalError('NOT_FOUND', 'Entity type does not support categories');
      const categories = ctx.portal.categories().map((c) => ({
        id: c.id,
        name: c.name,
        sort: c.sort,
        entityTypeId: 2,
        isDefault: c.isDefault ? 'Y' : 'N',
        originId: '',
        originatorId: '',
      }));
      return new ListResult({ categories }, categories.length);
    },
  },
  'crm.settings.mode.get': { handler: () => 1 },
  'crm.currency.list': {
    handler: (_p, ctx) =>
      ctx.portal.currencies().map((c) => ({
        CURRENCY: c.CURRENCY,
        AMOUNT_CNT: String(c.AMOUNT_CNT),
        AMOUNT: c.AMOUNT,
        SORT: String(c.SORT),
        BASE: c.BASE,
        FULL_NAME: c.FULL_NAME,
        LID: 'ru',
        FORMAT_STRING: c.CURRENCY === 'RUB' ? '# ₽' : c.CURRENCY === 'USD' ? '$#' : '# €',
        DECIMALS: '2',
      })),
  },
  'crm.currency.base.get': { handler: (_p, ctx) => ctx.portal.currencies().find((c) => c.BASE === 'Y')?.CURRENCY ?? 'RUB' },
  'crm.deal.contact.items.get': {
    handler: (params, ctx) => {
      const ids = ctx.portal.dealContactIds(legacyId(params));
      return ids.map((id, i) => ({ CONTACT_ID: id, SORT: (i + 1) * 10, ROLE_ID: 0, IS_PRIMARY: i === 0 ? 'Y' : 'N' }));
    },
  },
  'crm.timeline.comment.add': {
    handler: (params, ctx) => {
      const fields = asRow(param(params, 'fields'));
      if (!fields) throw new PortalError('INVALID_ARG_VALUE', 'fields is required');
      const type = String(fields.ENTITY_TYPE ?? '').toLowerCase() as EntityKind;
      if (!KINDS.includes(type)) throw new PortalError('INVALID_ARG_VALUE', `Unsupported ENTITY_TYPE '${String(fields.ENTITY_TYPE ?? '')}'`);
      const id = positiveId(fields.ENTITY_ID);
      if (id === null) throw new PortalError('INVALID_ARG_VALUE', 'ENTITY_ID is required');
      const comment = String(fields.COMMENT ?? '').trim();
      if (!comment) throw new PortalError('INVALID_ARG_VALUE', 'COMMENT is empty');
      return ctx.portal.addTimelineComment(type, id, comment, ctx.userId);
    },
  },
  'crm.activity.todo.add': {
    handler: (params, ctx) => {
      const ownerTypeId = Number(param(params, 'ownerTypeId'));
      const ownerId = positiveId(param(params, 'ownerId'));
      const kind = KIND_BY_TYPE_ID[ownerTypeId];
      if (!kind || ownerId === null || !ctx.portal.getEntity(kind, ownerId)) throw new PortalError('NOT_FOUND', 'Owner not found');
      const deadline = param(params, 'deadline');
      if (!deadline) throw new PortalError('INVALID_ARG_VALUE', 'deadline is required');
      const id = ctx.portal.addActivity({
        ownerTypeId,
        ownerId,
        title: String(param(params, 'title') ?? ''),
        description: String(param(params, 'description') ?? ''),
        deadline: String(deadline),
        responsibleId: Number(param(params, 'responsibleId') ?? ctx.userId) || ctx.userId,
      });
      return { id };
    },
  },
  'crm.duplicate.findbycomm': {
    handler: (params, ctx) => {
      const type = String(param(params, 'type') ?? '').toUpperCase();
      if (type !== 'PHONE' && type !== 'EMAIL') throw new PortalError('', "Parameter 'type' is not specified or invalid.");
      const values = asList(param(params, 'values')).map(String).filter(Boolean);
      if (values.length === 0) throw new PortalError('', "Parameter 'values' is not specified.");
      if (values.length > 20) throw new PortalError('', 'Too many values: at most 20.');
      const wanted = values.map((v) => (type === 'PHONE' ? digits(v) : v.trim().toLowerCase()));
      const entityType = String(param(params, 'entity_type') ?? '').toUpperCase();
      const out: Row = {};
      for (const [kind, key] of [
        ['lead', 'LEAD'],
        ['contact', 'CONTACT'],
      ] as const) {
        if (entityType && entityType !== key) continue;
        const ids = allRows(ctx.portal, kind)
          .filter((r) =>
            ((r[type] as Row[] | undefined) ?? []).some((m) => {
              const v = type === 'PHONE' ? digits(m.VALUE) : String(m.VALUE).trim().toLowerCase();
              return v !== '' && wanted.includes(v);
            }),
          )
          .map((r) => Number(r.ID));
        if (ids.length) out[key] = ids;
      }
      return Object.keys(out).length ? out : [];
    },
  },
};

/** Every row of an entity (walks the pages). */
function allRows(portal: SandboxPortal, kind: EntityKind): Row[] {
  const rows: Row[] = [];
  let last = 0;
  for (;;) {
    const page = portal.listEntities(kind, { filter: { '>ID': last }, order: { ID: 'ASC' }, start: -1 });
    rows.push(...page.rows);
    if (page.rows.length < 50) return rows;
    last = Number(page.rows[page.rows.length - 1]!.ID);
  }
}

export const crmMethods: MethodTable = {
  ...entityMethods('deal'),
  ...entityMethods('lead'),
  ...entityMethods('contact'),
  ...itemMethods,
  ...miscMethods,
};

