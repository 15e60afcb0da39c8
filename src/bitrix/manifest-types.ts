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
  robots: RobotSpec[];
}

/** A text in both languages Sarafan speaks; Bitrix24 takes a `{lang: text}` map for robot names. */
export interface LangText {
  ru: string;
  en: string;
}

/** Property types of `bizproc.robot.add` (reference §8.1). */
export type RobotPropertyType = 'bool' | 'date' | 'datetime' | 'double' | 'int' | 'string' | 'text' | 'user';

/** One entry of PROPERTIES / RETURN_PROPERTIES, in the wire's own key spelling. */
export interface RobotPropertySpec {
  Name: LangText;
  Description: LangText;
  Type: RobotPropertyType;
  Required: 'Y' | 'N';
  Multiple: 'Y' | 'N';
}

/**
 * One automation robot (SPEC 4.4). AUTH_USER_ID is not here: it is the installing admin of each
 * portal, added when the robot is registered there.
 */
export interface RobotSpec {
  /** Unique within the app, `a-zA-Z0-9._-`. */
  code: string;
  /** Absolute URL built from APP_BASE_URL (same host as the app's handler). */
  handler: string;
  /** 'Y': the automation waits for `bizproc.event.send` and passes the return values on. */
  useSubscription: 'Y';
  name: LangText;
  description: LangText;
  properties: Record<string, RobotPropertySpec>;
  returnProperties: Record<string, RobotPropertySpec>;
  /** Where the robot is offered: deals and leads (`[module, document class]` pairs). */
  filter: { INCLUDE: [string, string][] };
}
