/**
 * Application frames (reference §1.3, §7.3, §7.6), the Applications page (install wizard, main
 * page, uninstall) and the JSON endpoints the parent-side frame host calls.
 */
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { PlacementBinding, SandboxApp, SandboxUser } from '../types.js';
import { currentLang, currentUser, describeError, formText, send, type WebContext } from './context.js';
import { html, jsonForScript, raw, type Html } from './html.js';
import { frameForm, frameUrl } from '../frame-request.js';
import { selectorItems, selectorTypes } from './crm-selector.js';

export interface FrameSpec {
  app: SandboxApp;
  user: SandboxUser;
  /** The app URL the frame POSTs to (handlerUrl, installUrl or a placement handler). */
  url: string;
  placement: string;
  /** PLACEMENT_OPTIONS; null for DEFAULT (the field is then not sent). */
  placementOptions: Record<string, string> | null;
  install: boolean;
  context: 'install' | 'main' | 'tab';
  title: string;
  /** Where closeApplication goes. */
  closeUrl: string;
  /** The user's interface language, sent as LANG (default ru). */
  lang?: string;
  /** Opened by openApplication in a slider (Bitrix24's POPUP): fills it, resizeWindow is denied. */
  popup?: boolean;
}

/**
 * The iframe's `allow` attribute as Bitrix24's app layout renders it
 * (rest/install/components/bitrix/app.layout/templates/.default/template.php):
 * `allow="geolocation *; microphone *; camera *; autoplay *;"` — no clipboard feature is
 * delegated, so in Chromium `navigator.clipboard.writeText` in a cross-origin app frame is refused
 * by the permissions policy, while `document.execCommand('copy')` on a user's click still works.
 * `WebSettings.clipboardDelegation` adds `clipboard-read *; clipboard-write *` for trying the
 * other behaviour.
 */
export const BITRIX24_FRAME_ALLOW = 'geolocation *; microphone *; camera *; autoplay *;';
const CLIPBOARD_ALLOW = ' clipboard-read *; clipboard-write *;';

/** Height of an app frame before it asks for one with resizeWindow (px). */
export const INITIAL_FRAME_HEIGHT = 300;

/**
 * An app iframe named "<DOMAIN>|<PROTOCOL>|<APP_SID>", the hidden form POSTing §1.3's fields into
 * it (submitted by the frame host on load) and the init data the host answers getInitData with.
 */
export function renderFrame(ctx: WebContext, spec: FrameSpec): Html {
  const { portal } = ctx;
  const sid = randomBytes(16).toString('hex');
  const protocol = portal.protocol === 'https' ? '1' : '0';
  const name = `${portal.domain}|${protocol}|${sid}`;
  const fields = frameForm(portal, spec.app, portal.issueTokens(spec.app.clientId, spec.user.ID), spec.placement, spec.placementOptions);
  const action = frameUrl(portal, spec.url, sid, spec.lang ?? 'ru');
  const field = (name: string): string => fields.find(([k]) => k === name)?.[1] ?? '';
  const tokens = { accessToken: field('AUTH_ID'), refreshToken: field('REFRESH_ID'), expiresIn: Number(field('AUTH_EXPIRES')) || 3600 };
  const init = {
    DOMAIN: portal.domain,
    PROTOCOL: protocol,
    PATH: '/rest',
    LANG: spec.lang ?? 'ru',
    AUTH_ID: tokens.accessToken,
    REFRESH_ID: tokens.refreshToken,
    AUTH_EXPIRES: String(tokens.expiresIn),
    MEMBER_ID: portal.memberId,
    IS_ADMIN: spec.user.ADMIN,
    APP_OPTIONS: ctx.options.app(spec.app.clientId),
    USER_OPTIONS: ctx.options.user(spec.app.clientId, spec.user.ID),
    PLACEMENT: spec.placement,
    PLACEMENT_OPTIONS: spec.placementOptions ?? {},
    INSTALL: spec.install,
    FIRST_RUN: false,
  };
  const data = {
    sid,
    clientId: spec.app.clientId,
    appCode: spec.app.code,
    // The frame host answers only messages from this origin, as Bitrix24 does (applayout.js receiveMessage).
    appOrigin: new URL(action).origin,
    context: spec.context,
    popup: spec.popup === true,
    closeUrl: spec.closeUrl,
    init,
  };
  const allow = BITRIX24_FRAME_ALLOW + (ctx.settings.clipboardDelegation ? CLIPBOARD_ALLOW : '');
  const height = spec.popup ? '' : String(INITIAL_FRAME_HEIGHT);
  return html`<div class="app-frame-wrap${spec.popup ? ' app-frame-popup' : ''}" data-frame-sid="${sid}" data-client-id="${spec.app.clientId}" data-placement="${spec.placement}" data-testid="app-frame-wrap" data-frame-height="${height}">
  <div class="app-frame-title">${spec.title}</div>
  <div class="app-frame-layout"${spec.popup ? '' : raw(` style="height:${INITIAL_FRAME_HEIGHT}px"`)}>
    <iframe class="app-frame" name="${name}" data-testid="app-frame" title="${spec.title}" allow="${allow}"></iframe>
  </div>
  <form method="post" target="${name}" action="${action}" data-frame-form hidden>
    ${fields.map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
    <noscript><button type="submit">Открыть приложение</button></noscript>
  </form>
  <script type="application/json" class="sandbox-frame-data">${raw(jsonForScript(data))}</script>
</div>`;
}

