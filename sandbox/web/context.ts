/**
 * What every page of the web CRM needs: the current user (cookie `sandbox_user`), flash messages
 * carried through the redirect of a POST, and the page shell bound to the request.
 */
import type { Request, Response } from 'express';
import { PortalError } from '../types.js';
import type { Actor, EntityKind, Portal, Row, SandboxUser } from '../types.js';
import { page, raw, type Flash, type Html, type ShellOptions } from './html.js';

export interface WebHooks {
  /** The app frame called installFinish (setInstallFinish): mark installed, deliver ONAPPINSTALL. */
  installFinished(clientId: string): Promise<void>;
  /** The admin uninstalled the app from the Applications page. */
  uninstall(clientId: string, clean: boolean): Promise<void>;
}

/** A link inside a guide step; plain strings are text. */
export type GuidePart = string | { text: string; href: string };

/**
 * What a portal's admin would set up in Bitrix24's own UI for the people using it: the user
 * fields shown as list columns (the grid's column settings) and a guide on the home page.
 */
export interface WebSettings {
  /** User fields (by FIELD_NAME) shown as list columns, in this order, when the portal has them. */
  listColumns?: Partial<Record<EntityKind, string[]>>;
  guide?: { title: string; steps: GuidePart[][] };
  /**
   * Delegate the clipboard to app frames (`allow="… clipboard-read *; clipboard-write *"`).
   * Off by default: Bitrix24's app layout does not delegate it (see BITRIX24_FRAME_ALLOW).
   */
  clipboardDelegation?: boolean;
}

export const USER_COOKIE = 'sandbox_user';
/** The interface language of the person at the browser (Bitrix24: the user's LANGUAGE_ID), sent to apps as LANG. */
export const LANG_COOKIE = 'sandbox_lang';
export const UI_LANGS = ['ru', 'en'] as const;
export type UiLang = (typeof UI_LANGS)[number];

/** Options a frame reads in its init data: the app's are the portal's (app.option.*), a user's live here. */
export class FrameOptions {
  readonly #user = new Map<string, Record<string, unknown>>();

  constructor(private readonly portal: Portal) {}

