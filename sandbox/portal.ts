/**
 * The sandbox portal: one Bitrix24 portal with its OAuth server, users, installed applications
 * and CRM data, kept in a JSON state file. Every transport (REST, web CRM, seed) goes through
 * this class.
 */
import { randomBytes } from 'node:crypto';
import {
  FIELDS,
  FIELD_MAP,
  PAGE,
  UF_ENTITY_ID,
  UF_TYPES,
  LANGS,
  applyMultifield,
  isoDateTime,
  isNumeric,
  isoDay,
  matchesFilter,
  normalizeStandard,
  normalizeUf,
  normalizeUfName,
  sortRows,
  ufDefault,
  type MultifieldValue,
} from './crm.js';
import { realClock, type SandboxClock } from './clock.js';
import { activityName } from './robot-expressions.js';
import { StateSaver, defaultState, loadState, type Activity, type Category, type Currency, type SandboxState } from './state.js';
import { PortalError } from './types.js';
import type {
  Actor,
  ChangeNote,
  EntityKind,
  EventBinding,
  ImportRow,
  ListPage,
  ListQuery,
  Notification,
  PlacementBinding,
  Portal,
  RobotRegistration,
  RobotRun,
  Row,
  SandboxApp,
  SandboxUser,
  Stage,
  StageRobot,
  TimelineComment,
} from './types.js';

export interface CreatePortalOptions {
  stateFile?: string | null;
  domain: string;
  protocol?: 'http' | 'https';
  memberId?: string;
  /** Access token lifetime, seconds (default 3600). */
  tokenLifetimeSec?: number;
  /** Token lifetimes, timestamps and the debounced state writes follow it (default the real clock). */
  clock?: SandboxClock;
}

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  /** Unix seconds. */
  expires: number;
  expiresIn: number;
}

const stageOf = (STATUS_ID: string, NAME: string, SORT: number, SEMANTICS: Stage['SEMANTICS'], COLOR: string, CATEGORY_ID: number): Stage => ({
  STATUS_ID,
  NAME,
  SORT,
  SEMANTICS,
  COLOR,
  CATEGORY_ID,
});

const REFRESH_LIFETIME_MS = 180 * 24 * 3600 * 1000;
const MAX_TOKEN_PAIRS = 5000;
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const LABEL_KEYS = ['EDIT_FORM_LABEL', 'LIST_COLUMN_LABEL', 'LIST_FILTER_LABEL', 'ERROR_MESSAGE', 'HELP_MESSAGE'] as const;
const YN = (v: unknown, dflt: 'Y' | 'N'): 'Y' | 'N' =>
  v === undefined || v === null || v === '' ? dflt : v === true || v === 1 || v === '1' || v === 'Y' || v === 'y' ? 'Y' : 'N';

export class SandboxPortal implements Portal {
  private readonly state: SandboxState;
  private readonly saver: StateSaver;
  private readonly listeners = new Set<(note: ChangeNote) => void>();
  readonly clock: SandboxClock;
  /** Unix ms on the portal's clock. */
  readonly now: () => number;
  readonly tokenLifetimeSec: number;

  constructor(opts: CreatePortalOptions) {
    const clock = opts.clock ?? realClock;
    this.clock = clock;
    this.now = () => clock.now();
    this.tokenLifetimeSec = opts.tokenLifetimeSec ?? 3600;
    const file = opts.stateFile ?? null;
    const defaults = defaultState({
      domain: opts.domain,
      protocol: opts.protocol ?? 'http',
      memberId: opts.memberId ?? hex(16),
    });
    this.state = loadState(file, defaults);
    // The configured domain wins; a renamed portal keeps its member_id.
    this.state.portal.domain = opts.domain;
    if (opts.protocol) this.state.portal.protocol = opts.protocol;
    this.saver = new StateSaver(file, () => this.state, clock);
    this.saver.touch();
  }

  // -------------------------------------------------------------------------------------------
  // Identity
  // -------------------------------------------------------------------------------------------

  get domain(): string {
    return this.state.portal.domain;
  }
  get memberId(): string {
    return this.state.portal.memberId;
  }
  get protocol(): 'http' | 'https' {
    return this.state.portal.protocol;
  }
  get origin(): string {
    return `${this.protocol}://${this.domain}`;
  }

  /** Writes pending changes now. */
  flush(): void {
    this.saver.flush();
  }

  /** Flushes the state (the portal stays usable). */
  close(): void {
    this.saver.flush();
  }

  private changed(): void {
    this.saver.touch();
  }

  /** Raw state, read-only by convention (tests, diagnostics). */
  snapshot(): Readonly<SandboxState> {
    return this.state;
  }

  users(): SandboxUser[] {
    return this.state.users.map((u) => ({ ...u }));
  }

  user(id: number): SandboxUser | null {
    const u = this.state.users.find((x) => x.ID === id);
    return u ? { ...u } : null;
  }

  // -------------------------------------------------------------------------------------------
  // Applications and tokens
  // -------------------------------------------------------------------------------------------

  apps(): SandboxApp[] {
    return this.state.apps.map((a) => ({ ...a }));
  }

  app(clientId: string): SandboxApp | null {
    const a = this.state.apps.find((x) => x.clientId === clientId);
    return a ? { ...a } : null;
  }

  upsertApp(app: Omit<SandboxApp, 'applicationToken' | 'installed'>): SandboxApp {
    const existing = this.state.apps.find((x) => x.clientId === app.clientId);
    if (existing) {
      Object.assign(existing, app);
      this.changed();
      return { ...existing };
    }
    const created: SandboxApp = { ...app, applicationToken: null, installed: false };
    this.state.apps.push(created);
    this.changed();
    return { ...created };
  }

  setAppInstalled(clientId: string, installed: boolean, applicationToken?: string): SandboxApp {
    const app = this.state.apps.find((x) => x.clientId === clientId);
    if (!app) throw new PortalError('NOT_FOUND', `Unknown application ${clientId}`, 404);
    app.installed = installed;
    if (installed) app.applicationToken = applicationToken ?? hex(16);
    this.changed();
    return { ...app };
  }