export const FRAME_HOST_TAG = raw('<script src="/_sandbox/static/frame-host.js"></script>');

/** Placement bindings of installed apps for a placement code, visible to a user. */
export function visiblePlacements(ctx: WebContext, placement: string, user: SandboxUser): PlacementBinding[] {
  return ctx.portal
    .placements()
    .filter((p) => p.placement === placement && (!p.userId || p.userId === user.ID) && ctx.portal.app(p.clientId)?.installed === true);
}

export function placementTitle(ctx: WebContext, p: PlacementBinding): string {
  const lang = p.langAll && typeof p.langAll === 'object' ? (p.langAll as Record<string, unknown>).ru : undefined;
  const ru = lang && typeof lang === 'object' ? (lang as Record<string, unknown>).TITLE : undefined;
  // The portal speaks Russian: LANG_ALL's ru title wins over the default TITLE, as in Bitrix24.
  return (typeof ru === 'string' && ru ? ru : '') || p.title || ctx.portal.app(p.clientId)?.title || p.placement;
}

function appStatus(app: SandboxApp): Html {
  return app.installed
    ? html`<span class="status status-installed" data-testid="install-status">Установлено</span>`
    : app.applicationToken
      ? html`<span class="status status-pending" data-testid="install-status">Установка не завершена</span>`
      : html`<span class="status status-absent" data-testid="install-status">Не установлено</span>`;
}

function marketplace(ctx: WebContext, req: Request, res: Response, error: string | null = null): void {
  const user = currentUser(req, ctx.portal);
  const apps = ctx.portal.apps();
  const rows = apps.map(
    (app) => html`<div class="card" data-testid="app-${app.clientId}">
  <div class="toolbar"><h2 class="grow" style="margin:0">${app.title}</h2>${appStatus(app)}</div>
  <p class="muted">Код <code>${app.code}</code> · версия ${app.version} · client_id <code>${app.clientId}</code> · права: ${app.scope}</p>
  <div class="toolbar">
    ${user.ADMIN
      ? html`<a class="btn" href="/marketplace/app/${encodeURIComponent(app.clientId)}/install/" data-testid="install">${app.installed ? 'Переустановить' : 'Установить'}</a>`
      : html`<span class="muted">Устанавливать и удалять приложения может только администратор портала.</span>`}
    ${app.installed ? html`<a class="btn btn-light" href="/marketplace/app/${encodeURIComponent(app.clientId)}/" data-testid="open">Открыть</a>` : ''}
  </div>
  ${user.ADMIN && (app.installed || app.applicationToken)
    ? html`<form method="post" action="/marketplace/app/${encodeURIComponent(app.clientId)}/uninstall" class="toolbar" data-confirm="Удалить приложение «${app.title}»?">
    <label><input type="checkbox" name="clean" value="1" data-testid="uninstall-clean"> Удалить данные приложения</label>
    <button type="submit" class="btn btn-danger btn-small" data-testid="uninstall">Удалить</button>
  </form>`
    : ''}
</div>`,
  );
  send(ctx, req, res, {
    status: error ? 400 : 200,
    title: 'Приложения',
    section: 'marketplace',
    ...(error ? { flash: { kind: 'error' as const, text: error } } : {}),
    body: html`${rows.length ? rows : html`<div class="card muted">На портале нет приложений.</div>`}`,
  });
}

