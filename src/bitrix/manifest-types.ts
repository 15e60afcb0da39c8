/**
 * The desired registration of SPEC 4 as plain data (STYLE.md practice 12): what `install/`
 * declares and what src/bitrix/reconcile.ts diffs against the portal.
 */

/** The CRM entities Sarafan adds user fields to (`crm.<entity>.userfield.*`). */
export type UserFieldEntity = 'deal' | 'contact' | 'lead';

/** The USER_TYPE_IDs Sarafan uses (reference §6). */
export type UserFieldType = 'string' | 'url' | 'double' | 'integer' | 'date' | 'crm';

export interface UserFieldSpec {
  entity: UserFieldEntity;
  /** Full name, `UF_CRM_…` (Bitrix keeps a name that already has the prefix). */
  fieldName: string;
  userTypeId: UserFieldType;
  /** The field name in lower case (SPEC 4.1): our stable key for the field. */
  xmlId: string;
  labels: { ru: string; en: string };
  /**
   * Type settings Sarafan relies on (crm: entity flags; double: PRECISION). Only these keys are
   * compared with the portal; settings an admin added on top are kept.
   */
  settings: Record<string, unknown>;
  /** 'N' for fields Sarafan computes: read-only for users where Bitrix supports it. */
  editInList: 'Y' | 'N';
  sort: number;
}

export interface EventBindingSpec {
  /** Upper-case event name, e.g. `ONCRMDEALUPDATE`. */
  event: string;
  /** Absolute handler URL built from APP_BASE_URL. */
  handler: string;
}

export type PlacementLang = 'ru' | 'en';

export interface PlacementSpec {
  /** Placement code, e.g. `CRM_DEAL_DETAIL_TAB`. */
  placement: string;
  handler: string;
  title: string;
  langAll: Record<PlacementLang, { TITLE: string; DESCRIPTION: string }>;
}

export interface Manifest {
  userFields: UserFieldSpec[];
  events: EventBindingSpec[];
  placements: PlacementSpec[];
}