  app(clientId: string): Record<string, unknown> {
    return this.portal.appOptions(clientId);
  }
  user(clientId: string, userId: number): Record<string, unknown> {
    return { ...(this.#user.get(`${clientId}\n${userId}`) ?? {}) };
  }
  set(scope: 'app' | 'user', clientId: string, userId: number, name: string, value: unknown): void {
    if (scope === 'app') return this.portal.setAppOptions(clientId, { [name]: value });
    const key = `${clientId}\n${userId}`;
    this.#user.set(key, { ...(this.#user.get(key) ?? {}), [name]: value });
  }
}

export interface WebContext {
  portal: Portal;
  hooks: WebHooks;
  settings: WebSettings;
  options: FrameOptions;
}

function cookies(req: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    try {
      out.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      out.set(name, part.slice(eq + 1).trim());
    }
  }
  return out;
}

/** The user of the cookie; user 1 (the admin) by default or when the cookie names nobody. */
export function currentUser(req: Request, portal: Portal): SandboxUser {
  const id = Number(cookies(req).get(USER_COOKIE));
  const chosen = Number.isSafeInteger(id) && id > 0 ? portal.user(id) : null;
  if (chosen) return chosen;
  const fallback = portal.user(1) ?? portal.users()[0];
  if (!fallback) throw new Error('The sandbox portal has no users');
  return fallback;
}

/** The language of the cookie; Russian by default, as the sandbox portal speaks. */
export function currentLang(req: Request): UiLang {
  const lang = cookies(req).get(LANG_COOKIE);
  return lang === 'en' ? 'en' : 'ru';
}

export function actorOf(user: SandboxUser): Actor {
  return { userId: user.ID };
}

/** Messages shown after a redirect: `?done=<code>`. */
const DONE: Record<string, string> = {
  created: 'Создано',
  saved: 'Сохранено',
  unchanged: 'Изменений нет',
  moved: 'Стадия изменена',
  deleted: 'Удалено',
  converted: 'Лид сконвертирован: создан контакт и сделка',
  uninstalled: 'Приложение удалено',
  'robot-added': 'Робот добавлен',
  'robot-removed': 'Робот удалён',
  user: 'Пользователь переключён',
};

export function flashOf(req: Request): Flash | null {
  const done = typeof req.query.done === 'string' ? req.query.done : '';
  const text = DONE[done];
  return text ? { kind: 'ok', text } : null;
}

export function send(
  ctx: WebContext,
  req: Request,
  res: Response,
  o: Omit<ShellOptions, 'user' | 'users' | 'path' | 'origin' | 'unread' | 'flash' | 'bare' | 'lang'> & { flash?: Flash | null; status?: number },
): void {
  const user = currentUser(req, ctx.portal);
  // A page opened in a slider (openPath adds IFRAME=Y, as Bitrix24's slider does) comes without the portal's chrome.
  const bare = req.query.IFRAME === 'Y';
  const flash = o.flash === undefined ? flashOf(req) : o.flash;
  res
    .status(o.status ?? 200)
    .type('html')
    .set('Cache-Control', 'no-store')
    .send(
      page({
        ...o,
        flash,
        bare,
        user,
        lang: currentLang(req),
        users: ctx.portal.users(),
        path: req.originalUrl,
        origin: ctx.portal.origin,
        unread: ctx.portal.notifications(user.ID).length,
      }),
    );
}

export function notFoundPage(ctx: WebContext, req: Request, res: Response, what: string, body?: Html): void {
  send(ctx, req, res, {
    status: 404,
    title: 'Не найдено',
    section: 'home',
    flash: { kind: 'error', text: what },
    body: body ?? raw('<div class="card"><a href="/">На главную</a></div>'),
  });
}

/** The message of a refused portal operation, for a page. */
export function describeError(err: unknown): string {
  if (err instanceof PortalError) {
    const where = err.argument ? ` (поле ${err.argument})` : '';
    return `${err.description || err.code}${where}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Text of a string form field (the last one when repeated, as a hidden+checkbox pair is). */
export function formText(body: unknown, name: string): string {
  if (!body || typeof body !== 'object') return '';
  const value = (body as Record<string, unknown>)[name];
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof last === 'string' ? last : '';
}

export function formHas(body: unknown, name: string): boolean {
  return !!body && typeof body === 'object' && name in (body as Record<string, unknown>);
}

export const KIND_TEXT: Record<EntityKind, { many: string; one: string; newOne: string; placement: string; typeName: string }> = {
  contact: { many: 'Контакты', one: 'Контакт', newOne: 'Новый контакт', placement: 'CRM_CONTACT_DETAIL_TAB', typeName: 'CONTACT' },
  lead: { many: 'Лиды', one: 'Лид', newOne: 'Новый лид', placement: 'CRM_LEAD_DETAIL_TAB', typeName: 'LEAD' },
  deal: { many: 'Сделки', one: 'Сделка', newOne: 'Новая сделка', placement: 'CRM_DEAL_DETAIL_TAB', typeName: 'DEAL' },
};

export function isKind(value: unknown): value is EntityKind {
  return value === 'contact' || value === 'lead' || value === 'deal';
}

/** How an entity is called in lists and links. */
export function entityName(kind: EntityKind, row: Row | null | undefined): string {
  if (!row) return '';
  const id = String(row.ID ?? '');
  if (kind === 'contact') {
    const name = [row.NAME, row.LAST_NAME].map((v) => (typeof v === 'string' ? v : '')).join(' ').trim();
    return name || `Контакт #${id}`;
  }
  const title = typeof row.TITLE === 'string' ? row.TITLE.trim() : '';
  if (title) return title;
  const name = [row.NAME, row.LAST_NAME].map((v) => (typeof v === 'string' ? v : '')).join(' ').trim();
  return name || `${kind === 'lead' ? 'Лид' : 'Сделка'} #${id}`;
}

/** Every row of a kind, page by page (the sandbox holds few), newest first. */
export function allEntities(portal: Portal, kind: EntityKind, select: string[], cap = 2000): Row[] {
  const rows: Row[] = [];
  let start = 0;
  for (;;) {
    const pageRows = portal.listEntities(kind, { order: { ID: 'DESC' }, select, start });
    rows.push(...pageRows.rows);
    if (pageRows.next === undefined || pageRows.rows.length === 0 || rows.length >= cap) break;
    start = pageRows.next;
  }
  return rows;
}

/** A label in Russian from a string or a language map. */
export function langText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const map = value as Record<string, unknown>;
    for (const key of ['ru', 'en']) {
      const text = map[key];
      if (typeof text === 'string' && text) return text;
    }
    const first = Object.values(map).find((v) => typeof v === 'string' && v);
    return typeof first === 'string' ? first : '';
  }
  return '';
}

export function dateTime(value: unknown): string {
  if (typeof value === 'number') return new Date(value < 1e12 ? value * 1000 : value).toLocaleString('ru-RU', { timeZone: 'Europe/Moscow' });
  if (typeof value === 'string' && value) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? value : date.toLocaleString('ru-RU', { timeZone: 'Europe/Moscow' });
  }
  return '';
}