function appPage(ctx: WebContext, req: Request, res: Response, mode: 'install' | 'main'): void {
  const clientId = String(req.params.clientId ?? '');
  const app = ctx.portal.app(clientId);
  const user = currentUser(req, ctx.portal);
  if (!app) {
    send(ctx, req, res, { status: 404, title: 'Приложение не найдено', section: 'marketplace', flash: { kind: 'error', text: `Приложение ${clientId} не найдено` }, body: html`<a href="/marketplace/">К приложениям</a>` });
    return;
  }
  const mainUrl = `/marketplace/app/${encodeURIComponent(app.clientId)}/`;
  if (mode === 'main' && !app.installed) {
    if (user.ADMIN) {
      res.redirect(303, `${mainUrl}install/`);
      return;
    }
    send(ctx, req, res, {
      status: 403,
      title: app.title,
      section: 'marketplace',
      flash: { kind: 'error', text: 'Приложение установлено не полностью. Обратитесь к администратору портала.' },
      body: html`<div class="card">${appStatus(app)}</div>`,
    });
    return;
  }
  if (mode === 'install' && !user.ADMIN) {
    send(ctx, req, res, {
      status: 403,
      title: `Установка: ${app.title}`,
      section: 'marketplace',
      flash: { kind: 'error', text: 'Устанавливать приложения может только администратор портала. Переключитесь на администратора в шапке.' },
      body: html`<div class="card">${appStatus(app)}</div>`,
    });
    return;
  }
  // openApplication opens the main page in a slider (IFRAME=Y) with the app's PLACEMENT_OPTIONS.
  const popup = mode === 'main' && req.query.IFRAME === 'Y';
  const frame = renderFrame(ctx, {
    app,
    user,
    lang: currentLang(req),
    url: mode === 'install' ? app.installUrl || app.handlerUrl : app.handlerUrl,
    placement: 'DEFAULT',
    placementOptions: popup ? popupOptions(req.query.PLACEMENT_OPTIONS) : null,
    popup,
    install: mode === 'install' ? true : !app.installed,
    context: mode,
    title: app.title,
    closeUrl: '/marketplace/',
  });
  const head =
    mode === 'install'
      ? html`<div class="card"><div class="toolbar"><div class="grow">Мастер установки приложения «${app.title}». Когда приложение вызовет <code>installFinish</code>, оно будет считаться установленным.</div>${appStatus(app)}</div>
  <p data-show-when-installed${app.installed ? '' : raw(' hidden')}><a class="btn" href="${mainUrl}" data-testid="open-app">Открыть приложение</a></p></div>`
      : '';
  send(ctx, req, res, { title: app.title, section: 'marketplace', wide: true, body: html`${head}${frame}`, tail: FRAME_HOST_TAG });
}

/** PLACEMENT_OPTIONS of an openApplication call: a JSON object of strings (else none). */
function popupOptions(value: unknown): Record<string, string> | null {
  if (typeof value !== 'string' || !value) return null;
  try {
    const parsed: unknown = JSON.parse(value);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  } catch {
    return null;
  }
}

