/**
 * What the portal's CRM selector (BX24.selectCRM, b24jssdk `dialog.selectCRM`) lists and answers.
 *
 * The answer's shape is Bitrix24's, confirmed from two sources:
 * - the BX24.selectCRM page (dev.1c-bitrix.ru/rest_help/js_library/dialog/selectCRM.php):
 *   `{lead:[{id:'L_1348', type:'lead', place:'lead', title, desc, url:'/crm/lead/show/1348/'}],
 *     contact:[{id:'C_2', type:'contact', place:'contact', title, desc:'', url, image?}],
 *     company:[], deal:[], quote:[]}` — one key per requested type, empty when nothing was picked;
 * - Bitrix24's parent side (rest/js/applayout.js, `selectCRM`): the selector answers only from its
 *   "save" listener, so closing it without choosing answers nothing at all.
 * The SDK (frame/dialog.mjs) accepts each bucket as an array or an id-keyed object; we send arrays.
 * Item URLs are the card URLs this portal serves (`/crm/<type>/details/<id>/`); the older
 * `/crm/<type>/show/<id>/` form of the docs redirects there.
 */
import type { EntityKind, Portal, Row } from '../types.js';
import { allEntities, entityName } from './context.js';

export const CRM_TYPES = ['lead', 'contact', 'company', 'deal', 'quote'] as const;
export type CrmSelectorType = (typeof CRM_TYPES)[number];

/** Bitrix24's prefixes of typed CRM ids ("C_5", "L_7", "CO_3", "D_1", "Q_1"). */
export const CRM_PREFIX: Record<CrmSelectorType, string> = { lead: 'L', contact: 'C', company: 'CO', deal: 'D', quote: 'Q' };

export interface CrmSelectorItem {
  id: string;
  type: CrmSelectorType;
  place: CrmSelectorType;
  title: string;
  desc: string;
  url: string;
}

export type CrmSelection = Partial<Record<CrmSelectorType, CrmSelectorItem[]>>;

/** The requested types in Bitrix24's order; all of them when none (or nothing valid) is asked for. */
export function selectorTypes(entityType: unknown): CrmSelectorType[] {
  const asked = (Array.isArray(entityType) ? entityType : typeof entityType === 'string' ? [entityType] : []).map((t) => String(t).toLowerCase());
  const types = CRM_TYPES.filter((t) => asked.includes(t));
  return types.length ? types : [...CRM_TYPES];
}

function personName(row: Row): string {
  return [row.NAME, row.LAST_NAME].map((v) => (typeof v === 'string' ? v : '')).join(' ').trim();
}

function item(type: EntityKind, row: Row): CrmSelectorItem {
  const id = String(row.ID ?? '');
  return {
    id: `${CRM_PREFIX[type]}_${id}`,
    type,
    place: type,
    title: entityName(type, row),
    // A lead's person under its title, as the selector shows it; contacts and deals have none here.
    desc: type === 'lead' ? personName(row) : '',
    url: `/crm/${type}/details/${id}/`,
  };
}

/**
 * Everything the selector offers for these types, newest first (at most `cap` per type). The
 * sandbox keeps no companies or quotes, so those lists are empty.
 */
export function selectorItems(portal: Portal, types: CrmSelectorType[], cap = 500): CrmSelection {
  const out: CrmSelection = {};
  for (const type of types) {
    if (type === 'lead' || type === 'contact' || type === 'deal') {
      out[type] = allEntities(portal, type, ['ID', 'TITLE', 'NAME', 'LAST_NAME'], cap).map((row) => item(type, row));
    } else out[type] = [];
  }
  return out;
}
