/**
 * An in-memory portal for registration tests: stores user fields, event and placement bindings,
 * robots (reference §8.1: list answers codes only), answers in Bitrix24's shapes (reference §4.1, §6, §7.1; string ids, `[]` for empty settings)
 * and refuses duplicates the way the portal does. Batch params go through the same bracket
 * encoding as a real `batch` (`cmd` values are query strings), so numbers arrive as strings.
 */
import qs from 'qs';
import type { BatchCommand, BatchOutcome, PortalGateway } from '../../../src/bitrix/portal-gateway.js';
import type { UserFieldEntity } from '../../../src/bitrix/manifest-types.js';

type Row = Record<string, unknown>;
type Outcome = BatchOutcome;

export interface FakeEventRow {
  event: string;
  handler: string;
  auth_type: string;
  offline: number;
}

export interface FakePlacementRow {
  placement: string;
  userId: number;
  handler: string;
  options: unknown;
  title: string;
  description: string;
  langAll: unknown;
}

const ENTITY_IDS: Record<UserFieldEntity, string> = { deal: 'CRM_DEAL', contact: 'CRM_CONTACT', lead: 'CRM_LEAD' };
const PAGE = 50;

const ok = (result: unknown): Outcome => ({ ok: true, result });
const fail = (error: string, description: string): Outcome => ({ ok: false, error, description });
const clone = <T>(v: T): T => structuredClone(v);
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

export class FakePortal implements PortalGateway {
  fields: Record<UserFieldEntity, Row[]> = { deal: [], contact: [], lead: [] };
  events: FakeEventRow[] = [];
  placements: FakePlacementRow[] = [];
  /** Robots by CODE, with the parameters of their last add/update (as the batch delivered them). */
  robots = new Map<string, Row>();
  /** Codes `bizproc.robot.list` does not show yet (another install's add landing after our read). */
  unlistedRobots = new Set<string>();
  /** Every batch request, as sent (before encoding). */
  batches: BatchCommand[][] = [];
  /** Every single call. */
  calls: { method: string; params: Record<string, unknown> }[] = [];
  /** Every refused command. */
  refusals: { method: string; error: string; description: string }[] = [];
  /** Events this portal does not know (event.bind → ERROR_EVENT_NOT_FOUND). */
  unknownEvents = new Set<string>();
  /** Methods forced to fail. */
  failing = new Map<string, { error: string; description: string }>();
  private nextId = 1;

