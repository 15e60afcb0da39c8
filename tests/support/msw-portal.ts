/**
 * A Bitrix24 portal and OAuth server played by msw for HTTP tests, speaking the wire format of
 * shared/bitrix24-reference.md: `POST /rest//<method>` with JSON bodies carrying `auth`,
 * `batch` with `cmd` query strings and `result_error`, legacy CRM errors with an empty code,
 * string values in legacy CRM reads, `401 expired_token`, refresh rotation at
 * `/oauth/token/`. Every REST request is recorded (batches with their inner commands) so
 * tests assert the exact calls. Anything else is refused by `onUnhandledRequest: 'error'`.
 */
import { http, HttpResponse, type HttpHandler } from 'msw';
import qs from 'qs';

export type Entity = 'deal' | 'contact' | 'lead';
type Row = Record<string, unknown>;

export interface RecordedCall {
  method: string;
  params: Row;
  /** For `batch`: the inner commands, parsed. */
  commands?: { key: string; method: string; params: Row }[];
  token: string | null;
}

export const CLIENT_ID = 'app.test.sarafan';
export const CLIENT_SECRET = 'test-client-secret-value';
export const OAUTH_URL = 'https://oauth.bitrix.info';

let tokenCounter = 0;
const newToken = (kind: string): string => `${kind}-${++tokenCounter}-${Math.random().toString(36).slice(2, 10)}`;

export class MswPortal {
  readonly domain: string;
  readonly memberId: string;
  applicationToken: string;
  accessToken = newToken('access');
  refreshToken = newToken('refresh');
  readonly entities: Record<Entity, Map<number, Row>> = { deal: new Map(), contact: new Map(), lead: new Map() };
  readonly userFields: Record<Entity, Row[]> = { deal: [], contact: [], lead: [] };
  events: { event: string; handler: string; auth_type: string; offline: number }[] = [];
  placements: { placement: string; handler: string; title: string; userId: number }[] = [];
  /** This app's robots by CODE, holding the parameters of their last add/update (reference §8.1). */
  readonly robots = new Map<string, Row>();
  /** Codes `bizproc.robot.list` does not show yet (another install's add landing after the read). */
  readonly unlistedRobots = new Set<string>();
  readonly calls: RecordedCall[] = [];
  /** `crm.timeline.comment.add` and `im.notify.system.add` as the portal recorded them. */
  readonly timeline: { entity: string; id: number; text: string }[] = [];
  readonly notifications: { userId: number; text: string; tag: string | null }[] = [];
  readonly oauthRequests: Row[] = [];
  /** Event tokens of robot calls whose workflow waits for `bizproc.event.send` (single-use, reference §8.3). */
  readonly waitingRobots = new Set<string>();
  /** `bizproc.event.send` and `bizproc.activity.log` as the portal took them. */
  readonly robotAnswers: { token: string; values: Row; log: string }[] = [];
  readonly robotLog: { token: string; message: string }[] = [];
  /** Whether the user the OAuth server issues tokens for (user 1) is a portal administrator. */
  installerIsAdmin = true;
  /** User access tokens the portal knows (for `profile`). */
  readonly users = new Map<string, { ID: string; ADMIN: boolean; NAME: string }>();
  private nextId = 1;
  /** What `server.time` answers with: the portal's zone (Moscow unless a test says otherwise). */
  utcOffset = '+03:00';
  /** `crm.currency.list`: RUB base, as a Russian portal ships. */
  currencies: Row[] = [
    { CURRENCY: 'RUB', AMOUNT_CNT: '1', AMOUNT: '1.0000', SORT: '100', BASE: 'Y' },
    { CURRENCY: 'USD', AMOUNT_CNT: '1', AMOUNT: '90.0000', SORT: '200', BASE: 'N' },
    { CURRENCY: 'EUR', AMOUNT_CNT: '1', AMOUNT: '100.0000', SORT: '300', BASE: 'N' },
  ];

  constructor(opts: { domain?: string; memberId?: string } = {}) {
    this.domain = opts.domain ?? 'acme.bitrix24.ru';
    this.memberId = opts.memberId ?? `member${Math.random().toString(16).slice(2, 14)}`;
    this.applicationToken = newToken('apptoken');
  }

  get clientEndpoint(): string {
    return `https://${this.domain}/rest/`;
  }