  uninstallApp(clientId: string, clean: boolean): void {
    const app = this.state.apps.find((x) => x.clientId === clientId);
    if (!app) return;
    app.installed = false;
    app.applicationToken = null;
    const s = this.state;
    s.eventBindings = s.eventBindings.filter((b) => b.clientId !== clientId);
    s.placements = s.placements.filter((b) => b.clientId !== clientId);
    s.stageRobots = s.stageRobots.filter((r) => r.clientId !== clientId);
    s.robots = s.robots.filter((r) => r.clientId !== clientId);
    if (clean) delete s.appOptions[clientId];
    for (const [t, rec] of Object.entries(s.accessTokens)) if (rec.clientId === clientId) delete s.accessTokens[t];
    for (const [t, rec] of Object.entries(s.refreshTokens)) if (rec.clientId === clientId) delete s.refreshTokens[t];
    this.changed();
  }

  issueTokens(clientId: string, userId: number): IssuedTokens {
    if (!this.app(clientId)) throw new PortalError('invalid_client', 'Unknown client', 401);
    if (!this.user(userId)) throw new PortalError('NOT_FOUND', `Unknown user ${userId}`, 404);
    const now = this.now();
    this.prune(now);
    const accessToken = hex(32);
    const refreshToken = hex(32);
    const expiresAt = now + this.tokenLifetimeSec * 1000;
    this.state.accessTokens[accessToken] = { clientId, userId, expiresAt, refreshToken };
    this.state.refreshTokens[refreshToken] = { clientId, userId, accessToken, expiresAt: now + REFRESH_LIFETIME_MS };
    this.changed();
    return { accessToken, refreshToken, expires: Math.floor(expiresAt / 1000), expiresIn: this.tokenLifetimeSec };
  }

  /**
   * The pair the portal puts into events and robot calls for a user of an app: one per
   * (app, user) while it has more than five minutes to live, as a logged-in user's session token
   * would be — not a new pair per delivery, which would crowd out the pairs apps keep.
   */
  sessionTokens(clientId: string, userId: number): IssuedTokens {
    const key = `${clientId}:${userId}`;
    const current = this.sessions.get(key);
    const rec = current ? this.state.accessTokens[current] : undefined;
    if (current && rec && rec.expiresAt - this.now() > 5 * 60_000) {
      return { accessToken: current, refreshToken: rec.refreshToken, expires: Math.floor(rec.expiresAt / 1000), expiresIn: this.tokenLifetimeSec };
    }
    const issued = this.issueTokens(clientId, userId);
    this.sessions.set(key, issued.accessToken);
    return issued;
  }

  private readonly sessions = new Map<string, string>();

  /** Drops access tokens expired more than a day ago and spent refresh tokens' leftovers. */
  private prune(now: number): void {
    // An app back after days away presents its expired access token and must hear expired_token
    // (then it refreshes), not NO_AUTH_FOUND: a token is forgotten only once its refresh token is gone.
    for (const [t, rec] of Object.entries(this.state.accessTokens)) {
      if (rec.expiresAt < now - 24 * 3600 * 1000 && rec.expiresAt !== 0 && !this.state.refreshTokens[rec.refreshToken]) delete this.state.accessTokens[t];
    }
    for (const [t, rec] of Object.entries(this.state.refreshTokens)) if (rec.expiresAt < now) delete this.state.refreshTokens[t];
    // Event deliveries issue a pair each: keep the newest MAX_TOKEN_PAIRS (insertion order = age).
    const refresh = Object.keys(this.state.refreshTokens);
    for (const t of refresh.slice(0, Math.max(0, refresh.length - MAX_TOKEN_PAIRS))) {
      const rec = this.state.refreshTokens[t]!;
      delete this.state.accessTokens[rec.accessToken];
      delete this.state.refreshTokens[t];
    }
  }

  /** Who a REST access token belongs to; 'expired' or null (unknown). */
  authenticate(accessToken: string): { clientId: string; userId: number } | 'expired' | null {
    const rec = this.state.accessTokens[accessToken];
    if (!rec) return null;
    if (rec.expiresAt <= this.now()) return 'expired';
    return { clientId: rec.clientId, userId: rec.userId };
  }

  /** OAuth refresh with rotation: the old refresh token and its access token stop working. */
  refresh(clientId: string, clientSecret: string, refreshToken: string): IssuedTokens & { userId: number; scope: string } {
    const app = this.state.apps.find((a) => a.clientId === clientId);
    if (!app || app.clientSecret !== clientSecret) throw new PortalError('invalid_client', 'Invalid client credentials', 401);
    const rec = this.state.refreshTokens[refreshToken];
    if (!rec || rec.clientId !== clientId || rec.expiresAt <= this.now()) {
      throw new PortalError('invalid_grant', 'Invalid refresh token', 400);
    }
    delete this.state.refreshTokens[refreshToken];
    delete this.state.accessTokens[rec.accessToken];
    const issued = this.issueTokens(clientId, rec.userId);
    return { ...issued, userId: rec.userId, scope: app.scope };
  }

  /** Makes an access token expired now (tests). */
  expireAccessToken(token: string): void {
    const rec = this.state.accessTokens[token];
    if (rec) rec.expiresAt = 0;
    this.changed();
  }

  appOptions(clientId: string): Row {
    return { ...(this.state.appOptions[clientId] ?? {}) };
  }

  setAppOptions(clientId: string, options: Row): void {
    this.state.appOptions[clientId] = { ...(this.state.appOptions[clientId] ?? {}), ...options };
    this.changed();
  }

  // -------------------------------------------------------------------------------------------
  // Stages, categories, currencies
  // -------------------------------------------------------------------------------------------

  stages(kind: 'deal' | 'lead', categoryId = 0): Stage[] {
    const list = kind === 'lead' ? this.state.leadStatuses : this.state.dealStages.filter((s) => s.CATEGORY_ID === categoryId);
    return list.map((s) => ({ ...s })).sort((a, b) => a.SORT - b.SORT);
  }

  categories(): Category[] {
    return this.state.categories.map((c) => ({ ...c })).sort((a, b) => a.sort - b.sort);
  }

  currencies(): Currency[] {
    return this.state.currencies.map((c) => ({ ...c }));
  }

  private semantic(kind: 'deal' | 'lead', stageId: string | null): 'P' | 'S' | 'F' {
    const list = kind === 'lead' ? this.state.leadStatuses : this.state.dealStages;
    const s = list.find((x) => x.STATUS_ID === stageId);
    return s?.SEMANTICS ?? 'P';
  }