  async call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    this.calls.push({ method, params: clone(params) });
    const outcome = this.exec(method, clone(params));
    if (!outcome.ok) throw new Error(`${outcome.error}: ${outcome.description}`);
    return outcome.result as T;
  }

  async batch(commands: BatchCommand[]): Promise<BatchOutcome[]> {
    this.batches.push(clone(commands));
    return commands.map((c) => this.exec(c.method, qs.parse(qs.stringify(c.params ?? {})) as Row));
  }

  async list<T = Record<string, unknown>>(method: string): Promise<T[]> {
    throw new Error(`FakePortal.list(${method}) is not expected in registration`);
  }

  /** Methods of every command sent in batch `n`. */
  methodsOf(n: number): string[] {
    return (this.batches[n] ?? []).map((c) => c.method);
  }

  /** Put a field straight into the portal (an admin's field, or a drifted one of ours). */
  seedField(entity: UserFieldEntity, row: Row): Row {
    const stored = { ...this.fieldDefaults(entity), ...row, ID: String(this.nextId++) };
    this.fields[entity].push(stored);
    return stored;
  }

  field(entity: UserFieldEntity, name: string): Row | undefined {
    return this.fields[entity].find((f) => f.FIELD_NAME === name);
  }

  private exec(method: string, params: Row): Outcome {
    const forced = this.failing.get(method);
    const outcome = forced ? fail(forced.error, forced.description) : this.dispatch(method, params);
    if (!outcome.ok) this.refusals.push({ method, error: outcome.error, description: outcome.description });
    return outcome;
  }

  private dispatch(method: string, params: Row): Outcome {
    const uf = /^crm\.(deal|contact|lead)\.userfield\.(list|add|update)$/.exec(method);
    if (uf) {
      const entity = uf[1] as UserFieldEntity;
      if (uf[2] === 'list') return this.listFields(entity, params);
      if (uf[2] === 'add') return this.addField(entity, params);
      return this.updateField(entity, params);
    }
    switch (method) {
      case 'event.get':
        return ok(clone(this.events));
      case 'event.bind':
        return this.bindEvent(params);
      case 'event.unbind':
        return this.unbindEvent(params);
      case 'placement.get':
        return ok(clone(this.placements));
      case 'placement.bind':
        return this.bindPlacement(params);
      case 'placement.unbind':
        return this.unbindPlacement(params);
      case 'bizproc.robot.list':
        return ok([...this.robots.keys()].filter((code) => !this.unlistedRobots.has(code)));
      case 'bizproc.robot.add':
        return this.addRobot(params);
      case 'bizproc.robot.update':
        return this.updateRobot(params);
      case 'bizproc.robot.delete':
        return this.robots.delete(str(params.CODE)) ? ok(true) : fail('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!');
      default:
        return fail('ERROR_METHOD_NOT_FOUND', 'Method not found!');
    }
  }

  // Exact-match filter, unknown keys ignored, pages of 50 (as CUserTypeEntity::GetList + REST paging).
  private listFields(entity: UserFieldEntity, params: Row): Outcome {
    const filter = (params.filter ?? {}) as Row;
    const rows = this.fields[entity]
      .filter((f) => Object.entries(filter).every(([k, v]) => !(k in f) || str(f[k]) === str(v)))
      .sort((a, b) => Number(a.ID) - Number(b.ID));
    const start = Number(params.start ?? 0) || 0;
    return ok(clone(rows.slice(start, start + PAGE)));
  }

  private addField(entity: UserFieldEntity, params: Row): Outcome {
    const fields = (params.fields ?? {}) as Row;
    let name = str(fields.FIELD_NAME).toUpperCase();
    if (!name) return fail('', "The 'FIELD_NAME' field is not found.");
    if (!str(fields.USER_TYPE_ID)) return fail('', "The 'USER_TYPE_ID' field is not found.");
    if (!name.startsWith('UF_CRM_')) name = `UF_CRM_${name.replace(/^UF_/, '')}`;
    if (name.length > 50) return fail('ERROR_CORE', 'Field name is too long');
    if (this.field(entity, name)) {
      return fail('ERROR_CORE', `User field ${name} already exists for entity ${ENTITY_IDS[entity]}.`);
    }
    const stored = this.seedField(entity, {
      FIELD_NAME: name,
      USER_TYPE_ID: str(fields.USER_TYPE_ID),
      XML_ID: fields.XML_ID === undefined ? null : str(fields.XML_ID),
      SORT: str(fields.SORT || '100'),
      MULTIPLE: fields.MULTIPLE === 'Y' ? 'Y' : 'N',
      MANDATORY: fields.MANDATORY === 'Y' ? 'Y' : 'N',
      SHOW_FILTER: fields.SHOW_FILTER === 'Y' ? 'E' : 'N',
      SHOW_IN_LIST: fields.SHOW_IN_LIST === 'N' ? 'N' : 'Y',
      EDIT_IN_LIST: fields.EDIT_IN_LIST === 'N' ? 'N' : 'Y',
      SETTINGS: prepareSettings(str(fields.USER_TYPE_ID), fields.SETTINGS),
    });
    return ok(Number(stored.ID));
  }

  private updateField(entity: UserFieldEntity, params: Row): Outcome {
    const row = this.fields[entity].find((f) => f.ID === str(params.id));
    if (!row) return fail('', 'Not found');
    const fields = (params.fields ?? {}) as Row;
    // FIELD_NAME, USER_TYPE_ID and MULTIPLE cannot be changed (reference §6).
    if ('XML_ID' in fields) row.XML_ID = str(fields.XML_ID);
    if ('EDIT_IN_LIST' in fields) row.EDIT_IN_LIST = fields.EDIT_IN_LIST === 'N' ? 'N' : 'Y';
    if ('MANDATORY' in fields) row.MANDATORY = fields.MANDATORY === 'Y' ? 'Y' : 'N';
    if ('SETTINGS' in fields) row.SETTINGS = prepareSettings(str(row.USER_TYPE_ID), fields.SETTINGS);
    return ok(true);
  }

  private bindEvent(params: Row): Outcome {
    const event = str(params.event).toUpperCase();
    const handler = str(params.handler);
    if (!event || !handler) return fail('ERROR_ARGUMENT', 'Event and handler are required');
    if (this.unknownEvents.has(event)) return fail('ERROR_EVENT_NOT_FOUND', 'Event not found');
    if (this.events.some((e) => e.event === event && e.handler === handler)) {
      return fail('ERROR_CORE', 'Handler already binded');
    }
    this.events.push({ event, handler, auth_type: '0', offline: 0 });
    return ok(true);
  }

  private unbindEvent(params: Row): Outcome {
    const event = str(params.event).toUpperCase();
    const handler = str(params.handler);
    const before = this.events.length;
    this.events = this.events.filter((e) => !(e.event === event && e.handler === handler));
    return ok({ count: before - this.events.length });
  }

  private bindPlacement(params: Row): Outcome {
    const placement = str(params.PLACEMENT);
    const handler = str(params.HANDLER);
    if (!placement) return fail('ERROR_ARGUMENT', "Argument 'PLACEMENT' is null or empty");
    if (!handler) return fail('ERROR_ARGUMENT', "Argument 'HANDLER' is null or empty");
    if (this.placements.some((p) => p.placement === placement && p.handler === handler)) {
      return fail('ERROR_CORE', 'Handler already binded');
    }
    this.placements.push({
      placement,
      userId: 0,
      handler,
      options: [],
      title: str(params.TITLE),
      description: str(params.DESCRIPTION),
      langAll: params.LANG_ALL ?? [],
    });
    return ok(true);
  }

  private unbindPlacement(params: Row): Outcome {
    const placement = str(params.PLACEMENT);
    if (!placement) return fail('ERROR_ARGUMENT', "Argument 'PLACEMENT' is null or empty");
    const handler = str(params.HANDLER);
    const before = this.placements.length;
    this.placements = this.placements.filter((p) => !(p.placement === placement && (!handler || p.handler === handler)));
    return ok({ count: before - this.placements.length });
  }

  // Validation as bizproc.robot.add answers it (reference §8.1).
  private addRobot(params: Row): Outcome {
    const code = str(params.CODE);
    if (!code) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', 'Empty activity code!');
    if (!/^[a-zA-Z0-9._-]+$/.test(code)) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', 'Wrong activity code!');
    const invalid = robotInvalid(params, false);
    if (invalid) return invalid;
    if (this.robots.has(code)) return fail('ERROR_ACTIVITY_ALREADY_INSTALLED', 'Activity or Automation rule already installed!');
    this.robots.set(code, clone(params));
    return ok(true);
  }

  private updateRobot(params: Row): Outcome {
    const code = str(params.CODE);
    const fields = params.FIELDS;
    if (!fields || typeof fields !== 'object' || !Object.keys(fields).length) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', 'No fields to update.');
    const existing = this.robots.get(code);
    if (!existing) return fail('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!');
    const invalid = robotInvalid(fields as Row, true);
    if (invalid) return invalid;
    this.robots.set(code, { ...existing, ...clone(fields as Row), CODE: code });
    return ok(true);
  }

  private fieldDefaults(entity: UserFieldEntity): Row {
    return {
      ENTITY_ID: ENTITY_IDS[entity],
      XML_ID: null,
      SORT: '100',
      MULTIPLE: 'N',
      MANDATORY: 'N',
      SHOW_FILTER: 'N',
      SHOW_IN_LIST: 'Y',
      EDIT_IN_LIST: 'Y',
      IS_SEARCHABLE: 'N',
      SETTINGS: [],
    };
  }
}