  /** Make the current access token expire: the next REST call gets 401 expired_token. */
  expireAccessToken(): void {
    this.expired.add(this.accessToken);
    this.accessToken = '(none until refreshed)';
  }
  private readonly expired = new Set<string>();

  /** The next `times` commands of `method` fail (inside a batch too) with a portal error. */
  failCommands(method: string, times: number): void {
    this.commandFaults.set(method, times);
  }
  private readonly commandFaults = new Map<string, number>();

  /**
   * The next `times` `batch` requests that write (any `*.update` command) answer 500: the portal is
   * down. With `after`, that many write batches succeed first.
   */
  failWriteBatches(times: number, after = 0): void {
    this.batchFaults = times;
    this.batchFaultsAfter = after;
  }
  private batchFaults = 0;
  private batchFaultsAfter = 0;

  add(entity: Entity, fields: Row): number {
    const id = this.nextId++;
    this.entities[entity].set(id, this.normalize(entity, { ...fields, ID: String(id) }));
    return id;
  }

  update(entity: Entity, id: number, fields: Row): void {
    const row = this.entities[entity].get(id);
    if (!row) throw new Error(`no ${entity} ${id}`);
    this.entities[entity].set(id, this.normalize(entity, { ...row, ...fields }));
  }

  get(entity: Entity, id: number): Row {
    const row = this.entities[entity].get(id);
    if (!row) throw new Error(`no ${entity} ${id}`);
    return row;
  }

  /** REST calls of a method (batches expanded to their inner commands). */
  commands(method?: string): { method: string; params: Row }[] {
    const all = this.calls.flatMap((c) => (c.method === 'batch' ? (c.commands ?? []) : [{ method: c.method, params: c.params }]));
    return method ? all.filter((c) => c.method === method) : all;
  }

  resetCalls(): void {
    this.calls.length = 0;
    this.oauthRequests.length = 0;
  }

  /** Legacy CRM values are strings; STAGE_SEMANTIC_ID is derived from the stage. */
  private normalize(entity: Entity, row: Row): Row {
    const out: Row = {};
    for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'number' ? String(v) : v;
    if (entity === 'deal') {
      const stage = String(out.STAGE_ID ?? 'NEW');
      out.STAGE_ID = stage;
      out.STAGE_SEMANTIC_ID = /(^|:)WON$/.test(stage) ? 'S' : /(^|:)(LOSE|APOLOGY)$/.test(stage) ? 'F' : 'P';
      out.CATEGORY_ID ??= '0';
      out.CURRENCY_ID ??= 'RUB';
      out.OPPORTUNITY = Number(out.OPPORTUNITY ?? 0).toFixed(2);
    }
    return out;
  }

  handlers(): HttpHandler[] {
    const base = `https://${this.domain}/rest`;
    return [
      http.post(`${OAUTH_URL}/oauth/token/`, async ({ request }) => this.oauth(qs.parse(await request.text()) as Row)),
      http.post(`${base}/:a/:b?`, async ({ request, params }) => {
        const method = String(params.b ?? params.a).replace(/\.json$/, '');
        const body = (await request.json().catch(() => ({}))) as Row;
        return this.rest(method, body);
      }),
      http.post(`${base}//:method`, async ({ request, params }) => {
        const body = (await request.json().catch(() => ({}))) as Row;
        return this.rest(String(params.method).replace(/\.json$/, ''), body);
      }),
    ];
  }

  private oauth(form: Row): Response {
    this.oauthRequests.push(form);
    if (form.client_id !== CLIENT_ID || form.client_secret !== CLIENT_SECRET) {
      return HttpResponse.json({ error: 'invalid_client', error_description: 'Invalid client' }, { status: 401 });
    }
    if (form.grant_type !== 'refresh_token' || form.refresh_token !== this.refreshToken) {
      return HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid grant' }, { status: 400 });
    }
    this.accessToken = newToken('access');
    this.refreshToken = newToken('refresh');
    this.users.set(this.accessToken, { ID: '1', ADMIN: this.installerIsAdmin, NAME: 'Установщик' });
    return HttpResponse.json({
      access_token: this.accessToken,
      refresh_token: this.refreshToken,
      expires: Math.floor(Date.now() / 1000) + 3600,
      expires_in: 3600,
      scope: 'crm,placement,bizproc,im,user_brief',
      domain: 'oauth.bitrix.info',
      server_endpoint: `${OAUTH_URL}/rest/`,
      client_endpoint: this.clientEndpoint,
      member_id: this.memberId,
      status: 'F',
      user_id: 1,
    });
  }