function jsonError(res: Response, status: number, error: string): void {
  res.status(status).json({ error });
}

export function appRoutes(ctx: WebContext): Router {
  const router = express.Router();
  const json = express.json({ limit: '256kb' });

  router.get('/marketplace', (req, res) => marketplace(ctx, req, res));
  router.get('/marketplace/app/:clientId', (req, res) => appPage(ctx, req, res, 'main'));
  router.get('/marketplace/app/:clientId/install', (req, res) => appPage(ctx, req, res, 'install'));
  router.post('/marketplace/app/:clientId/uninstall', async (req, res) => {
    const user = currentUser(req, ctx.portal);
    const clientId = String(req.params.clientId ?? '');
    if (!user.ADMIN) return marketplace(ctx, req, res, 'Удалять приложения может только администратор портала.');
    if (!ctx.portal.app(clientId)) return marketplace(ctx, req, res, `Приложение ${clientId} не найдено`);
    const clean = formText(req.body, 'clean') === '1' || formText(req.body, 'clean') === 'Y';
    try {
      await ctx.hooks.uninstall(clientId, clean);
    } catch (err) {
      return marketplace(ctx, req, res, `Не удалось удалить приложение: ${describeError(err)}`);
    }
    res.redirect(303, '/marketplace/?done=uninstalled');
  });

  /** refreshAuth: a fresh token pair for the cookie user and the frame's app. */
  router.post('/_sandbox/frame/auth', json, (req, res) => {
    const clientId = typeof req.body?.clientId === 'string' ? req.body.clientId : '';
    const app = ctx.portal.app(clientId);
    if (!app) return jsonError(res, 404, `unknown application ${clientId}`);
    const user = currentUser(req, ctx.portal);
    const tokens = ctx.portal.issueTokens(app.clientId, user.ID);
    res.set('Cache-Control', 'no-store').json({ AUTH_ID: tokens.accessToken, REFRESH_ID: tokens.refreshToken, AUTH_EXPIRES: String(tokens.expiresIn) });
  });

  /** setInstallFinish from the install wizard frame. */
  router.post('/_sandbox/frame/install-finish', json, async (req, res) => {
    const clientId = typeof req.body?.clientId === 'string' ? req.body.clientId : '';
    if (!ctx.portal.app(clientId)) return jsonError(res, 404, `unknown application ${clientId}`);
    if (!currentUser(req, ctx.portal).ADMIN) return jsonError(res, 403, 'only an administrator can install applications');
    try {
      await ctx.hooks.installFinished(clientId);
    } catch (err) {
      return jsonError(res, 500, describeError(err));
    }
    res.json({ ok: true, installed: ctx.portal.app(clientId)?.installed === true });
  });

  /** setAppOption / setUserOption: kept for later getInitData answers. */
  router.post('/_sandbox/frame/option', json, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const clientId = typeof body.clientId === 'string' ? body.clientId : '';
    const name = typeof body.name === 'string' ? body.name : '';
    if (!ctx.portal.app(clientId) || !name) return jsonError(res, 400, 'clientId and name are required');
    const user = currentUser(req, ctx.portal);
    // Bitrix24 saves app options for administrators only (applayout.js setAppOption).
    if (body.scope !== 'user' && !user.ADMIN) return jsonError(res, 403, 'only an administrator can set application options');
    ctx.options.set(body.scope === 'user' ? 'user' : 'app', clientId, user.ID, name, body.value);
    res.json({ ok: true });
  });

  /** selectCRM: what the portal's CRM selector lists for the requested types (crm-selector.ts). */
  router.post('/_sandbox/frame/crm-entities', json, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const clientId = typeof body.clientId === 'string' ? body.clientId : '';
    if (!ctx.portal.app(clientId)?.installed) return jsonError(res, 404, `no installed application ${clientId}`);
    res.set('Cache-Control', 'no-store').json(selectorItems(ctx.portal, selectorTypes(body.entityType)));
  });

  return router;
}
