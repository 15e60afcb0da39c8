/**
 * Non-CRM methods: identity (profile, user.current, app.info), server.time, app options, events,
 * placements, robots (bizproc.*) and notifications (im.notify.*).
 */
import { isoDateTime } from '../crm.js';
import { PortalError } from '../types.js';
import type { Row, RobotRegistration } from '../types.js';
import { asList, asRow, isObject, param, positiveId, yes, type CallContext, type MethodTable } from './registry.js';

const ENTITY_EVENTS = ['DEAL', 'LEAD', 'CONTACT', 'COMPANY', 'QUOTE'].flatMap((e) => [
  `ONCRM${e}ADD`,
  `ONCRM${e}UPDATE`,
  `ONCRM${e}DELETE`,
  `ONCRM${e}USERFIELDADD`,
  `ONCRM${e}USERFIELDUPDATE`,
  `ONCRM${e}USERFIELDDELETE`,
  `ONCRM${e}USERFIELDSETENUMVALUES`,
]);

export const KNOWN_EVENTS = new Set([
  ...ENTITY_EVENTS,
  'ONCRMDEALMOVETOCATEGORY',
  'ONCRMACTIVITYADD',
  'ONCRMACTIVITYUPDATE',
  'ONCRMACTIVITYDELETE',
  'ONCRMTIMELINECOMMENTADD',
  'ONCRMTIMELINECOMMENTUPDATE',
  'ONCRMTIMELINECOMMENTDELETE',
  'ONAPPINSTALL',
  'ONAPPUNINSTALL',
  'ONAPPUPDATE',
  'ONAPPTEST',
  'ONAPPPAYMENT',
  'ONOFFLINEEVENT',
  'ONUSERADD',
  'ONIMBOTMESSAGEADD',
]);

export const PLACEMENT_CODES = [
  'CRM_DEAL_DETAIL_TAB',
  'CRM_CONTACT_DETAIL_TAB',
  'CRM_LEAD_DETAIL_TAB',
  'CRM_COMPANY_DETAIL_TAB',
  'CRM_DEAL_LIST_MENU',
  'CRM_CONTACT_LIST_MENU',
  'CRM_LEAD_LIST_MENU',
  'LEFT_MENU',
];

const isHttpUrl = (v: unknown): boolean => {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};

const str = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function requireApp(ctx: CallContext): NonNullable<CallContext['app']> {
  if (!ctx.app) throw new PortalError('ACCESS_DENIED', 'Application context required', 400);
  return ctx.app;
}

// ---------------------------------------------------------------------------------------------
// Robots
// ---------------------------------------------------------------------------------------------

const fail = (text: string): PortalError => new PortalError('ERROR_ACTIVITY_VALIDATION_FAILURE', text);

function langText(v: unknown): string {
  if (isObject(v)) {
    const first = v.ru ?? v.en ?? Object.values(v)[0];
    return str(first);
  }
  return str(v);
}

function checkProperties(v: unknown): Row {
  if (v === undefined || v === null || v === '') return {};
  const props = asRow(v);
  if (!props) throw fail('Wrong properties array!');
  for (const [k, p] of Object.entries(props)) {
    if (!/^[a-zA-Z][a-zA-Z0-9_]*$/.test(k)) throw fail(`Wrong property key ${k}!`);
    if (!isObject(p) || p.Name === undefined || p.Name === null || p.Name === '') throw fail(`Empty property NAME ${k}!`);
  }
  return props;
}

