/**
 * Escaping and the page shell of the sandbox's web CRM. Everything rendered goes through
 * `esc` (text and attributes) or `jsonForScript` (JSON inside a <script> element).
 */
import type { SandboxUser } from '../types.js';

/** HTML-escapes text for element content and double- or single-quoted attributes. */
export function esc(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON safe inside <script>: no `</script>`, no `<!--`, no entity tricks, no JS line breaks. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value ?? null)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Pre-escaped HTML, so helpers can tell markup from text. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function raw(value: string): Html {
  return new Html(value);
}

/** Tagged template: interpolated values are escaped unless they are Html (or arrays of Html). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return esc(value);
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface ShellOptions {
  title: string;
  /** Which left-menu item is active. */
  section: 'home' | 'contact' | 'lead' | 'deal' | 'automation' | 'marketplace';
  user: SandboxUser;
  users: SandboxUser[];
  /** The interface language (the switcher's choice). */
  lang: string;
  /** Where the user switcher returns to. */
  path: string;
  flash?: Flash | null;
  unread?: number;
  body: Html;
  /** Extra tags at the end of <body> (the frame host). */
  tail?: Html;
  /** portal.origin: app frames talk to the parent only under this origin. */
  origin: string;
  /** Inside a slider (IFRAME=Y): the page alone, without the banner, menu and top bar. */
  bare?: boolean;
  /** Full width content (an app's main page), instead of the portal's reading width. */
  wide?: boolean;
}

const MENU: { key: ShellOptions['section']; href: string; label: string }[] = [
  { key: 'home', href: '/', label: 'Главная' },
  { key: 'contact', href: '/crm/contact/', label: 'Контакты' },
  { key: 'lead', href: '/crm/lead/', label: 'Лиды' },
  { key: 'deal', href: '/crm/deal/', label: 'Сделки' },
  { key: 'automation', href: '/automation/deal/', label: 'Роботы' },
  { key: 'marketplace', href: '/marketplace/', label: 'Приложения' },
];

export function userName(u: Pick<SandboxUser, 'NAME' | 'LAST_NAME' | 'ID'> | null | undefined): string {
  if (!u) return '';
  return `${u.NAME} ${u.LAST_NAME}`.trim() || `Пользователь ${u.ID}`;
}

export function page(o: ShellOptions): string {
  const menu = MENU.map((m) => html`<a class="menu-item${m.key === o.section ? ' active' : ''}" href="${m.href}" data-testid="menu-${m.key}">${m.label}</a>`);
  const options = o.users.map(
    (u) => html`<option value="${u.ID}"${raw(u.ID === o.user.ID ? ' selected' : '')}>${userName(u)}${u.ADMIN ? ' (админ)' : ''}</option>`,
  );
  const flash = o.flash
    ? html`<div class="flash flash-${o.flash.kind}" data-testid="flash-${o.flash.kind}" role="${o.flash.kind === 'error' ? 'alert' : 'status'}">${o.flash.text}</div>`
    : '';
  const head = html`<!doctype html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} — Песочница Битрикс24</title>
<link rel="stylesheet" href="/_sandbox/static/sandbox.css">
</head>`;
  const contentClass = `content${o.wide ? ' content-wide' : ''}`;
  if (o.bare) {
    const doc = html`${head}
<body data-portal-origin="${o.origin}" class="bare">
<main class="${contentClass}">
  <div class="topbar-title bare-title">${o.title}</div>
  ${flash}
  ${o.body}
</main>
<script src="/_sandbox/static/ui.js"></script>
${o.tail ?? ''}
</body>
</html>`;
    return doc.value;
  }
  const doc = html`${head}
<body data-portal-origin="${o.origin}">
<div class="sandbox-banner" data-testid="sandbox-banner">Песочница Битрикс24 — локальная имитация портала для демонстрации и тестов</div>
<div class="flash flash-error origin-warning" data-origin-warning hidden>Страница открыта не по адресу портала: приложения в iframe не смогут с ней общаться. <a href="${o.origin}">Открыть ${o.origin}</a></div>
<div class="layout">
  <nav class="menu">
    <a class="logo" href="/">Битрикс<span>24</span></a>
    ${menu}
  </nav>
  <div class="main">
    <header class="topbar">
      <div class="topbar-title" id="pagetitle">${o.title}</div>
      <a class="bell" href="/#notifications" title="Уведомления" data-testid="notifications">${raw('<svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true"><path fill="#828b95" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/></svg>')}${o.unread ? html`<span class="badge">${o.unread}</span>` : ''}</a>
      <form method="post" action="/_sandbox/user" class="user-switch">
        <input type="hidden" name="back" value="${o.path}">
        <label>Пользователь:
          <select name="userId" data-testid="user-switch" data-autosubmit>${options}</select>
        </label>
        <label>Язык:
          <select name="lang" data-testid="lang-switch" data-autosubmit>${(['ru', 'en'] as const).map((l) => html`<option value="${l}"${l === o.lang ? raw(' selected') : ''}>${l}</option>`)}</select>
        </label>
        <button type="submit" class="btn btn-light btn-small">Войти</button>
      </form>
    </header>
    <main class="${contentClass}">
      ${flash}
      ${o.body}
    </main>
  </div>
</div>
<script src="/_sandbox/static/ui.js"></script>
${o.tail ?? ''}
</body>
</html>`;
  return doc.value;
}