  // -------------------------------------------------------------------------------------------
  // CRM entities
  // -------------------------------------------------------------------------------------------

  onChange(listener: (note: ChangeNote) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(note: ChangeNote): void {
    for (const l of [...this.listeners]) {
      try {
        l(note);
      } catch {
        // A listener never breaks the mutation.
      }
    }
  }

  private table(kind: EntityKind): SandboxState['entities'][EntityKind] {
    return this.state.entities[kind];
  }

  /** Ids of each table in ascending order (the `>ID` walk's index); rebuilt after a delete. */
  private readonly idIndex = new Map<EntityKind, number[]>();

  private sortedIds(kind: EntityKind): number[] {
    let ids = this.idIndex.get(kind);
    if (!ids) {
      ids = Object.keys(this.table(kind).rows).map(Number).sort((a, b) => a - b);
      this.idIndex.set(kind, ids);
    }
    return ids;
  }

  private nextMultifieldId = (): number => this.state.nextMultifieldId++;

  /** Writes `fields` into `row` (standard fields, multifields, existing user fields). */
  private write(kind: EntityKind, row: Row, fields: Row, isAdd: boolean): void {
    const specs = FIELD_MAP[kind];
    const ufs = new Map(this.state.userFields[kind].map((u) => [String(u.FIELD_NAME), u]));
    for (const [key, value] of Object.entries(fields)) {
      const spec = specs.get(key);
      if (spec) {
        if (spec.readOnly) continue;
        if (spec.type === 'crm_multifield') {
          row[key] = applyMultifield((row[key] as MultifieldValue[] | undefined) ?? [], key as 'PHONE' | 'EMAIL', value, this.nextMultifieldId);
          continue;
        }
        if (spec.immutable && !isAdd) continue;
        row[key] = normalizeStandard(spec, value);
        continue;
      }
      if (key === 'CONTACT_IDS' && kind === 'deal') {
        const ids = (Array.isArray(value) ? value : value && typeof value === 'object' ? Object.values(value) : [value])
          .map((v) => Number.parseInt(String(v), 10))
          .filter((n) => Number.isFinite(n) && n > 0)
          .map(String);
        row.CONTACT_IDS = [...new Set(ids)];
        row.CONTACT_ID = ids[0] ?? null;
        continue;
      }
      const uf = ufs.get(key.toUpperCase());
      if (uf) row[String(uf.FIELD_NAME)] = normalizeUf(uf, value);
      // Anything else is ignored silently, like Bitrix24.
    }
    if (kind === 'deal' && Object.prototype.hasOwnProperty.call(fields, 'CONTACT_ID') && !('CONTACT_IDS' in fields)) {
      const ids = ((row.CONTACT_IDS as string[] | undefined) ?? []).filter((x) => x !== row.CONTACT_ID);
      row.CONTACT_IDS = row.CONTACT_ID ? [String(row.CONTACT_ID), ...ids] : ids;
    }
  }

  private checkStage(kind: EntityKind, row: Row, categoryChanged: boolean, stageGiven: boolean): void {
    if (kind === 'deal') {
      const cat = Number(row.CATEGORY_ID ?? 0);
      if (!this.state.categories.some((c) => c.id === cat)) throw new PortalError('', `Category ${cat} is not found.`);
      const stages = this.stages('deal', cat);
      if (!stageGiven && (categoryChanged || !row.STAGE_ID)) row.STAGE_ID = stages[0]?.STATUS_ID ?? null;
      if (!stages.some((s) => s.STATUS_ID === row.STAGE_ID)) {
        throw new PortalError('', `Stage '${String(row.STAGE_ID)}' is not found in the deal's funnel ${cat}.`);
      }
    } else if (kind === 'lead') {
      if (!row.STATUS_ID) row.STATUS_ID = this.state.leadStatuses[0]?.STATUS_ID ?? 'NEW';
      if (!this.state.leadStatuses.some((s) => s.STATUS_ID === row.STATUS_ID)) {
        throw new PortalError('', `Status '${String(row.STATUS_ID)}' is not found.`);
      }
    }
  }

  /** Derived fields (semantics, CLOSED, HAS_PHONE…) after a write. */
  private derive(kind: EntityKind, row: Row, actor: Actor, stageMoved: boolean, now: number): void {
    const ts = isoDateTime(now);
    if (kind === 'deal') {
      const sem = this.semantic('deal', row.STAGE_ID as string);
      row.STAGE_SEMANTIC_ID = sem;
      const closed = sem === 'S' || sem === 'F' ? 'Y' : 'N';
      if (closed === 'Y' && row.CLOSED !== 'Y') row.CLOSEDATE = isoDay(now);
      row.CLOSED = closed;
    }
    if (kind === 'lead') {
      const sem = this.semantic('lead', row.STATUS_ID as string);
      row.STATUS_SEMANTIC_ID = sem;
      if (sem !== 'P' && stageMoved) row.DATE_CLOSED = ts;
      if (sem === 'P') row.DATE_CLOSED = null;
    }
    if (kind !== 'deal') {
      row.HAS_PHONE = ((row.PHONE as unknown[] | undefined) ?? []).length > 0 ? 'Y' : 'N';
      row.HAS_EMAIL = ((row.EMAIL as unknown[] | undefined) ?? []).length > 0 ? 'Y' : 'N';
    }
    if (stageMoved && kind !== 'contact') {
      row.MOVED_BY_ID = String(actor.userId);
      row.MOVED_TIME = ts;
    }
    row.MODIFY_BY_ID = String(actor.userId);
    row.DATE_MODIFY = ts;
  }

  private stageKey(kind: EntityKind): string | null {
    return kind === 'deal' ? 'STAGE_ID' : kind === 'lead' ? 'STATUS_ID' : null;
  }

  private validateRefs(kind: EntityKind, row: Row): void {
    const check = (key: string, target: EntityKind): void => {
      const v = row[key];
      if (v && !this.table(target).rows[String(v)]) row[key] = null;
    };
    if (kind === 'deal') {
      check('CONTACT_ID', 'contact');
      check('LEAD_ID', 'lead');
      row.CONTACT_IDS = ((row.CONTACT_IDS as string[] | undefined) ?? []).filter((id) => this.table('contact').rows[id]);
      if (!row.CONTACT_ID && (row.CONTACT_IDS as string[]).length) row.CONTACT_ID = (row.CONTACT_IDS as string[])[0];
    }
    if (kind === 'lead') check('CONTACT_ID', 'contact');
    if (kind === 'contact') check('LEAD_ID', 'lead');
    if (row.ASSIGNED_BY_ID && !this.user(Number(row.ASSIGNED_BY_ID))) {
      throw new PortalError('', `User ${String(row.ASSIGNED_BY_ID)} is not found.`);
    }
  }

  addEntity(kind: EntityKind, fields: Row, actor: Actor): number {
    return this.addAt(kind, fields, actor, this.now()).id;
  }

  /**
   * An import (CRM → Import, or a migration from another CRM): rows keep the dates they had
   * where they came from, as Bitrix24 keeps an imported deal's DATE_CREATE; the close date, the
   * last stage move and DATE_MODIFY are the row's `closedAt` (default its creation). Each row
   * is an add like any other (events, robots); only the timestamps differ.
   */
  importEntities(kind: EntityKind, items: readonly ImportRow[], actor: Actor): number[] {
    const now = this.now();
    for (const [i, item] of items.entries()) {
      const closedAt = item.closedAt ?? item.createdAt;
      if (!Number.isFinite(item.createdAt) || !Number.isFinite(closedAt) || closedAt < item.createdAt || closedAt > now) {
        throw new PortalError('', `Row ${i}: dates must satisfy created ≤ closed ≤ now.`);
      }
    }
    return items.map((item) => {
      const closedAt = item.closedAt ?? item.createdAt;
      return this.addAt(kind, item.fields, actor, item.createdAt, (r) => {
        const ts = isoDateTime(closedAt);
        if (kind === 'deal' && r.CLOSED === 'Y') r.CLOSEDATE = isoDay(closedAt);
        if (kind === 'lead' && r.STATUS_SEMANTIC_ID !== 'P') r.DATE_CLOSED = ts;
        if (kind !== 'contact') r.MOVED_TIME = ts;
        r.DATE_MODIFY = ts;
      }).id;
    });
  }

  /** A new deal pipeline with the usual stages (in progress, won, lost); an existing name is returned as is. */
  addCategory(name: string): number {
    const existing = this.state.categories.find((c) => c.name === name);
    if (existing) return existing.id;
    const id = Math.max(0, ...this.state.categories.map((c) => c.id)) + 1;
    const sort = Math.max(0, ...this.state.categories.map((c) => c.sort)) + 100;
    this.state.categories.push({ id, name, sort, isDefault: false });
    this.state.dealStages.push(
      stageOf(`C${id}:NEW`, 'Новая', 10, null, '#39A8EF', id),
      stageOf(`C${id}:EXECUTING`, 'В работе', 20, null, '#47E4C2', id),
      stageOf(`C${id}:WON`, 'Сделка успешна', 30, 'S', '#7BD500', id),
      stageOf(`C${id}:LOSE`, 'Сделка провалена', 40, 'F', '#FF5752', id),
    );
    this.changed();
    return id;
  }

  private addAt(kind: EntityKind, fields: Row, actor: Actor, now: number, stamp?: (row: Row) => void): { id: number; row: Row } {
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) throw new PortalError('', 'Invalid fields.');
    const t = this.table(kind);
    const id = t.nextId;
    const row: Row = {};
    for (const spec of FIELDS[kind]) row[spec.name] = spec.type === 'crm_multifield' ? [] : null;
    for (const uf of this.state.userFields[kind]) {
      const d = ufDefault(uf, now);
      row[String(uf.FIELD_NAME)] = d === undefined ? (uf.MULTIPLE === 'Y' ? [] : null) : d;
    }
    if (kind === 'deal') {
      row.CONTACT_IDS = [];
      Object.assign(row, { CATEGORY_ID: '0', OPPORTUNITY: '0.00', CURRENCY_ID: 'RUB', BEGINDATE: isoDay(now), CLOSEDATE: isoDay(now + 7 * 86400_000) });
      Object.assign(row, { IS_NEW: 'Y', IS_MANUAL_OPPORTUNITY: 'N', TAX_VALUE: '0.00', TYPE_ID: 'SALE', PROBABILITY: null });
    }
    if (kind === 'lead') Object.assign(row, { OPPORTUNITY: '0.00', CURRENCY_ID: 'RUB', IS_MANUAL_OPPORTUNITY: 'N' });
    if (kind === 'contact') Object.assign(row, { EXPORT: 'Y', TYPE_ID: 'CLIENT' });
    Object.assign(row, { OPENED: 'Y', ASSIGNED_BY_ID: String(actor.userId), CREATED_BY_ID: String(actor.userId), DATE_CREATE: isoDateTime(now) });

    const input = { ...fields };
    if (kind === 'deal' && input.CATEGORY_ID === undefined && typeof input.STAGE_ID === 'string') {
      const m = /^C(\d+):/.exec(input.STAGE_ID);
      if (m) input.CATEGORY_ID = m[1];
    }
    this.write(kind, row, input, true);
    row.ID = String(id);
    const stageKey = this.stageKey(kind);
    this.checkStage(kind, row, false, stageKey !== null && !!input[stageKey]);
    this.validateRefs(kind, row);
    if (kind === 'deal' && !row.TITLE) row.TITLE = `Сделка #${id}`;
    if (kind === 'lead' && !row.TITLE) row.TITLE = `Лид #${id}`;
    this.derive(kind, row, actor, stageKey !== null, now);
    stamp?.(row);
    t.rows[String(id)] = row;
    t.nextId = id + 1;
    const ids = this.idIndex.get(kind);
    if (ids && (ids.at(-1) ?? 0) < id) ids.push(id);
    else this.idIndex.delete(kind);
    this.changed();
    const note: ChangeNote = { kind: 'add', entity: kind, id, actor: { ...actor } };
    if (stageKey) note.enteredStage = String(row[stageKey]);
    this.notify(note);
    return { id, row };
  }