function checkHandler(v: unknown, ctx: CallContext): string {
  if (v === undefined || v === null || v === '') throw new PortalError('ERROR_WRONG_HANDLER_URL', 'Wrong handler URL');
  const s = String(v);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new PortalError('ERROR_WRONG_HANDLER_URL', 'Wrong handler URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PortalError('ERROR_UNSUPPORTED_PROTOCOL', 'Unsupported handler protocol');
  const appUrl = ctx.app?.handlerUrl;
  if (appUrl) {
    try {
      if (new URL(appUrl).hostname !== url.hostname) {
        throw new PortalError('ERROR_WRONG_HANDLER_URL', 'Handler URL host must match the application host');
      }
    } catch (e) {
      if (e instanceof PortalError) throw e;
    }
  }
  return s;
}

function checkDocumentType(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const list = asList(v).map(str);
  if (list.length !== 3 || list.some((x) => x === '')) throw fail('Wrong activity DOCUMENT_TYPE!');
  return list;
}

type RobotFilter = NonNullable<RobotRegistration['filter']>;

function checkFilter(v: unknown): RobotFilter | null {
  if (v === undefined || v === null || v === '') return null;
  const f = asRow(v);
  if (!f || Object.keys(f).some((k) => k !== 'INCLUDE' && k !== 'EXCLUDE')) throw fail('Wrong activity FILTER!');
  const items = (list: unknown): (string | string[])[] => {
    if (list === undefined || list === null || list === '') return [];
    if (!isObject(list) && !Array.isArray(list)) throw fail('Wrong activity FILTER!');
    return asList(list).map((item) => {
      if (typeof item === 'string' && item) return item;
      const parts = isObject(item) || Array.isArray(item) ? asList(item).map(str) : [];
      if (!parts.length || parts.some((x) => !x)) throw fail('Wrong activity FILTER!');
      return parts;
    });
  };
  return { include: items(f.INCLUDE), exclude: items(f.EXCLUDE) };
}

/**
 * Whether a robot's FILTER offers it on this document (`DEAL` / `LEAD`): an edition string
 * matches when it is `b24` (the sandbox is a cloud portal); a document type matches as a prefix
 * of `['crm', 'CCrmDocument<Doc>', '<DOC>']`. No FILTER offers it everywhere.
 */
export function robotFilterOffers(filter: RobotRegistration['filter'], doc: 'DEAL' | 'LEAD'): boolean {
  if (!filter) return true;
  const type = ['crm', `CCrmDocument${doc.charAt(0)}${doc.slice(1).toLowerCase()}`, doc];
  const matches = (item: string | string[]): boolean =>
    typeof item === 'string' ? item.toLowerCase() === 'b24' : item.every((part, i) => part.toLowerCase() === type[i]?.toLowerCase());
  if (filter.exclude.some(matches)) return false;
  return !filter.include.length || filter.include.some(matches);
}

/** Robot methods need the app's `bizproc` permission (reference §8.1). */
function requireScope(app: NonNullable<CallContext['app']>, scope: string): void {
  const granted = app.scope.split(/[\s,]+/).filter(Boolean);
  if (!granted.includes(scope)) {
    throw new PortalError('insufficient_scope', 'The request requires higher privileges than provided by the access token', 403);
  }
}

function robotFields(src: Row, ctx: CallContext, partial: boolean): Partial<RobotRegistration> {
  const out: Partial<RobotRegistration> = {};
  const has = (k: string): boolean => src[k] !== undefined;
  if (!partial || has('HANDLER')) out.handler = checkHandler(src.HANDLER, ctx);
  if (!partial || has('NAME')) {
    const name = langText(src.NAME);
    if (!name) throw fail('Empty activity NAME!');
    out.name = name;
  }
  if (!partial || has('DESCRIPTION')) out.description = langText(src.DESCRIPTION);
  if (!partial || has('AUTH_USER_ID')) {
    const uid = Number(src.AUTH_USER_ID ?? ctx.userId) || ctx.userId;
    out.authUserId = ctx.portal.user(uid) ? uid : ctx.userId;
  }
  if (!partial || has('USE_SUBSCRIPTION')) out.useSubscription = str(src.USE_SUBSCRIPTION).toUpperCase() !== 'N';
  if (!partial || has('PROPERTIES')) out.properties = checkProperties(src.PROPERTIES);
  if (!partial || has('RETURN_PROPERTIES')) out.returnProperties = checkProperties(src.RETURN_PROPERTIES);
  if (!partial || has('DOCUMENT_TYPE')) out.documentType = checkDocumentType(src.DOCUMENT_TYPE);
  if (!partial || has('FILTER')) out.filter = checkFilter(src.FILTER);
  if (yes(src.USE_PLACEMENT) && !src.PLACEMENT_HANDLER) throw fail('Empty PLACEMENT_HANDLER!');
  return out;
}

function robotCode(params: Row): string {
  const code = param(params, 'CODE');
  if (code === undefined || code === null || code === '') throw fail('Empty activity code!');
  const s = String(code);
  if (!/^[a-zA-Z0-9._-]+$/.test(s)) throw fail('Wrong activity code!');
  return s;
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

function notify(params: Row, ctx: CallContext): number {
  const userId = positiveId(param(params, 'USER_ID', 'to'));
  if (!userId || !ctx.portal.user(userId)) throw new PortalError('USER_ID_EMPTY', 'Recipient user not specified');
  const message = str(param(params, 'MESSAGE', 'message')).trim();
  if (!message) throw new PortalError('MESSAGE_EMPTY', 'Message text is empty');
  const tag = param(params, 'TAG');
  return ctx.portal.addNotification({ userId, message, tag: tag ? str(tag) : null, fromClientId: ctx.clientId });
}

/** PLACEMENT of placement.bind / placement.unbind: required, and a code this portal offers. */
function placementArg(params: Row): string {
  const placement = str(param(params, 'PLACEMENT')).toUpperCase();
  if (!placement) throw new PortalError('ERROR_ARGUMENT', 'Argument "PLACEMENT" is null or empty', 400, 'PLACEMENT');
  if (!PLACEMENT_CODES.includes(placement)) throw new PortalError('ERROR_PLACEMENT_NOT_FOUND', 'Placement not found');
  return placement;
}

export const coreMethods: MethodTable = {
  profile: {
    handler: (_p, ctx) => ({
      ID: String(ctx.user.ID),
      ADMIN: ctx.user.ADMIN,
      NAME: ctx.user.NAME,
      LAST_NAME: ctx.user.LAST_NAME,
      PERSONAL_GENDER: '',
      PERSONAL_PHOTO: '',
      TIME_ZONE: '',
      TIME_ZONE_OFFSET: 10800,
    }),
  },
  'user.current': {
    handler: (_p, ctx) => ({
      ID: String(ctx.user.ID),
      XML_ID: null,
      ACTIVE: true,
      NAME: ctx.user.NAME,
      LAST_NAME: ctx.user.LAST_NAME,
      SECOND_NAME: '',
      EMAIL: ctx.user.EMAIL,
      LAST_LOGIN: null,
      DATE_REGISTER: '2024-01-01T00:00:00+03:00',
      IS_ONLINE: 'Y',
      TIME_ZONE: '',
      TIME_ZONE_OFFSET: '10800',
      PERSONAL_GENDER: '',
      WORK_POSITION: ctx.user.ADMIN ? 'Администратор' : 'Менеджер',
      UF_DEPARTMENT: [1],
      USER_TYPE: 'employee',
    }),
  },
  'user.get': {
    handler: (params, ctx) => {
      const filter = asRow(param(params, 'FILTER', 'filter')) ?? params;
      // FILTER[ID] is one id or a list of ids (the admin page names who saved each program version).
      const raw = filter.ID ?? filter.id;
      const ids = raw === undefined ? null : (Array.isArray(raw) ? raw : Object.values(asRow(raw) ?? { 0: raw })).map(positiveId);
      return ctx.portal
        .users()
        .filter((u) => ids === null || ids.includes(u.ID))
        .map((u) => ({ ID: String(u.ID), ACTIVE: true, NAME: u.NAME, LAST_NAME: u.LAST_NAME, EMAIL: u.EMAIL, UF_DEPARTMENT: [1] }));
    },
  },
  // The portal's server time, in its zone (the sandbox portal is in Moscow, +03:00).
  'server.time': { handler: (_p, ctx) => isoDateTime(ctx.now()) },
  'app.info': {
    handler: (_p, ctx) => {
      const app = requireApp(ctx);
      const index = ctx.portal.apps().findIndex((a) => a.clientId === app.clientId);
      return {
        ID: index + 1,
        CODE: app.code,
        VERSION: /^\d+$/.test(app.version) ? Number(app.version) : app.version,
        STATUS: 'L',
        INSTALLED: app.installed,
        PAYMENT_EXPIRED: 'N',
        DAYS: null,
        LANGUAGE_ID: 'ru',
        LICENSE: 'ru_project',
        LICENSE_TYPE: 'project',
        LICENSE_FAMILY: 'project',
      };
    },
  },
  'app.option.get': {
    handler: (params, ctx) => {
      requireApp(ctx);
      const options = ctx.portal.appOptions(ctx.clientId);
      const name = param(params, 'option');
      if (name !== undefined && name !== '') return options[String(name)] ?? null;
      return Object.keys(options).length ? options : [];
    },
  },
  'app.option.set': {
    handler: (params, ctx) => {
      requireApp(ctx);
      if (!ctx.user.ADMIN) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
      const options = asRow(param(params, 'options'));
      if (!options || Object.keys(options).length === 0) throw new PortalError('ArgumentNullException', 'Argument "options" is null or empty');
      ctx.portal.setAppOptions(ctx.clientId, options);
      return true;
    },
  },

  'event.bind': {
    admin: true,
    handler: (params, ctx) => {
      requireApp(ctx);
      const event = str(param(params, 'event', 'EVENT')).toUpperCase();
      if (!KNOWN_EVENTS.has(event)) throw new PortalError('ERROR_EVENT_NOT_FOUND', 'Event not found');
      const offline = str(param(params, 'event_type', 'EVENT_TYPE')).toLowerCase() === 'offline';
      const handler = offline ? '' : str(param(params, 'handler', 'HANDLER'));
      if (!offline && !isHttpUrl(handler)) throw new PortalError('WRONG_HANDLER_URL', 'Wrong handler URL');
      const authType = Number(param(params, 'auth_type', 'AUTH_TYPE') ?? 0) || 0;
      ctx.portal.bindEvent({ clientId: ctx.clientId, event, handler, authType, offline: offline ? 1 : 0 });
      return true;
    },
  },
  'event.unbind': {
    handler: (params, ctx) => {
      requireApp(ctx);
      const event = str(param(params, 'event', 'EVENT')).toUpperCase();
      const handler = str(param(params, 'handler', 'HANDLER'));
      const match: { event?: string; handler?: string } = {};
      if (event) match.event = event;
      if (handler) match.handler = handler;
      return { count: ctx.portal.unbindEvents(ctx.clientId, match) };
    },
  },
  'event.get': {
    handler: (_p, ctx) => {
      requireApp(ctx);
      return ctx.portal
        .eventBindings()
        .filter((b) => b.clientId === ctx.clientId)
        .map((b) => ({ event: b.event, handler: b.handler, auth_type: String(b.authType), offline: b.offline }));
    },
  },
  events: { handler: () => [...KNOWN_EVENTS] },

  'placement.bind': {
    admin: true,
    handler: (params, ctx) => {
      requireApp(ctx);
      const placement = placementArg(params);
      const handler = str(param(params, 'HANDLER'));
      if (!handler) throw new PortalError('ERROR_ARGUMENT', 'Argument "HANDLER" is null or empty', 400, 'HANDLER');
      if (!isHttpUrl(handler)) throw new PortalError('ERROR_ARGUMENT', 'Wrong handler URL', 400, 'HANDLER');
      const langAll = asRow(param(params, 'LANG_ALL')) ?? {};
      const userId = Number(param(params, 'USER_ID') ?? 0) || 0;
      ctx.portal.bindPlacement({
        clientId: ctx.clientId,
        placement,
        handler,
        title: str(param(params, 'TITLE')),
        description: str(param(params, 'DESCRIPTION')),
        langAll,
        userId,
      });
      return true;
    },
  },
  'placement.unbind': {
    admin: true,
    handler: (params, ctx) => {
      requireApp(ctx);
      const placement = placementArg(params);
      const handler = str(param(params, 'HANDLER'));
      const userIdRaw = param(params, 'USER_ID');
      const match: { placement: string; handler?: string; userId?: number } = { placement };
      if (handler) match.handler = handler;
      if (userIdRaw !== undefined && userIdRaw !== '') match.userId = Number(userIdRaw) || 0;
      return { count: ctx.portal.unbindPlacements(ctx.clientId, match) };
    },
  },
  'placement.get': {
    handler: (_p, ctx) => {
      requireApp(ctx);
      return ctx.portal
        .placements()
        .filter((p) => p.clientId === ctx.clientId)
        .map((p) => ({
          placement: p.placement,
          userId: p.userId,
          handler: p.handler,
          options: [],
          title: p.title,
          description: p.description,
          langAll: Object.keys(p.langAll).length ? p.langAll : [],
        }));
    },
  },
  'placement.list': { handler: () => [...PLACEMENT_CODES] },

  'bizproc.robot.add': {
    admin: true,
    handler: (params, ctx) => {
      const app = requireApp(ctx);
      requireScope(app, 'bizproc');
      if (Object.keys(params).length === 0) throw fail('Empty data!');
      const code = robotCode(params);
      const fields = robotFields(params, ctx, false);
      ctx.portal.addRobot({ ...(fields as Omit<RobotRegistration, 'clientId' | 'code'>), clientId: app.clientId, code });
      return true;
    },
  },
  'bizproc.robot.update': {
    admin: true,
    handler: (params, ctx) => {
      const app = requireApp(ctx);
      requireScope(app, 'bizproc');
      const code = robotCode(params);
      const fields = asRow(param(params, 'FIELDS'));
      if (!fields || Object.keys(fields).length === 0) throw fail('No fields to update.');
      if (!ctx.portal.robot(app.clientId, code)) throw new PortalError('ERROR_ACTIVITY_NOT_FOUND', 'Activity or Robot not found!');
      ctx.portal.updateRobot(app.clientId, code, robotFields(fields, ctx, true));
      return true;
    },
  },
  'bizproc.robot.delete': {
    admin: true,
    handler: (params, ctx) => {
      const app = requireApp(ctx);
      requireScope(app, 'bizproc');
      ctx.portal.deleteRobot(app.clientId, robotCode(params));
      return true;
    },
  },
  'bizproc.robot.list': {
    admin: true,
    handler: (_p, ctx) => {
      const app = requireApp(ctx);
      requireScope(app, 'bizproc');
      return ctx.portal
        .robots()
        .filter((r) => r.clientId === app.clientId)
        .map((r) => r.code);
    },
  },
  'bizproc.event.send': {
    handler: (params, ctx) => {
      const token = param(params, 'EVENT_TOKEN', 'event_token');
      if (typeof token !== 'string' || !token) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
      const run = ctx.portal.robotRuns().find((r) => r.eventToken === token);
      if (run && run.clientId !== ctx.clientId) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
      const values = asRow(param(params, 'RETURN_VALUES', 'return_values')) ?? {};
      const log = param(params, 'LOG_MESSAGE', 'log_message');
      ctx.portal.finishRobotRun(token, values, log === undefined || log === null || log === '' ? undefined : str(log));
      return true;
    },
  },
  'bizproc.activity.log': {
    handler: (params, ctx) => {
      const token = param(params, 'EVENT_TOKEN', 'event_token');
      if (typeof token !== 'string' || !token) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
      const message = str(param(params, 'LOG_MESSAGE', 'log_message'));
      if (!message) throw new PortalError('ERROR_ARGUMENT', 'Empty LOG_MESSAGE', 400, 'LOG_MESSAGE');
      ctx.portal.logRobotRun(token, message);
      return true;
    },
  },

  'im.notify.system.add': { handler: notify },
  'im.notify.personal.add': { handler: notify },
  'im.notify': { handler: notify },
};