export const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333;background:#eef2f4}
a{color:#2067b0;text-decoration:none}a:hover{text-decoration:underline}
.sandbox-banner{background:#ffe98a;color:#5a4a00;text-align:center;padding:6px 12px;font-weight:600;border-bottom:1px solid #e8cf55;position:sticky;top:0;z-index:10}
.layout{display:flex;min-height:calc(100vh - 32px)}
.menu{width:210px;flex:none;background:#1e3a5c;color:#fff;padding:14px 0}
.menu .logo{display:block;color:#fff;font-size:22px;font-weight:700;padding:4px 20px 18px}
.menu .logo span{color:#2fc6f6}
.menu-item{display:block;color:#d5e2ef;padding:9px 20px;border-left:3px solid transparent}
.menu-item:hover{background:#264a72;text-decoration:none;color:#fff}
.menu-item.active{background:#2b5685;color:#fff;border-left-color:#2fc6f6}
.main{flex:1;min-width:0;display:flex;flex-direction:column}
.topbar{display:flex;align-items:center;gap:16px;background:#fff;padding:10px 24px;border-bottom:1px solid #dfe5e9}
.topbar-title{font-size:20px;font-weight:600;flex:1;color:#2a3440}
.bell{position:relative;font-size:18px}.bell:hover{text-decoration:none}
.badge{position:absolute;top:-6px;right:-10px;background:#ff5752;color:#fff;border-radius:9px;font-size:11px;padding:0 5px}
.user-switch{display:flex;align-items:center;gap:6px}
.content{padding:20px 24px;max-width:1400px}
.content-wide{max-width:none}
body.bare{background:#eef2f4}
.bare-title{margin-bottom:14px}
.card{background:#fff;border-radius:10px;padding:18px 20px;margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.card h2{margin:0 0 12px;font-size:17px;color:#2a3440}
.card h3{margin:14px 0 8px;font-size:15px}
.muted{color:#828b95}
.flash{padding:10px 14px;border-radius:8px;margin-bottom:16px;font-weight:500}
.flash-ok{background:#e3f8d1;color:#3b6a13;border:1px solid #bde59c}
.flash-error{background:#ffe4e3;color:#a2201b;border:1px solid #f6b4b1}
.btn{display:inline-block;border:0;border-radius:18px;padding:8px 18px;font:inherit;font-weight:600;cursor:pointer;background:#2fc6f6;color:#fff;text-decoration:none}
.btn:hover{background:#11b5ea;text-decoration:none}
.btn-success{background:#9dcf00}.btn-success:hover{background:#8abb00}
.btn-danger{background:#ff5752}.btn-danger:hover{background:#ee3b36}
.btn-light{background:#fff;color:#535c69;border:1px solid #c6cdd3}.btn-light:hover{background:#f2f5f7}
.btn-small{padding:4px 12px;font-size:12px}
.btn[disabled]{opacity:.5;cursor:not-allowed}
table.grid{width:100%;border-collapse:collapse}
.grid th{text-align:left;font-weight:600;color:#535c69;background:#f5f7f8;padding:8px 10px;border-bottom:1px solid #e2e7ea}
.grid td{padding:8px 10px;border-bottom:1px solid #eef1f3;vertical-align:top}
.grid tr:hover td{background:#fafcfd}
.toolbar{display:flex;gap:10px;align-items:center;margin-bottom:14px;flex-wrap:wrap}
.toolbar .grow{flex:1}
input[type=text],input[type=url],input[type=number],input[type=date],input[type=search],input[type=email],input[type=tel],select,textarea{font:inherit;padding:7px 9px;border:1px solid #c6cdd3;border-radius:6px;background:#fff;min-width:0}
input:focus,select:focus,textarea:focus{outline:2px solid #9be4fb;border-color:#2fc6f6}
input[readonly]{background:#f5f7f8;color:#6a737f}
.form-grid{display:grid;grid-template-columns:minmax(180px,260px) 1fr;gap:10px 16px;align-items:center;max-width:820px}
.form-grid label{color:#535c69}
.form-grid .hint{grid-column:2;font-size:12px;color:#828b95;margin-top:-6px}
.field-error{outline:2px solid #ff5752}
.tabs{display:flex;gap:4px;border-bottom:2px solid #dfe5e9;margin-bottom:16px;flex-wrap:wrap}
.tab{padding:8px 16px;color:#535c69;border-radius:8px 8px 0 0;font-weight:600}
.tab.active{background:#fff;color:#2a3440;box-shadow:inset 0 -3px 0 #2fc6f6}
.stages{display:flex;gap:3px;margin:0 0 16px;flex-wrap:wrap}
.stages form{flex:1;min-width:110px;margin:0}
.stage{width:100%;border:0;padding:8px 6px;font:inherit;font-size:12px;font-weight:600;cursor:pointer;color:#535c69;background:#e8edf0;clip-path:polygon(0 0,calc(100% - 8px) 0,100% 50%,calc(100% - 8px) 100%,0 100%,8px 50%)}
.stage.passed{background:#bfe9f8;color:#1f5f78}
.stage.current{background:#2fc6f6;color:#fff}
.stage.success.current,.stage.success:hover{background:#9dcf00;color:#fff}
.stage.failure.current,.stage.failure:hover{background:#ff5752;color:#fff}
.stage:hover{filter:brightness(.96)}
.columns{display:flex;gap:12px;overflow-x:auto;align-items:flex-start;padding-bottom:8px}
.column{flex:0 0 260px;background:#fff;border-radius:10px;padding:10px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.column-head{font-weight:700;padding:6px 8px;border-radius:6px;color:#fff;margin-bottom:10px;background:#2fc6f6}
.robot{border:1px solid #dfe5e9;border-radius:8px;padding:8px;margin-bottom:8px;background:#f9fbfc}
.robot .props{font-size:12px;color:#6a737f;word-break:break-word}
details.add-robot summary{cursor:pointer;color:#2067b0;margin:6px 0}
details.add-robot form{display:flex;flex-direction:column;gap:6px;margin-top:6px}
details.add-robot label{font-size:12px;color:#535c69}
.status{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.status-done,.status-installed{background:#e3f8d1;color:#3b6a13}
.status-waiting,.status-pending{background:#fff4cc;color:#7a5b00}
.status-failed,.status-absent{background:#ffe4e3;color:#a2201b}
.status-skipped{background:#eef1f3;color:#535c69}
.robot .activity{font-family:monospace;font-size:12px;color:#2067b0}
.robot .condition{font-size:12px;color:#7a5b00;margin-top:4px}
details.add-robot .condition-row{display:flex;gap:4px}
details.add-robot .condition-row input{flex:1;min-width:0}
.app-frame-wrap{background:#fff;border-radius:10px;padding:0;overflow:hidden;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.app-frame-title{padding:10px 16px;border-bottom:1px solid #eef1f3;font-weight:600}
/* Bitrix24's app layout: resizeWindow sizes this box, the iframe fills it (applayout.js resizeWindow). */
.app-frame-layout{max-width:100%;overflow:hidden}
iframe.app-frame{display:block;width:100%;height:100%;border:0;background:#fff}
.app-frame-popup .app-frame-layout{height:calc(100vh - 120px)}
/* A CRM card's app tab gets the width of a card slider's content (about 980 px at a 1280 px viewport). */
.tab-area{width:min(100%,calc(100vw - 300px))}
.sandbox-slider{position:fixed;inset:0;z-index:1000;background:rgba(0,0,0,.4);display:flex;justify-content:flex-end}
.sandbox-slider-panel{height:100%;max-width:calc(100vw - 60px);background:#eef2f4;display:flex;flex-direction:column;box-shadow:-4px 0 16px rgba(0,0,0,.2)}
.sandbox-slider-bar{display:flex;align-items:center;gap:10px;padding:8px 12px;background:#fff;border-bottom:1px solid #dfe5e9}
.sandbox-slider-title{flex:1;font-weight:600;color:#2a3440;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sandbox-slider-close{border:0;background:#535c69;color:#fff;border-radius:50%;width:28px;height:28px;font-size:18px;line-height:1;cursor:pointer}
iframe.sandbox-slider-frame{flex:1;width:100%;border:0;background:#eef2f4}
.sandbox-modal{position:fixed;inset:0;z-index:1100;background:rgba(0,0,0,.4);display:flex;align-items:flex-start;justify-content:center;padding-top:8vh}
.sandbox-modal-box{background:#fff;border-radius:10px;width:min(560px,calc(100vw - 40px));max-height:80vh;display:flex;flex-direction:column;padding:18px 20px;box-shadow:0 8px 30px rgba(0,0,0,.25)}
.sandbox-modal-box h2{margin:0 0 12px;font-size:17px;color:#2a3440}
.crm-selector-list{list-style:none;margin:10px 0;padding:0;overflow:auto;flex:1;border:1px solid #eef1f3;border-radius:6px;min-height:80px}
.crm-selector-list li{padding:8px 10px;border-bottom:1px solid #eef1f3;cursor:pointer;display:flex;gap:8px;align-items:baseline}
.crm-selector-list li[hidden]{display:none}
.crm-selector-list li:hover,.crm-selector-list li:focus{background:#f2f8fc;outline:none}
.crm-selector-list li[aria-selected="true"]{background:#dff3fc;box-shadow:inset 3px 0 #2fc6f6}
.crm-selector-list .kind{font-size:12px;color:#828b95}
.timeline-item{border-left:3px solid #2fc6f6;padding:6px 12px;margin-bottom:10px;background:#f9fbfc;border-radius:0 6px 6px 0;white-space:pre-wrap;word-break:break-word}
.timeline-item .meta{font-size:12px;color:#828b95;white-space:normal}
.pager{display:flex;gap:10px;align-items:center;margin-top:12px}
.checklist li{margin-bottom:6px}
.two-col{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:18px}
@media (max-width:1100px){.two-col{grid-template-columns:1fr}}
/* A phone: the left menu becomes a scrolling strip above the page, as Bitrix24's mobile web layout puts it away, so an app frame gets the screen's width. */
@media (max-width:700px){.layout{flex-direction:column}.menu{width:auto;display:flex;align-items:center;overflow-x:auto;padding:0}.menu .logo{padding:8px 12px;font-size:18px}.menu-item{white-space:nowrap;padding:8px 12px;border-left:0}.topbar{flex-wrap:wrap;padding:8px 12px}.content{padding:12px 8px}}
pre.json{margin:0;font-size:12px;white-space:pre-wrap;word-break:break-word;max-width:360px}
`;
