/**
 * Registration is reconciliation (SPEC 4, STYLE.md practice 12): read what the portal has in one
 * batch, diff it against the manifest with a pure function, apply only the difference in one
 * more batch. Re-running it against a registered portal sends nothing but the read.
 *
 * Known limits:
 * - `crm.*.userfield.list` filters by exact values only (no LIKE), so every user field of the
 *   entity is read and ours are picked by FIELD_NAME here.
 * - Labels are not compared: the list answers them only for one `filter.LANG`.
 * - A field whose type or multiplicity differs from the manifest is reported, never deleted:
 *   it may hold data, and `userfield.update` cannot change either (reference §6).
 * - Bindings of other handlers (another app's route, a manual hook) are left alone; only our own
 *   routes (`…/b24/events`, `…/b24/frame`) on another base URL are unbound as stale.
 * - `bizproc.robot.list` answers codes only: a robot's content is compared through the hash of
 *   the definition Sarafan last registered (kept in the registration report). A robot present
 *   without a known hash is updated once. Robots of ours no longer declared are left in place
 *   (deleting one would silently remove it from the admins' automation rules).
 * - Without the `bizproc` scope robots cannot be read or registered: each is reported failed.
 */
import { createHash } from 'node:crypto';
import type { Installation, RegistrationReport } from '../handlers/ports.js';
import type { BatchCommand, BatchOutcome, PortalGateway } from './portal-gateway.js';
import type { Manifest, RobotSpec, UserFieldEntity, UserFieldSpec } from './manifest-types.js';

const ENTITIES: readonly UserFieldEntity[] = ['deal', 'contact', 'lead'];
/** Fixed page size of Bitrix24 list methods (reference §3.3). */
const LIST_PAGE = 50;
/** Safety stop for the follow-up paging of a user field list (50 × 40 = 2000 fields). */
const MAX_EXTRA_PAGES = 40;
/** Every handler route of ours lives under this path segment of APP_BASE_URL. */
const ROUTE_MARK = '/b24/';

/** A user field as `crm.<entity>.userfield.list` reports it (values are strings). */
export interface PortalUserField {
  ID: string;
  FIELD_NAME: string;
  USER_TYPE_ID: string;
  XML_ID: string | null;
  MULTIPLE: string;
  EDIT_IN_LIST: string;
  SETTINGS: Record<string, unknown>;
}

/** One row of `event.get`. */
export interface PortalEventBinding {
  event: string;
  handler: string;
  offline: boolean;
}

/** One row of `placement.get`. */
export interface PortalPlacementBinding {
  placement: string;
  handler: string;
  title: string;
  userId: number;
}

export interface PortalRegistration {
  userFields: Record<UserFieldEntity, PortalUserField[]>;
  events: PortalEventBinding[];
  placements: PortalPlacementBinding[];
  /** Codes of this app's robots (`bizproc.robot.list`); null when not read (no `bizproc` scope). */
  robots: string[] | null;
}

/** What the portal cannot tell about robots: whom they run as and what we registered last. */
export interface RobotContext {
  /** AUTH_USER_ID: the installing admin; null leaves it to the portal (the calling admin). */
  authUserId: number | null;
  /** Code → definition hash of the last successful registration (RegistrationReport.robots). */
  registered: Record<string, string>;
}

export interface RegistrationCommand {
  /** Readable id: `field:contact:UF_CRM_SARAFAN_CODE`, `event:ONCRMDEALUPDATE`, `placement:CRM_DEAL_DETAIL_TAB`, `robot:sarafan_accrue`. */
  item: string;
  command: BatchCommand;
}