/** Roughly the core's PrepareSettings: typed values, defaults filled, `[]` when empty. */
function prepareSettings(type: string, raw: unknown): unknown {
  const s = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Row;
  if (type === 'double') {
    return { PRECISION: Number(s.PRECISION ?? 2), SIZE: Number(s.SIZE ?? 20), MIN_VALUE: 0, MAX_VALUE: 0, DEFAULT_VALUE: null };
  }
  if (type === 'crm') {
    const flag = (v: unknown) => (v === 'Y' ? 'Y' : null);
    const out: Row = { ...s, LEAD: flag(s.LEAD), CONTACT: flag(s.CONTACT), COMPANY: flag(s.COMPANY), DEAL: flag(s.DEAL) };
    return out;
  }
  return Object.keys(s).length ? { ...s } : [];
}

function robotInvalid(p: Row, partial: boolean): Outcome | null {
  if ((!partial || 'HANDLER' in p) && !/^https?:\/\//.test(str(p.HANDLER))) return fail('ERROR_WRONG_HANDLER_URL', 'Wrong handler URL');
  if ((!partial || 'NAME' in p) && !p.NAME) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', 'Empty activity NAME!');
  for (const key of ['PROPERTIES', 'RETURN_PROPERTIES']) {
    const props = p[key];
    if (props === undefined || props === '') continue;
    if (typeof props !== 'object' || props === null) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', 'Wrong properties array!');
    for (const [k, v] of Object.entries(props as Row)) {
      if (!/^[a-zA-Z][a-zA-Z0-9_]*$/.test(k)) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', `Wrong property key ${k}!`);
      if (!v || typeof v !== 'object' || !(v as Row).Name) return fail('ERROR_ACTIVITY_VALIDATION_FAILURE', `Empty property NAME ${k}!`);
    }
  }
  return null;
}