  private rest(method: string, body: Row): Response {
    const token = typeof body.auth === 'string' ? body.auth : null;
    const { auth: _auth, ...params } = body;
    const call: RecordedCall = { method, params, token };
    this.calls.push(call);
    if (method === 'profile') {
      const user = token ? this.users.get(token) : undefined;
      if (!user) return HttpResponse.json({ error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' }, { status: 401 });
      return this.ok(user);
    }
    if (token && this.expired.has(token)) {
      return HttpResponse.json({ error: 'expired_token', error_description: 'The access token provided has expired.' }, { status: 401 });
    }
    if (token !== this.accessToken) {
      return HttpResponse.json({ error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' }, { status: 401 });
    }
    const writes = method === 'batch' && Object.values((params.cmd ?? {}) as Record<string, string>).some((c) => /\.update\?/.test(String(c)));
    if (writes && this.batchFaults > 0 && this.batchFaultsAfter > 0) this.batchFaultsAfter--;
    else if (writes && this.batchFaults > 0) {
      this.batchFaults--;
      return HttpResponse.json({ error: 'INTERNAL_SERVER_ERROR', error_description: 'Internal server error' }, { status: 500 });
    }
    if (method === 'batch') return this.batch(call, params);
    const r = this.exec(method, params);
    return 'error' in r ? HttpResponse.json({ error: r.error, error_description: r.description }, { status: r.status }) : this.ok(r.result);
  }

  private ok(result: unknown): Response {
    const now = Date.now() / 1000;
    return HttpResponse.json({ result, time: { start: now, finish: now, duration: 0, processing: 0, operating: 0, operating_reset_at: now + 600 } });
  }

  private batch(call: RecordedCall, params: Row): Response {
    const cmd = (params.cmd ?? {}) as Record<string, string> | string[];
    const entries = Array.isArray(cmd) ? cmd.map((c, i) => [String(i), c] as const) : Object.entries(cmd);
    if (entries.length > 50) {
      return HttpResponse.json({ error: 'ERROR_BATCH_LENGTH_EXCEEDED', error_description: 'Max batch length exceeded' }, { status: 400 });
    }
    call.commands = [];
    const result: Row = {};
    const errors: Row = {};
    for (const [key, line] of entries) {
      const q = line.indexOf('?');
      const method = q < 0 ? line : line.slice(0, q);
      // PHP reads any number of list items; qs turns more than 20 into an object unless told (as the sandbox's batch does).
      const p = q < 0 ? {} : (qs.parse(line.slice(q + 1), { depth: 10, arrayLimit: 1000 }) as Row);
      call.commands.push({ key, method, params: p });
      resolveReferences(p, result);
      const r = this.exec(method, p);
      if ('error' in r) errors[key] = { error: r.error, error_description: r.description };
      else result[key] = r.result;
    }
    const asMap = (o: Row): Row | unknown[] => (Object.keys(o).length ? o : []);
    return this.ok({ result: asMap(result), result_error: asMap(errors), result_total: [], result_next: [], result_time: [] });
  }

  private exec(method: string, p: Row): { result: unknown } | { error: string; description: string; status: number } {
    const faults = this.commandFaults.get(method) ?? 0;
    if (faults > 0) {
      this.commandFaults.set(method, faults - 1);
      return { error: 'INTERNAL_SERVER_ERROR', description: 'Internal server error', status: 500 };
    }
    const m = /^crm\.(deal|contact|lead)\.(get|list|update|userfield\.list|userfield\.add|userfield\.update)$/.exec(method);
    if (m) {
      const entity = m[1] as Entity;
      const id = Number(p.id);
      switch (m[2]) {
        case 'get': {
          const row = this.entities[entity].get(id);
          return row ? { result: row } : { error: '', description: 'Not found', status: 400 };
        }
        case 'list': {
          // What Sarafan asks: rows by id (`@ID`), every field (`*` + `UF_*`), no COUNT.
          const filter = (p.filter ?? {}) as Row;
          const ids = filter['@ID'];
          if (Array.isArray(ids) && Object.keys(filter).length === 1) {
            const wanted = new Set(ids.map(Number));
            return { result: [...this.entities[entity].values()].filter((r) => wanted.has(Number(r.ID))) };
          }
          // The install's history walk: `>ID` paging, equality and "not empty" (`!FIELD: ''`).
          if (!('>ID' in filter) || Object.keys(filter).some((k) => k !== '>ID' && !/^!?[A-Z_]+$/.test(k))) {
            return { error: '', description: `unsupported filter ${JSON.stringify(filter)}`, status: 400 };
          }
          const after = Number(filter['>ID']);
          if (!Number.isFinite(after)) return { error: '', description: `unresolved >ID ${String(filter['>ID'])}`, status: 400 };
          const select = Array.isArray(p.select) ? (p.select as string[]) : null;
          const rows = [...this.entities[entity].values()]
            .filter((r) => Number(r.ID) > after)
            .filter((r) =>
              Object.entries(filter).every(([k, want]) =>
                k === '>ID' ? true : k.startsWith('!') ? ![null, undefined, ''].includes(r[k.slice(1)] as string) : String(r[k] ?? '') === String(want),
              ),
            )
            .sort((a, b) => Number(a.ID) - Number(b.ID))
            .slice(0, 50)
            .map((r) => (select ? Object.fromEntries(select.map((f) => [f, r[f] ?? null])) : r));
          return { result: rows };
        }
        case 'update': {
          const row = this.entities[entity].get(id);
          if (!row) return { error: '', description: 'Not found', status: 400 };
          this.update(entity, id, (p.fields ?? {}) as Row);
          return { result: true };
        }
        case 'userfield.list':
          return { result: this.userFields[entity] };
        case 'userfield.add': {
          const f = (p.fields ?? {}) as Row;
          if (this.userFields[entity].some((u) => u.FIELD_NAME === f.FIELD_NAME)) {
            return { error: 'ERROR_CORE', description: 'Field already exists', status: 400 };
          }
          const fid = String(this.nextId++);
          this.userFields[entity].push({ ID: fid, ENTITY_ID: `CRM_${entity.toUpperCase()}`, ...f });
          return { result: Number(fid) };
        }
        case 'userfield.update': {
          const f = this.userFields[entity].find((u) => String(u.ID) === String(p.id));
          if (!f) return { error: '', description: 'Not found', status: 400 };
          Object.assign(f, p.fields);
          return { result: true };
        }
      }
    }
    switch (method) {
      case 'server.time': {
        const sign = this.utcOffset.startsWith('-') ? -1 : 1;
        const [h, m] = this.utcOffset.slice(1).split(':').map(Number);
        const local = new Date(Date.now() + sign * (h! * 60 + m!) * 60_000);
        return { result: `${local.toISOString().slice(0, 19)}${this.utcOffset}` };
      }
      case 'crm.currency.list':
        return { result: this.currencies };
      case 'crm.timeline.comment.add': {
        // Only the lower-case `fields` key is accepted (reference §5.6).
        const f = (p.fields ?? null) as Row | null;
        const entity = String(f?.ENTITY_TYPE ?? '').toLowerCase();
        const id = Number(f?.ENTITY_ID);
        if (!f || !['deal', 'contact', 'lead'].includes(entity) || !this.entities[entity as Entity].has(id)) {
          return { error: 'NOT_FOUND', description: 'Not found', status: 400 };
        }
        if (!String(f.COMMENT ?? '').trim()) return { error: 'INVALID_ARG_VALUE', description: 'COMMENT is empty', status: 400 };
        this.timeline.push({ entity, id, text: String(f.COMMENT) });
        return { result: this.timeline.length };
      }
      case 'im.notify.system.add': {
        const userId = Number(p.USER_ID);
        if (!Number.isSafeInteger(userId) || userId <= 0) return { error: 'USER_ID_EMPTY', description: 'Recipient user not specified', status: 400 };
        if (!String(p.MESSAGE ?? '').trim()) return { error: 'MESSAGE_EMPTY', description: 'Message text is empty', status: 400 };
        this.notifications.push({ userId, text: String(p.MESSAGE), tag: p.TAG ? String(p.TAG) : null });
        return { result: this.notifications.length };
      }
      case 'bizproc.activity.log': {
        // Only while the robot waits: an unknown or answered token is refused like a forged one.
        const token = String(p.EVENT_TOKEN ?? '');
        if (!this.waitingRobots.has(token)) return { error: 'ACCESS_DENIED', description: 'Access denied', status: 403 };
        if (!String(p.LOG_MESSAGE ?? '').trim()) return { error: 'ERROR_ARGUMENT', description: 'LOG_MESSAGE is empty', status: 400 };
        this.robotLog.push({ token, message: String(p.LOG_MESSAGE) });
        return { result: true };
      }
      case 'bizproc.event.send': {
        const token = String(p.EVENT_TOKEN ?? '');
        if (!this.waitingRobots.delete(token)) return { error: 'ACCESS_DENIED', description: 'Access denied', status: 403 };
        this.robotAnswers.push({ token, values: (p.RETURN_VALUES ?? {}) as Row, log: String(p.LOG_MESSAGE ?? '') });
        return { result: true };
      }
      case 'event.get':
        return { result: this.events };
      case 'event.bind': {
        const event = String(p.event).toUpperCase();
        if (this.events.some((e) => e.event === event && e.handler === p.handler)) {
          return { error: 'ERROR_CORE', description: 'Handler already binded', status: 400 };
        }
        this.events.push({ event, handler: String(p.handler), auth_type: '0', offline: 0 });
        return { result: true };
      }
      case 'event.unbind': {
        const before = this.events.length;
        this.events = this.events.filter((e) => !(e.event === String(p.event).toUpperCase() && e.handler === p.handler));
        return { result: { count: before - this.events.length } };
      }
      case 'placement.get':
        return { result: this.placements };
      case 'placement.bind': {
        if (this.placements.some((e) => e.placement === p.PLACEMENT && e.handler === p.HANDLER)) {
          return { error: 'ERROR_PLACEMENT_HANDLER_EXISTS', description: 'Handler already binded', status: 400 };
        }
        this.placements.push({ placement: String(p.PLACEMENT), handler: String(p.HANDLER), title: String(p.TITLE ?? ''), userId: 0 });
        return { result: true };
      }
      case 'placement.unbind': {
        const before = this.placements.length;
        this.placements = this.placements.filter((e) => !(e.placement === p.PLACEMENT && (!p.HANDLER || e.handler === p.HANDLER)));
        return { result: { count: before - this.placements.length } };
      }
      case 'bizproc.robot.list':
        return { result: [...this.robots.keys()].filter((code) => !this.unlistedRobots.has(code)) };
      case 'bizproc.robot.add': {
        const code = String(p.CODE ?? '');
        if (!/^[a-zA-Z0-9._-]+$/.test(code)) return { error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', description: 'Wrong activity code!', status: 400 };
        if (!p.NAME) return { error: 'ERROR_ACTIVITY_VALIDATION_FAILURE', description: 'Empty activity NAME!', status: 400 };
        if (this.robots.has(code)) {
          return { error: 'ERROR_ACTIVITY_ALREADY_INSTALLED', description: 'Activity or Automation rule already installed!', status: 400 };
        }
        this.robots.set(code, p);
        return { result: true };
      }
      case 'bizproc.robot.update': {
        const code = String(p.CODE ?? '');
        const existing = this.robots.get(code);
        if (!existing) return { error: 'ERROR_ACTIVITY_NOT_FOUND', description: 'Activity or Robot not found!', status: 400 };
        this.robots.set(code, { ...existing, ...((p.FIELDS ?? {}) as Row), CODE: code });
        return { result: true };
      }
      case 'bizproc.robot.delete':
        if (!this.robots.delete(String(p.CODE ?? ''))) return { error: 'ERROR_ACTIVITY_NOT_FOUND', description: 'Activity or Robot not found!', status: 400 };
        return { result: true };
    }
    return { error: 'ERROR_METHOD_NOT_FOUND', description: `Method not found: ${method}`, status: 404 };
  }
}

/** `$result[key][n][FIELD]` references to earlier commands' results (reference §3.4); a missing row stays as text. */
function resolveReferences(params: Row, results: Row): void {
  for (const [k, v] of Object.entries(params)) {
    if (v && typeof v === 'object') resolveReferences(v as Row, results);
    else if (typeof v === 'string') {
      const m = /^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$/.exec(v);
      if (!m) continue;
      let at: unknown = results[m[1]!];
      for (const step of m[2]!.matchAll(/\[([^\]]*)\]/g)) at = at && typeof at === 'object' ? (at as Row)[step[1]!] : undefined;
      if (at !== undefined && at !== null) params[k] = at;
    }
  }
}