export interface RegistrationDiff {
  /** Unbinds first, then adds, updates and binds. */
  commands: RegistrationCommand[];
  /** Differences no command can fix safely (they need an admin). */
  problems: { item: string; error: string }[];
  /** Code → hash of each declared robot's wanted definition (what the report keeps once it is on the portal). */
  robots: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------------------------

const listMethod = (entity: UserFieldEntity): string => `crm.${entity}.userfield.list`;
const LIST_PARAMS = { order: { ID: 'ASC' } };

/**
 * What the portal has registered, read in one batch. Throws when any read fails. Robots are read
 * only with `robots` (the app holds the `bizproc` scope): without it the whole read would fail.
 */
export async function readRegistration(gateway: PortalGateway, opts: { robots?: boolean } = {}): Promise<PortalRegistration> {
  const readRobots = opts.robots ?? true;
  const commands: BatchCommand[] = [
    ...ENTITIES.map((entity) => ({ method: listMethod(entity), params: LIST_PARAMS })),
    { method: 'event.get' },
    { method: 'placement.get' },
    ...(readRobots ? [{ method: 'bizproc.robot.list' }] : []),
  ];
  const outcomes = await gateway.batch(commands);
  const results = commands.map((command, i) => resultOf(command, outcomes[i]));

  const userFields = {} as Record<UserFieldEntity, PortalUserField[]>;
  for (const [i, entity] of ENTITIES.entries()) {
    const rows = await completeList(gateway, listMethod(entity), rowsOf(results[i]));
    userFields[entity] = rows.map(toUserField).filter((f): f is PortalUserField => f !== null);
  }
  const events = rowsOf(results[ENTITIES.length]).map(toEventBinding);
  const placements = rowsOf(results[ENTITIES.length + 1]).map(toPlacementBinding);
  const robots = readRobots ? robotCodesOf(results[ENTITIES.length + 2]) : null;
  return { userFields, events, placements, robots };
}

/** `["code", …]`, or an object keyed 0..n the way PHP may answer a list. */
function robotCodesOf(result: unknown): string[] {
  const values = Array.isArray(result) ? result : isRecord(result) ? Object.values(result) : [];
  return values.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
}

function resultOf(command: BatchCommand, outcome: BatchOutcome | undefined): unknown {
  if (!outcome) throw new Error(`Cannot read the portal's registration: no answer to ${command.method}`);
  if (!outcome.ok) {
    throw new Error(`Cannot read the portal's registration: ${command.method} failed: ${outcome.error}: ${outcome.description}`);
  }
  return outcome.result;
}

/**
 * A full first page may mean more fields (the docs show the list paged by 50, the core answers
 * every row): fetch further pages until one is short or adds nothing new, so both behaviours
 * end with every field and a portal under 50 fields costs no extra call.
 */
async function completeList(gateway: PortalGateway, method: string, first: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  if (first.length !== LIST_PAGE) return first;
  const all = [...first];
  const seen = new Set(first.map((r) => String(r.ID)));
  for (let page = 0; page < MAX_EXTRA_PAGES; page++) {
    const next = rowsOf(await gateway.call(method, { ...LIST_PARAMS, start: all.length }));
    const fresh = next.filter((r) => !seen.has(String(r.ID)));
    for (const r of fresh) seen.add(String(r.ID));
    all.push(...fresh);
    if (next.length < LIST_PAGE || fresh.length === 0) break;
  }
  return all;
}

/** PHP answers a list as an array, or as an object when its keys are not 0..n (and `[]` when empty). */
function rowsOf(result: unknown): Record<string, unknown>[] {
  const rows = Array.isArray(result) ? result : isRecord(result) ? Object.values(result) : [];
  return rows.filter(isRecord);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const text = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

function toUserField(row: Record<string, unknown>): PortalUserField | null {
  const name = text(row.FIELD_NAME).toUpperCase();
  if (!name) return null;
  return {
    ID: text(row.ID),
    FIELD_NAME: name,
    USER_TYPE_ID: text(row.USER_TYPE_ID),
    XML_ID: row.XML_ID === null || row.XML_ID === undefined ? null : String(row.XML_ID),
    MULTIPLE: text(row.MULTIPLE) || 'N',
    EDIT_IN_LIST: text(row.EDIT_IN_LIST) || 'Y',
    // Empty settings come back as `[]` (PHP).
    SETTINGS: isRecord(row.SETTINGS) ? row.SETTINGS : {},
  };
}

function toEventBinding(row: Record<string, unknown>): PortalEventBinding {
  return { event: text(row.event), handler: text(row.handler), offline: Number(row.offline ?? 0) !== 0 };
}

function toPlacementBinding(row: Record<string, unknown>): PortalPlacementBinding {
  return { placement: text(row.placement), handler: text(row.handler), title: text(row.title), userId: Number(row.userId ?? 0) || 0 };
}

// ---------------------------------------------------------------------------------------------
// Diff (pure)
// ---------------------------------------------------------------------------------------------

const NO_ROBOT_CONTEXT: RobotContext = { authUserId: null, registered: {} };

export function diffRegistration(manifest: Manifest, current: PortalRegistration, robotContext: RobotContext = NO_ROBOT_CONTEXT): RegistrationDiff {
  const unbinds: RegistrationCommand[] = [];
  const changes: RegistrationCommand[] = [];
  const problems: RegistrationDiff['problems'] = [];

  for (const spec of manifest.userFields) {
    const item = `field:${spec.entity}:${spec.fieldName}`;
    const existing = current.userFields[spec.entity].find((f) => f.FIELD_NAME === spec.fieldName.toUpperCase());
    if (!existing) {
      changes.push({ item, command: { method: `crm.${spec.entity}.userfield.add`, params: { fields: addFields(spec) } } });
      continue;
    }
    const conflict = immutableConflict(spec, existing);
    if (conflict) {
      problems.push({ item, error: conflict });
      continue;
    }
    const fields = driftedFields(spec, existing);
    if (Object.keys(fields).length) {
      changes.push({ item, command: { method: `crm.${spec.entity}.userfield.update`, params: { id: existing.ID, fields } } });
    }
  }

  // Offline bindings carry no handler URL of ours: they are not what the manifest describes.
  const online = current.events.filter((b) => !b.offline);
  const unboundEvents = new Set<string>();
  for (const b of online) {
    const event = b.event.toUpperCase();
    const wanted = manifest.events.filter((e) => e.event.toUpperCase() === event);
    if (!wanted.length || wanted.some((e) => e.handler === b.handler)) continue;
    if (!wanted.some((e) => isSameRoute(b.handler, e.handler))) continue;
    const key = `${event} ${b.handler}`;
    if (unboundEvents.has(key)) continue;
    unboundEvents.add(key);
    // Without auth_type, event.unbind removes the handler whatever user it was bound for.
    unbinds.push({ item: `event:${event}`, command: { method: 'event.unbind', params: { event, handler: b.handler } } });
  }
  for (const spec of manifest.events) {
    const event = spec.event.toUpperCase();
    if (online.some((b) => b.event.toUpperCase() === event && b.handler === spec.handler)) continue;
    changes.push({ item: `event:${event}`, command: { method: 'event.bind', params: { event, handler: spec.handler } } });
  }

  const unboundPlacements = new Set<string>();
  for (const b of current.placements) {
    const placement = b.placement.toUpperCase();
    const wanted = manifest.placements.filter((p) => p.placement.toUpperCase() === placement);
    if (!wanted.length || wanted.some((p) => p.handler === b.handler)) continue;
    if (!wanted.some((p) => isSameRoute(b.handler, p.handler))) continue;
    const key = `${placement} ${b.handler}`;
    if (unboundPlacements.has(key)) continue;
    unboundPlacements.add(key);
    unbinds.push({
      item: `placement:${placement}`,
      command: { method: 'placement.unbind', params: { PLACEMENT: placement, HANDLER: b.handler } },
    });
  }
  for (const spec of manifest.placements) {
    const placement = spec.placement.toUpperCase();
    if (current.placements.some((b) => b.placement.toUpperCase() === placement && b.handler === spec.handler)) continue;
    changes.push({
      item: `placement:${placement}`,
      command: {
        method: 'placement.bind',
        params: { PLACEMENT: placement, HANDLER: spec.handler, TITLE: spec.title, LANG_ALL: copyLangAll(spec.langAll) },
      },
    });
  }

  const robots: Record<string, string> = {};
  for (const spec of manifest.robots) {
    const item = `robot:${spec.code}`;
    const params = robotParams(spec, robotContext.authUserId);
    const hash = robotHash(params);
    robots[spec.code] = hash;
    if (current.robots === null) {
      problems.push({ item, error: 'MISSING_SCOPE: the app has no bizproc permission; add bizproc to its scope and reinstall to get the robots' });
      continue;
    }
    if (!current.robots.includes(spec.code)) {
      changes.push({ item, command: { method: 'bizproc.robot.add', params } });
    } else if (robotContext.registered[spec.code] !== hash) {
      changes.push({ item, command: robotUpdate(params) });
    }
  }

  return { commands: [...unbinds, ...changes], problems, robots };
}

/** The full `bizproc.robot.add` parameters (reference §8.1). */
function robotParams(spec: RobotSpec, authUserId: number | null): Record<string, unknown> {
  return {
    CODE: spec.code,
    HANDLER: spec.handler,
    ...(authUserId !== null ? { AUTH_USER_ID: authUserId } : {}),
    USE_SUBSCRIPTION: spec.useSubscription,
    NAME: { ...spec.name },
    DESCRIPTION: { ...spec.description },
    PROPERTIES: structuredClone(spec.properties),
    RETURN_PROPERTIES: structuredClone(spec.returnProperties),
    FILTER: structuredClone(spec.filter),
  };
}

/** `bizproc.robot.update` takes every field but CODE under FIELDS. */
function robotUpdate(params: Record<string, unknown>): BatchCommand {
  const { CODE, ...fields } = params;
  return { method: 'bizproc.robot.update', params: { CODE, FIELDS: fields } };
}

/** Hash of the definition with keys sorted, so reordering the declaration is no change. */
export function robotHash(params: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(params)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isRecord(v)) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function addFields(spec: UserFieldSpec): Record<string, unknown> {
  return {
    FIELD_NAME: spec.fieldName,
    USER_TYPE_ID: spec.userTypeId,
    XML_ID: spec.xmlId,
    // LABEL fills every portal language the maps below do not name (reference §6).
    LABEL: spec.labels.en,
    EDIT_FORM_LABEL: { ...spec.labels },
    LIST_COLUMN_LABEL: { ...spec.labels },
    LIST_FILTER_LABEL: { ...spec.labels },
    MULTIPLE: 'N',
    // Never 'Y': a mandatory app field blocks users saving cards (reference §6).
    MANDATORY: 'N',
    SHOW_FILTER: 'Y',
    SHOW_IN_LIST: 'Y',
    EDIT_IN_LIST: spec.editInList,
    SORT: spec.sort,
    SETTINGS: { ...spec.settings },
  };
}

function immutableConflict(spec: UserFieldSpec, existing: PortalUserField): string | null {
  const differences: string[] = [];
  if (existing.USER_TYPE_ID !== spec.userTypeId) {
    differences.push(`USER_TYPE_ID is '${existing.USER_TYPE_ID}', expected '${spec.userTypeId}'`);
  }
  if (existing.MULTIPLE !== 'N') differences.push(`MULTIPLE is '${existing.MULTIPLE}', expected 'N'`);
  if (!differences.length) return null;
  return `FIELD_CONFLICT: ${differences.join('; ')}; userfield.update cannot change this and the field may hold data, so an admin must rename or delete it`;
}

function driftedFields(spec: UserFieldSpec, existing: PortalUserField): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (existing.XML_ID !== spec.xmlId) fields.XML_ID = spec.xmlId;
  if (existing.EDIT_IN_LIST !== spec.editInList) fields.EDIT_IN_LIST = spec.editInList;
  const settingsDrift = Object.entries(spec.settings).some(([key, want]) => !sameSetting(want, existing.SETTINGS[key]));
  // Settings an admin added on top (e.g. more CRM types) are kept: only our keys are replaced.
  if (settingsDrift) fields.SETTINGS = { ...existing.SETTINGS, ...spec.settings };
  return fields;
}

/** The portal answers flags as 'Y' / 'N' / null and numbers as numbers or strings. */
function sameSetting(want: unknown, have: unknown): boolean {
  if (want === 'Y' || want === 'N') return asFlag(have) === want;
  if (typeof want === 'number') return have !== null && have !== undefined && have !== '' && Number(have) === want;
  if (typeof want === 'string') return text(have) === want;
  if (isRecord(want)) return isRecord(have) && Object.entries(want).every(([k, v]) => sameSetting(v, have[k]));
  return Object.is(want, have);
}

function asFlag(v: unknown): 'Y' | 'N' {
  return v === 'Y' || v === true || v === 1 || v === '1' ? 'Y' : 'N';
}

/** `https://old.example/b24/events` and `https://new.example/app/b24/events/` are the same route of ours. */
function isSameRoute(handler: string, ours: string): boolean {
  const a = routeOf(handler);
  return a !== null && a === routeOf(ours);
}

function routeOf(url: string): string | null {
  let path: string;
  try {
    path = new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return null;
  }
  const at = path.lastIndexOf(ROUTE_MARK);
  return at < 0 ? null : path.slice(at);
}

function copyLangAll(langAll: Manifest['placements'][number]['langAll']): Record<string, { TITLE: string; DESCRIPTION: string }> {
  return Object.fromEntries(Object.entries(langAll).map(([lang, t]) => [lang, { ...t }]));
}

// ---------------------------------------------------------------------------------------------
// Apply
// ---------------------------------------------------------------------------------------------

/** Who the robots run as and what was registered last: read from the installation. */
export type ReconcileContext = Pick<Installation, 'scope' | 'userId' | 'registration'>;

/**
 * Read, diff, apply the difference in one batch, and say what happened. A robot add refused as
 * already installed (a concurrent run, or a list read before another install finished) is
 * updated in one more batch, so its definition is ours either way.
 */
export async function reconcileRegistration(
  gateway: PortalGateway,
  manifest: Manifest,
  now: Date,
  context: ReconcileContext = { scope: '', userId: null, registration: null },
): Promise<RegistrationReport> {
  const current = await readRegistration(gateway, { robots: hasBizprocScope(context.scope) });
  const registered = context.registration?.robots ?? {};
  const { commands, problems, robots } = diffRegistration(manifest, current, { authUserId: context.userId, registered });
  const report: RegistrationReport = { at: now.toISOString(), created: [], updated: [], failed: [...problems] };
  // Robots that are on the portal with the wanted definition; the rest are added to as they succeed.
  const inPlace: Record<string, string> = {};
  for (const [code, hash] of Object.entries(robots)) {
    if (current.robots?.includes(code) && registered[code] === hash) inPlace[code] = hash;
  }
  const withRobots = (r: RegistrationReport): RegistrationReport => (current.robots === null ? r : { ...r, robots: inPlace });
  if (!commands.length) return withRobots(report);

  const outcomes = await gateway.batch(commands.map((c) => c.command));
  const retries: RegistrationCommand[] = [];
  commands.forEach(({ item, command }, i) => {
    const outcome = outcomes[i];
    const code = robotCodeOf(command);
    if (!outcome) {
      report.failed.push({ item, error: 'NO_ANSWER: the batch returned no outcome for this command' });
    } else if (outcome.ok) {
      (isCreation(command.method) ? report.created : report.updated).push(item);
      if (code) inPlace[code] = robots[code]!;
    } else if (code && outcome.error === 'ERROR_ACTIVITY_ALREADY_INSTALLED') {
      retries.push({ item, command: robotUpdate(command.params ?? {}) });
    } else if (!alreadyPresent(command.method, outcome)) {
      report.failed.push({ item, error: `${outcome.error}: ${outcome.description}` });
    }
  });
  if (retries.length) {
    const again = await gateway.batch(retries.map((c) => c.command));
    retries.forEach(({ item, command }, i) => {
      const outcome = again[i];
      const code = robotCodeOf(command)!;
      if (outcome?.ok) {
        report.updated.push(item);
        inPlace[code] = robots[code]!;
      } else {
        report.failed.push({ item, error: outcome ? `${outcome.error}: ${outcome.description}` : 'NO_ANSWER: the batch returned no outcome for this command' });
      }
    });
  }
  return withRobots(report);
}

/** An unknown scope (empty) is tried; a known one must name bizproc (reference §8.1). */
export function hasBizprocScope(scope: string): boolean {
  const scopes = scope.split(/[\s,]+/).filter(Boolean);
  return scopes.length === 0 || scopes.includes('bizproc');
}

function robotCodeOf(command: BatchCommand): string | null {
  if (!command.method.startsWith('bizproc.robot.')) return null;
  return text(command.params?.CODE) || null;
}

function isCreation(method: string): boolean {
  return method.endsWith('.add') || method.endsWith('.bind');
}

/**
 * A concurrent run (install racing ONAPPUPDATE) may register the item between our read and our
 * write; the portal then refuses the duplicate and the item is simply present (gotcha 5).
 */
function alreadyPresent(method: string, outcome: { error: string; description: string }): boolean {
  const description = text(outcome.description);
  if (outcome.error === 'ERROR_ACTIVITY_ALREADY_INSTALLED') return true;
  if (/already\s+(binded|bound)/i.test(description)) return true;
  // Duplicate FIELD_NAME: ERROR_CORE (or the legacy empty code) with the core's "already exists".
  return (
    method.endsWith('.userfield.add') &&
    (outcome.error === 'ERROR_CORE' || outcome.error === '') &&
    /already exists|уже существует/i.test(description)
  );
}