  updateEntity(kind: EntityKind, id: number, fields: Row, actor: Actor, opts: { allowCategoryChange?: boolean } = {}): void {
    const t = this.table(kind);
    const current = t.rows[String(id)];
    if (!current) throw new PortalError('', 'Not found');
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) throw new PortalError('', 'Invalid fields.');
    const row: Row = structuredClone(current);
    const input = { ...fields };
    let categoryChanged = false;
    if (kind === 'deal') {
      if (opts.allowCategoryChange && input.CATEGORY_ID !== undefined && String(Number(input.CATEGORY_ID)) !== row.CATEGORY_ID) {
        row.CATEGORY_ID = normalizeStandard(FIELD_MAP.deal.get('CATEGORY_ID')!, input.CATEGORY_ID);
        categoryChanged = true;
      }
      delete input.CATEGORY_ID;
      row.IS_NEW = 'N';
    }
    this.write(kind, row, input, false);
    const stageKey = this.stageKey(kind);
    this.checkStage(kind, row, categoryChanged, stageKey !== null && input[stageKey] !== undefined && input[stageKey] !== null && input[stageKey] !== '');
    this.validateRefs(kind, row);
    const moved = stageKey !== null && row[stageKey] !== current[stageKey];
    this.derive(kind, row, actor, moved, this.now());
    t.rows[String(id)] = row;
    this.changed();
    const note: ChangeNote = { kind: 'update', entity: kind, id, actor: { ...actor } };
    if (moved && stageKey) note.enteredStage = String(row[stageKey]);
    this.notify(note);
  }

  deleteEntity(kind: EntityKind, id: number, actor: Actor): void {
    const t = this.table(kind);
    if (!t.rows[String(id)]) throw new PortalError('', 'Not found');
    delete t.rows[String(id)];
    this.idIndex.delete(kind);
    if (kind === 'contact') {
      // Links to a deleted contact disappear (no change notes, like Bitrix24's silent unbind).
      const cid = String(id);
      for (const deal of Object.values(this.table('deal').rows)) {
        const ids = ((deal.CONTACT_IDS as string[] | undefined) ?? []).filter((x) => x !== cid);
        deal.CONTACT_IDS = ids;
        if (deal.CONTACT_ID === cid) deal.CONTACT_ID = ids[0] ?? null;
      }
      for (const lead of Object.values(this.table('lead').rows)) if (lead.CONTACT_ID === cid) lead.CONTACT_ID = null;
    }
    this.state.timeline = this.state.timeline.filter((c) => !(c.ENTITY_TYPE === kind && c.ENTITY_ID === id));
    this.changed();
    this.notify({ kind: 'delete', entity: kind, id, actor: { ...actor } });
  }

  /** The legacy read shape: every standard field, every existing user field; multifields when non-empty. */
  private present(kind: EntityKind, row: Row, select?: string[]): Row {
    const ufNames = this.state.userFields[kind].map((u) => String(u.FIELD_NAME));
    let names: string[];
    if (!select || select.length === 0) {
      names = [...FIELDS[kind].map((s) => s.name), ...ufNames];
    } else {
      const set = new Set<string>(['ID']);
      for (const raw of select) {
        const s = String(raw).toUpperCase();
        if (s === '*') FIELDS[kind].filter((x) => x.type !== 'crm_multifield').forEach((x) => set.add(x.name));
        else if (s === 'UF_*') ufNames.forEach((n) => set.add(n));
        else if (FIELD_MAP[kind].has(s) || ufNames.includes(s)) set.add(s);
      }
      names = [...set];
    }
    const out: Row = {};
    for (const n of names) {
      const v = row[n];
      if (FIELD_MAP[kind].get(n)?.type === 'crm_multifield') {
        if (Array.isArray(v) && v.length) out[n] = structuredClone(v);
        continue;
      }
      out[n] = v === undefined ? null : v !== null && typeof v === 'object' ? structuredClone(v) : v;
    }
    return out;
  }

  getEntity(kind: EntityKind, id: number): Row | null {
    const row = this.table(kind).rows[String(id)];
    return row ? this.present(kind, row) : null;
  }

  /** The deal's contacts in order (first = primary). */
  dealContactIds(id: number): number[] {
    const row = this.table('deal').rows[String(id)];
    if (!row) throw new PortalError('', 'Not found');
    return ((row.CONTACT_IDS as string[] | undefined) ?? []).map(Number);
  }

  /**
   * Lists rows. `select` absent: full rows (standard fields incl. multifields + user fields);
   * `*` = standard fields without multifields, `UF_*` = every user field, names add fields.
   */
  listEntities(kind: EntityKind, query: ListQuery): ListPage {
    const filter = query.filter ?? {};
    if (typeof filter !== 'object' || Array.isArray(filter)) throw new PortalError('', "Parameter 'filter' must be array.");
    const start = Number(query.start ?? 0);
    if (start === -1 && byIdAscending(query.order)) {
      // The `>ID` walk of big lists (reference §3.3), as an indexed database answers it: stop at
      // the 50th match instead of filtering and sorting the whole table for every page.
      const after = isNumeric(filter['>ID']) ? Number(filter['>ID']) : -Infinity;
      const ids = this.sortedIds(kind);
      const table = this.table(kind).rows;
      const rows: Row[] = [];
      for (let i = firstAbove(ids, after); i < ids.length && rows.length < PAGE; i++) {
        const r = table[String(ids[i])]!;
        if (matchesFilter(r, filter)) rows.push(r);
      }
      return { rows: rows.map((r) => this.present(kind, r, query.select)), total: 0 };
    }
    const all = Object.values(this.table(kind).rows).filter((r) => matchesFilter(r, filter));
    sortRows(all, query.order);
    if (start === -1) return { rows: all.slice(0, PAGE).map((r) => this.present(kind, r, query.select)), total: 0 };
    const from = Number.isFinite(start) && start > 0 ? Math.floor(start) : 0;
    const page: ListPage = { rows: all.slice(from, from + PAGE).map((r) => this.present(kind, r, query.select)), total: all.length };
    if (from + PAGE < all.length) page.next = from + PAGE;
    return page;
  }

  convertLead(leadId: number, actor: Actor, opts: { withDeal?: boolean } = {}): { contactId: number; dealId: number | null } {
    const lead = this.table('lead').rows[String(leadId)];
    if (!lead) throw new PortalError('', 'Not found');
    if (lead.STATUS_SEMANTIC_ID === 'S') throw new PortalError('', 'The lead is already converted.');
    const strip = (v: unknown): Row[] => ((v as MultifieldValue[] | undefined) ?? []).map((m) => ({ VALUE: m.VALUE, VALUE_TYPE: m.VALUE_TYPE }));
    const sameNamedUfs = (target: EntityKind): Row => {
      const out: Row = {};
      const names = new Set(this.state.userFields[target].map((u) => String(u.FIELD_NAME)));
      for (const uf of this.state.userFields.lead) {
        const name = String(uf.FIELD_NAME);
        const v = lead[name];
        if (names.has(name) && v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0)) out[name] = structuredClone(v);
      }
      return out;
    };
    const contactId = this.addEntity(
      'contact',
      {
        NAME: lead.NAME,
        LAST_NAME: lead.LAST_NAME,
        SECOND_NAME: lead.SECOND_NAME,
        PHONE: strip(lead.PHONE),
        EMAIL: strip(lead.EMAIL),
        LEAD_ID: leadId,
        ASSIGNED_BY_ID: lead.ASSIGNED_BY_ID,
        SOURCE_ID: lead.SOURCE_ID,
        ...sameNamedUfs('contact'),
      },
      actor,
    );
    let dealId: number | null = null;
    if (opts.withDeal) {
      dealId = this.addEntity(
        'deal',
        {
          TITLE: lead.TITLE,
          LEAD_ID: leadId,
          CONTACT_ID: contactId,
          OPPORTUNITY: lead.OPPORTUNITY,
          CURRENCY_ID: lead.CURRENCY_ID,
          ASSIGNED_BY_ID: lead.ASSIGNED_BY_ID,
          SOURCE_ID: lead.SOURCE_ID,
          ...sameNamedUfs('deal'),
        },
        actor,
      );
    }
    this.updateEntity('lead', leadId, { STATUS_ID: 'CONVERTED', CONTACT_ID: contactId }, actor);
    return { contactId, dealId };
  }

  // -------------------------------------------------------------------------------------------
  // User fields
  // -------------------------------------------------------------------------------------------

  userFields(kind: EntityKind): Row[] {
    return this.state.userFields[kind].map((u) => structuredClone(u));
  }

  userField(kind: EntityKind, id: number): Row | null {
    const u = this.state.userFields[kind].find((x) => Number(x.ID) === id);
    return u ? structuredClone(u) : null;
  }

  private labels(fields: Row, key: string, fallback: string): Record<string, string> {
    const given = fields[key];
    const out: Record<string, string> = {};
    for (const lang of LANGS) {
      if (given && typeof given === 'object') {
        const v = (given as Row)[lang];
        out[lang] = v === undefined || v === null ? fallback : String(v);
      } else out[lang] = given === undefined || given === null ? fallback : String(given);
    }
    return out;
  }

  private enumList(list: unknown, existing: Row[]): Row[] {
    const items = Array.isArray(list) ? list : list && typeof list === 'object' ? Object.values(list) : [];
    const out = existing.map((x) => ({ ...x }));
    for (const raw of items) {
      if (!raw || typeof raw !== 'object') continue;
      const item = raw as Row;
      const id = item.ID !== undefined ? String(item.ID) : null;
      const i = id ? out.findIndex((x) => x.ID === id) : -1;
      if (i >= 0) {
        if (item.DEL === 'Y') {
          out.splice(i, 1);
          continue;
        }
        const cur = out[i]!;
        if (item.VALUE !== undefined) cur.VALUE = String(item.VALUE);
        if (item.SORT !== undefined) cur.SORT = String(item.SORT);
        if (item.DEF !== undefined) cur.DEF = YN(item.DEF, 'N');
        if (item.XML_ID !== undefined) cur.XML_ID = String(item.XML_ID);
        continue;
      }
      if (item.VALUE === undefined || item.VALUE === '') continue;
      const xml = item.XML_ID !== undefined ? String(item.XML_ID) : hex(16);
      if (out.some((x) => x.XML_ID === xml)) throw new PortalError('ERROR_CORE', `Duplicate XML_ID '${xml}' in the LIST.`);
      const newId = String(this.state.nextEnumId++);
      out.push({ ID: newId, SORT: String(item.SORT ?? 500), VALUE: String(item.VALUE), DEF: YN(item.DEF, 'N'), XML_ID: xml });
    }
    return out;
  }

  /** crm.<entity>.userfield.add: the new field's id. */
  addUserField(kind: EntityKind, fields: Row): number {
    if (!fields || typeof fields !== 'object') throw new PortalError('', "The 'FIELD_NAME' field is not found.");
    const name = normalizeUfName(fields.FIELD_NAME);
    const type = fields.USER_TYPE_ID === undefined || fields.USER_TYPE_ID === null ? '' : String(fields.USER_TYPE_ID).trim();
    if (!type) throw new PortalError('', "The 'USER_TYPE_ID' field is not found.");
    if (!UF_TYPES.has(type)) throw new PortalError('ERROR_CORE', `The user field type '${type}' is not registered.`);
    if (this.state.userFields[kind].some((u) => u.FIELD_NAME === name)) {
      throw new PortalError('ERROR_CORE', `A field with the name '${name}' already exists.`);
    }
    const label = fields.LABEL !== undefined && fields.LABEL !== null ? String(fields.LABEL) : name;
    const id = this.state.nextUserFieldId++;
    const multiple = type === 'boolean' ? 'N' : YN(fields.MULTIPLE, 'N');
    const settings = fields.SETTINGS && typeof fields.SETTINGS === 'object' && !Array.isArray(fields.SETTINGS) ? structuredClone(fields.SETTINGS as Row) : {};
    if (type === 'crm' && Object.keys(settings).length === 0) Object.assign(settings, { LEAD: 'Y', CONTACT: 'Y', COMPANY: 'Y', DEAL: 'N' });
    const showFilter = fields.SHOW_FILTER === undefined ? 'N' : ['I', 'E', 'S'].includes(String(fields.SHOW_FILTER)) ? String(fields.SHOW_FILTER) : YN(fields.SHOW_FILTER, 'N') === 'Y' ? 'E' : 'N';
    const descriptor: Row = {
      ID: String(id),
      ENTITY_ID: UF_ENTITY_ID[kind],
      FIELD_NAME: name,
      USER_TYPE_ID: type,
      XML_ID: fields.XML_ID === undefined || fields.XML_ID === null || fields.XML_ID === '' ? null : String(fields.XML_ID),
      SORT: String(fields.SORT ?? 100),
      MULTIPLE: multiple,
      MANDATORY: YN(fields.MANDATORY, 'N'),
      SHOW_FILTER: showFilter,
      SHOW_IN_LIST: YN(fields.SHOW_IN_LIST, 'Y'),
      EDIT_IN_LIST: YN(fields.EDIT_IN_LIST, 'Y'),
      IS_SEARCHABLE: YN(fields.IS_SEARCHABLE, 'N'),
      SETTINGS: settings,
    };
    for (const key of LABEL_KEYS) descriptor[key] = this.labels(fields, key, key === 'ERROR_MESSAGE' || key === 'HELP_MESSAGE' ? '' : label);
    if (type === 'enumeration') descriptor.LIST = this.enumList(fields.LIST, []);
    this.state.userFields[kind].push(descriptor);
    this.changed();
    return id;
  }

  updateUserField(kind: EntityKind, id: number, fields: Row): void {
    const u = this.state.userFields[kind].find((x) => Number(x.ID) === id);
    if (!u) throw new PortalError('ERROR_NOT_FOUND', 'The user field is not found.');
    if (!fields || typeof fields !== 'object') throw new PortalError('', 'Invalid fields.');
    for (const [k, v] of Object.entries(fields)) {
      if (['MANDATORY', 'SHOW_IN_LIST', 'EDIT_IN_LIST', 'IS_SEARCHABLE'].includes(k)) u[k] = YN(v, 'N');
      else if (k === 'SHOW_FILTER') u[k] = ['I', 'E', 'S'].includes(String(v)) ? String(v) : YN(v, 'N') === 'Y' ? 'E' : 'N';
      else if (k === 'XML_ID') u[k] = v === null || v === '' ? null : String(v);
      else if (k === 'SORT') u[k] = String(v);
      else if (k === 'SETTINGS' && v && typeof v === 'object') u[k] = { ...((u.SETTINGS as Row) ?? {}), ...(v as Row) };
      else if (k === 'LIST' && u.USER_TYPE_ID === 'enumeration') u.LIST = this.enumList(v, (u.LIST as Row[]) ?? []);
      else if ((LABEL_KEYS as readonly string[]).includes(k)) {
        // A language map changes the given languages; a string changes every language.
        u[k] = v && typeof v === 'object' ? { ...((u[k] as Row) ?? {}), ...(v as Row) } : this.labels(fields, k, '');
      } else if (k === 'LABEL') for (const key of LABEL_KEYS.slice(0, 3)) u[key] = this.labels(fields, 'LABEL', String(v));
      // FIELD_NAME, USER_TYPE_ID, MULTIPLE, ENTITY_ID cannot change.
    }
    this.changed();
  }

  deleteUserField(kind: EntityKind, id: number): void {
    const list = this.state.userFields[kind];
    const i = list.findIndex((x) => Number(x.ID) === id);
    if (i < 0) throw new PortalError('ERROR_NOT_FOUND', 'The user field is not found.');
    const name = String(list[i]!.FIELD_NAME);
    list.splice(i, 1);
    for (const row of Object.values(this.table(kind).rows)) delete row[name];
    this.changed();
  }

  // -------------------------------------------------------------------------------------------
  // Events, placements, robots
  // -------------------------------------------------------------------------------------------

  eventBindings(): EventBinding[] {
    return this.state.eventBindings.map((b) => ({ ...b }));
  }

  bindEvent(b: EventBinding): void {
    if (this.state.eventBindings.some((x) => x.clientId === b.clientId && x.event === b.event && x.handler === b.handler)) {
      throw new PortalError('ERROR_CORE', 'Handler already binded');
    }
    this.state.eventBindings.push({ ...b });
    this.changed();
  }

  /** Removes the app's bindings matching the given event/handler (absent = any); the count. */
  unbindEvents(clientId: string, match: { event?: string; handler?: string }): number {
    const before = this.state.eventBindings.length;
    this.state.eventBindings = this.state.eventBindings.filter(
      (b) => !(b.clientId === clientId && (!match.event || b.event === match.event) && (!match.handler || b.handler === match.handler)),
    );
    this.changed();
    return before - this.state.eventBindings.length;
  }

  placements(): PlacementBinding[] {
    return this.state.placements.map((p) => ({ ...p, langAll: structuredClone(p.langAll) }));
  }

  bindPlacement(p: PlacementBinding): void {
    if (this.state.placements.some((x) => x.clientId === p.clientId && x.placement === p.placement && x.handler === p.handler)) {
      throw new PortalError('ERROR_PLACEMENT_HANDLER_EXISTS', 'Handler already binded');
    }
    this.state.placements.push({ ...p });
    this.changed();
  }

  unbindPlacements(clientId: string, match: { placement: string; handler?: string; userId?: number }): number {
    const before = this.state.placements.length;
    this.state.placements = this.state.placements.filter(
      (p) =>
        !(
          p.clientId === clientId &&
          p.placement === match.placement &&
          (!match.handler || p.handler === match.handler) &&
          (match.userId === undefined || p.userId === match.userId)
        ),
    );
    this.changed();
    return before - this.state.placements.length;
  }

  robots(): RobotRegistration[] {
    return this.state.robots.map((r) => structuredClone(r));
  }

  robot(clientId: string, code: string): RobotRegistration | null {
    const r = this.state.robots.find((x) => x.clientId === clientId && x.code === code);
    return r ? structuredClone(r) : null;
  }

  addRobot(r: RobotRegistration): void {
    if (this.state.robots.some((x) => x.clientId === r.clientId && x.code === r.code)) {
      throw new PortalError('ERROR_ACTIVITY_ALREADY_INSTALLED', 'Activity or Automation rule already installed!');
    }
    this.state.robots.push(structuredClone(r));
    this.changed();
  }

  updateRobot(clientId: string, code: string, patch: Partial<RobotRegistration>): void {
    const r = this.state.robots.find((x) => x.clientId === clientId && x.code === code);
    if (!r) throw new PortalError('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!');
    Object.assign(r, structuredClone(patch), { clientId, code });
    this.changed();
  }

  deleteRobot(clientId: string, code: string): void {
    const i = this.state.robots.findIndex((x) => x.clientId === clientId && x.code === code);
    if (i < 0) throw new PortalError('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!');
    this.state.robots.splice(i, 1);
    this.state.stageRobots = this.state.stageRobots.filter((s) => !(s.clientId === clientId && s.code === code));
    this.changed();
  }

  stageRobots(): StageRobot[] {
    return this.state.stageRobots.map((r) => structuredClone(r));
  }

  addStageRobot(r: Omit<StageRobot, 'id'>): StageRobot {
    const created: StageRobot = { ...structuredClone(r), id: this.state.nextStageRobotId++ };
    this.state.stageRobots.push(created);
    this.changed();
    return structuredClone(created);
  }

  removeStageRobot(id: number): void {
    this.state.stageRobots = this.state.stageRobots.filter((r) => r.id !== id);
    this.changed();
  }

  robotRuns(): RobotRun[] {
    return this.state.robotRuns.map((r) => structuredClone(r));
  }

  startRobotRun(
    run: Pick<RobotRun, 'clientId' | 'code' | 'document'> & { subscribe: boolean; stageRobotId?: number; workflowId?: string; properties?: Row; skipped?: string },
  ): RobotRun {
    const now = this.now();
    // Bitrix24's tokens name the activity in their middle part (`…|A51601_82584_96831_81132|…`, reference §8.2).
    const activity = run.stageRobotId !== undefined ? activityName(run.stageRobotId) : `A${hex(3)}_${hex(3)}_${hex(3)}`;
    const finished = run.skipped !== undefined || !run.subscribe;
    const created: RobotRun = {
      id: this.state.nextRobotRunId++,
      workflowId: run.workflowId ?? `${hex(7)}.${String(Math.floor(now / 1000) % 100_000_000).padStart(8, '0')}`,
      eventToken: `${hex(7)}.${hex(4)}|${activity}|${hex(16)}`,
      clientId: run.clientId,
      code: run.code,
      document: { ...run.document },
      stageRobotId: run.stageRobotId ?? null,
      activity,
      properties: structuredClone(run.properties ?? {}),
      status: run.skipped !== undefined ? 'skipped' : run.subscribe ? 'waiting' : 'done',
      startedAt: now,
      finishedAt: finished ? now : null,
      returnValues: null,
      log: run.skipped !== undefined ? [run.skipped] : [],
    };
    this.state.robotRuns.push(created);
    this.changed();
    return structuredClone(created);
  }

  private waitingRun(eventToken: unknown): RobotRun {
    const run = this.state.robotRuns.find((r) => r.eventToken === eventToken && r.status === 'waiting');
    if (!run) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
    return run;
  }

  finishRobotRun(eventToken: string, returnValues: Row, logMessage?: string): RobotRun {
    const run = this.waitingRun(eventToken);
    run.status = 'done';
    run.finishedAt = this.now();
    run.returnValues = structuredClone(returnValues ?? {});
    run.log.push(logMessage ? String(logMessage) : 'Received response from the application');
    this.changed();
    return structuredClone(run);
  }

  logRobotRun(eventToken: string, message: string): void {
    const run = this.waitingRun(eventToken);
    run.log.push(String(message));
    this.changed();
  }

  // -------------------------------------------------------------------------------------------
  // Timeline, notifications, activities
  // -------------------------------------------------------------------------------------------

  timeline(entity: EntityKind, id: number): TimelineComment[] {
    return this.state.timeline.filter((c) => c.ENTITY_TYPE === entity && c.ENTITY_ID === id).map((c) => ({ ...c }));
  }

  addTimelineComment(entity: EntityKind, id: number, comment: string, authorId: number): number {
    if (!this.table(entity).rows[String(id)]) throw new PortalError('NOT_FOUND', 'Entity not found', 400);
    const c: TimelineComment = {
      ID: this.state.nextTimelineId++,
      ENTITY_TYPE: entity,
      ENTITY_ID: id,
      COMMENT: comment,
      AUTHOR_ID: authorId,
      CREATED: isoDateTime(this.now()),
    };
    this.state.timeline.push(c);
    this.changed();
    return c.ID;
  }

  notifications(userId?: number): Notification[] {
    return this.state.notifications.filter((n) => userId === undefined || n.USER_ID === userId).map((n) => ({ ...n }));
  }

  /** A notification; an existing TAG of the same app replaces the older ones. */
  addNotification(n: { userId: number; message: string; tag?: string | null; fromClientId?: string | null }): number {
    const tag = n.tag ? String(n.tag) : null;
    const from = n.fromClientId ?? null;
    if (tag) this.state.notifications = this.state.notifications.filter((x) => !(x.TAG === tag && x.FROM_CLIENT_ID === from));
    const created: Notification = {
      ID: this.state.nextNotificationId++,
      USER_ID: n.userId,
      MESSAGE: n.message,
      TAG: tag,
      FROM_CLIENT_ID: from,
      CREATED: isoDateTime(this.now()),
    };
    this.state.notifications.push(created);
    this.changed();
    return created.ID;
  }

  activities(): Activity[] {
    return this.state.activities.map((a) => ({ ...a }));
  }

  addActivity(a: Omit<Activity, 'id' | 'created'>): number {
    const created: Activity = { ...a, id: this.state.nextActivityId++, created: isoDateTime(this.now()) };
    this.state.activities.push(created);
    this.changed();
    return created.id;
  }
}

export function createPortal(opts: CreatePortalOptions): SandboxPortal {
  return new SandboxPortal(opts);
}

/** No order, or ID ascending only (the order rows are kept in). */
function byIdAscending(order: Record<string, string> | undefined): boolean {
  const keys = Object.entries(order ?? {});
  return keys.length === 0 || (keys.length === 1 && keys[0]![0].toUpperCase() === 'ID' && String(keys[0]![1]).toUpperCase() !== 'DESC');
}

/** Index of the first id above `after` in ascending `ids`. */
function firstAbove(ids: number[], after: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
