/**
 * The page Bitrix24 shows in the app's main page and in the CRM card tabs: a small
 * server-rendered UI until the Vue client replaces it. It carries no token and no portal data:
 * the inline script gets the user's token from the frame SDK (reference §7.4), reads our JSON
 * API with it (SPEC 3) and renders the placement. `body[data-state]` is `loading`, then `ready`
 * or `error`; `#sdk-status` names the placement the SDK reported (end-to-end tests read both).
 */
import { escapeHtml, page, scriptJson } from './html.js';

export type Lang = 'ru' | 'en';

const TEXT = {
  ru: {
    locale: 'ru-RU',
    title: 'Сарафан',
    loading: 'Подключаемся к Битрикс24…',
    sdkReady: 'SDK Битрикс24 подключён, место встройки:',
    sdkFailed: 'Не удалось подключиться к Битрикс24. Откройте приложение из Битрикс24.',
    failed: 'Не удалось загрузить данные:',
    noEntity: 'Битрикс24 не передал номер карточки.',
    unsupported: 'Это место встройки не поддерживается:',
    referral: 'Рекомендация',
    noReferral: 'Сделка пришла без рекомендации.',
    rejected: 'Отклонена',
    overridden: 'Принята администратором',
    rejectReasons: {
      self_referral: 'самоприглашение (тот же клиент, телефон или e-mail)',
      cycle: 'приглашение по кругу',
      already_customer: 'клиент уже покупал до приглашения',
      unknown_code: 'неизвестный код',
    },
    code: 'Код',
    referrer: 'Кто рекомендовал',
    rewards: 'Начисления по сделке',
    noRewards: 'Сделка пока ничего не начислила.',
    client: 'Клиент',
    clientNotInProgram: 'Клиент сделки пока не участвует в программе.',
    balance: 'Баланс',
    pending: 'Ожидает',
    tier: 'Уровень',
    referrals: 'Привёл клиентов',
    link: 'Ссылка',
    copy: 'Копировать',
    copied: 'Скопировано',
    history: 'История',
    noHistory: 'Начислений и списаний пока нет.',
    notInProgram: 'Ещё не участвует в программе.',
    notEnrolled: 'Реферальный код ещё не выдан: он появится после первой выигранной сделки.',
    who: 'Кому',
    reason: 'За что',
    amount: 'Сумма',
    status: 'Статус',
    date: 'Дата',
    deal: 'Сделка',
    levelN: 'уровень',
    contact: 'Контакт',
    lead: 'Лид',
    none: 'нет',
    reasons: {
      referral: 'За рекомендацию',
      welcome: 'Приветственный бонус',
      cashback: 'Кешбэк',
      coupon: 'Купон',
      promo: 'Промокод',
      adjustment: 'Корректировка',
      redemption: 'Оплата бонусами',
      expiry: 'Сгорание',
    },
    kinds: { credit: 'начисление', reversal: 'отмена', correction: 'поправка' },
    statuses: { pending: 'Ожидает', available: 'Доступно', reversed: 'Отменено', expired: 'Сгорело' },
    program: 'Программа',
    version: 'версия',
    referralProgram: 'Реферальная программа',
    enabled: 'включена',
    disabled: 'выключена',
    levels: 'Вознаграждение рекомендателям',
    welcome: 'Приветственный бонус новому клиенту',
    qualify: 'Какие сделки оплачиваются',
    first_won_deal: 'первая выигранная сделка клиента',
    every_won_deal: 'каждая выигранная сделка в течение {n} дн.',
    holdDays: 'Удержание перед начислением, дней',
    cashback: 'Кешбэк',
    byTier: 'по уровню клиента',
    tiers: 'Уровни клиентов',
    expiry: 'Срок жизни бонусов, дней',
    never: 'бессрочно',
    redemption: 'Оплата бонусами, не более',
    ofDeal: 'от суммы сделки',
    adminsOnly: 'Настройки программы доступны администраторам портала.',
    readOnly: 'Настройки показаны только для просмотра.',
  },
  en: {
    locale: 'en-US',
    title: 'Sarafan',
    loading: 'Connecting to Bitrix24…',
    sdkReady: 'Bitrix24 SDK initialised, placement:',
    sdkFailed: 'Could not connect to Bitrix24. Open the application from Bitrix24.',
    failed: 'Could not load the data:',
    noEntity: 'Bitrix24 did not pass the card id.',
    unsupported: 'This placement is not supported:',
    referral: 'Referral',
    noReferral: 'This deal has no referral.',
    rejected: 'Rejected',
    overridden: 'Accepted by an administrator',
    rejectReasons: {
      self_referral: 'self-referral (same client, phone or e-mail)',
      cycle: 'referral cycle',
      already_customer: 'already a customer before the referral',
      unknown_code: 'unknown code',
    },
    code: 'Code',
    referrer: 'Referred by',
    rewards: 'Rewards of this deal',
    noRewards: 'This deal has not caused any rewards yet.',
    client: 'Client',
    clientNotInProgram: 'The client of this deal is not in the program yet.',
    balance: 'Balance',
    pending: 'Pending',
    tier: 'Tier',
    referrals: 'Referrals',
    link: 'Link',
    copy: 'Copy',
    copied: 'Copied',
    history: 'History',
    noHistory: 'No entries yet.',
    notInProgram: 'Not in the program yet.',
    notEnrolled: 'No referral code yet: it is given after the first won deal.',
    who: 'Who',
    reason: 'Reason',
    amount: 'Amount',
    status: 'Status',
    date: 'Date',
    deal: 'Deal',
    levelN: 'level',
    contact: 'Contact',
    lead: 'Lead',
    none: 'none',
    reasons: {
      referral: 'Referral reward',
      welcome: 'Welcome bonus',
      cashback: 'Cashback',
      coupon: 'Coupon',
      promo: 'Promo code',
      adjustment: 'Adjustment',
      redemption: 'Paid with bonus',
      expiry: 'Expired',
    },
    kinds: { credit: 'credit', reversal: 'reversal', correction: 'correction' },
    statuses: { pending: 'Pending', available: 'Available', reversed: 'Reversed', expired: 'Expired' },
    program: 'Program',
    version: 'version',
    referralProgram: 'Referral program',
    enabled: 'on',
    disabled: 'off',
    levels: 'Referrer rewards',
    welcome: 'Welcome bonus for the new client',
    qualify: 'Deals that pay',
    first_won_deal: "the client's first won deal",
    every_won_deal: 'every won deal within {n} days',
    holdDays: 'Hold before available, days',
    cashback: 'Cashback',
    byTier: 'by client tier',
    tiers: 'Client tiers',
    expiry: 'Bonus lifetime, days',
    never: 'never expires',
    redemption: 'Pay with bonus, at most',
    ofDeal: 'of the deal amount',
    adminsOnly: 'Program settings are available to portal administrators.',
    readOnly: 'The settings are shown read-only.',
  },
} satisfies Record<Lang, Record<string, unknown>>;

const STYLE = `<style>
body{margin:0;padding:16px;background:#eef2f4;color:#535c69;font:14px/1.45 "Open Sans","Helvetica Neue",Helvetica,Arial,sans-serif}
h1{margin:0 0 4px;font-size:18px;font-weight:600;color:#333}
.sf-status{margin:0 0 12px;font-size:12px;color:#a8adb4}
.sf-card{background:#fff;border-radius:12px;padding:16px 20px;margin:0 0 12px;box-shadow:0 1px 2px rgba(83,92,105,.08)}
.sf-card h2{margin:0 0 12px;font-size:15px;font-weight:600;color:#333}
.sf-muted{color:#a8adb4;margin:0}
.sf-empty{margin:0;font-size:15px}
.sf-code{font:600 22px/1.2 "Open Sans",Helvetica,Arial,sans-serif;letter-spacing:2px;color:#333}
.sf-row{display:flex;align-items:center;gap:8px;flex-wrap:wrap;margin:8px 0 0}
.sf-link{color:#2067b0;word-break:break-all}
.sf-stats{display:flex;flex-wrap:wrap;gap:12px;margin:0}
.sf-stat{flex:1 1 120px;background:#f5f7f8;border-radius:8px;padding:10px 12px}
.sf-stat dt{font-size:12px;color:#a8adb4}.sf-stat dd{margin:2px 0 0;font-size:17px;font-weight:600;color:#333}
.sf-facts{display:grid;grid-template-columns:minmax(140px,max-content) 1fr;gap:6px 16px;margin:0}
.sf-facts dt{color:#a8adb4}.sf-facts dd{margin:0;color:#333}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-weight:400;font-size:12px;color:#a8adb4;border-bottom:1px solid #e6e9ec;padding:6px 8px}
td{border-bottom:1px solid #f0f2f4;padding:8px;color:#333;vertical-align:top}
td.sf-num{text-align:right;white-space:nowrap}.sf-neg{color:#c0392b}
.sf-badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e5f9fe;color:#11a9d6}
.sf-badge.reversed,.sf-badge.expired{background:#f0f2f4;color:#80868e}.sf-badge.pending{background:#fff6d7;color:#a37e00}
button{font:inherit;font-size:13px;border:0;border-radius:16px;padding:4px 14px;background:#2fc6f6;color:#fff;cursor:pointer}
button:hover{background:#1fb8ea}
button.sf-ref{background:none;padding:0;border-radius:0;color:#2067b0;border-bottom:1px dashed #2067b0}
.error{color:#c0392b}
</style>`;

/** Browser-side; plain ES2020 so any current browser runs it as served. */
const SCRIPT = `
(() => {
  const T = window.SARAFAN_TEXT;
  const content = document.getElementById('content');
  const sdkStatus = document.getElementById('sdk-status');
  let $b24 = null;

  const h = (tag, className, text) => {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  };
  const card = (title) => {
    const el = h('section', 'sf-card');
    if (title) el.appendChild(h('h2', '', title));
    content.appendChild(el);
    return el;
  };
  const put = (parent, value) => {
    if (value !== null && typeof value === 'object') parent.appendChild(value);
    else parent.textContent = value === null || value === undefined || value === '' ? '—' : String(value);
    return parent;
  };
  const list = (className, rows) => {
    const dl = h('dl', className);
    for (const [term, value] of rows) {
      const wrap = className === 'sf-stats' ? dl.appendChild(h('div', 'sf-stat')) : dl;
      wrap.appendChild(h('dt', '', term));
      wrap.appendChild(put(h('dd'), value));
    }
    return dl;
  };
  const table = (heads, rows) => {
    const t = h('table');
    const head = t.appendChild(h('thead')).appendChild(h('tr'));
    for (const text of heads) head.appendChild(h('th', '', text));
    const tbody = t.appendChild(h('tbody'));
    for (const row of rows) {
      const tr = tbody.appendChild(h('tr'));
      for (const cell of row) {
        const td = tr.appendChild(h('td', cell && cell.num !== undefined ? 'sf-num' + (cell.num < 0 ? ' sf-neg' : '') : ''));
        put(td, cell && cell.num !== undefined ? cell.text : cell);
      }
    }
    return t;
  };
  const money = (amount, currency) => {
    try {
      return new Intl.NumberFormat(T.locale, { style: 'currency', currency }).format(amount);
    } catch (e) {
      return Number(amount).toFixed(2) + ' ' + currency;
    }
  };
  const amountCell = (amount, currency) => ({ num: amount, text: money(amount, currency) });
  const day = (iso) => new Date(iso).toLocaleDateString(T.locale);
  const badge = (status) => h('span', 'sf-badge ' + status, T.statuses[status] || status);
  const reason = (e) =>
    (T.reasons[e.reason] || e.reason) + (e.level > 0 ? ', ' + T.levelN + ' ' + e.level : '') + (e.kind !== 'credit' ? ' (' + (T.kinds[e.kind] || e.kind) + ')' : '');
  const person = (ref) => {
    if (!ref) return '—';
    const b = h('button', 'sf-ref', T[ref.entity] + ' #' + ref.id);
    b.type = 'button';
    b.addEventListener('click', () => {
      $b24.slider.openPath($b24.slider.getUrl('/crm/' + ref.entity + '/details/' + ref.id + '/')).catch((e) => console.error(e));
    });
    return b;
  };

  // The token comes from the SDK (never from the page); a 401 asks the portal for a fresh one once.
  const api = async (path) => {
    for (let attempt = 0; ; attempt++) {
      let auth = attempt === 0 ? $b24.auth.getAuthData() : false;
      if (!auth) auth = await $b24.auth.refreshAuth();
      const res = await fetch(path, {
        headers: { Accept: 'application/json', Authorization: 'Bearer ' + auth.access_token, 'X-Sarafan-Portal': auth.member_id },
      });
      if (res.status === 401 && attempt === 0) continue;
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const error = new Error((data && data.error && data.error.message) || 'HTTP ' + res.status);
        error.status = res.status;
        throw error;
      }
      return data;
    }
  };

  const renderDeal = async (id) => {
    const d = await api('/api/deals/' + id);
    const ref = card(T.referral);
    if (d.referral) ref.appendChild(list('sf-facts', [[T.code, d.referral.code], [T.referrer, person(d.referral.referrer)], ...verdict(d.referral)]));
    else ref.appendChild(h('p', 'sf-muted', T.noReferral));
    const rewards = card(T.rewards);
    if (d.entries.length) {
      rewards.appendChild(table([T.who, T.reason, T.amount, T.status], d.entries.map((e) => [person(e.member), reason(e), amountCell(e.amount, d.currency), badge(e.status)])));
    } else {
      rewards.appendChild(h('p', 'sf-muted', T.noRewards));
    }
    const client = card(T.client);
    if (d.client) {
      client.appendChild(list('sf-facts', [[T.client, person(d.client)], [T.balance, money(d.client.balance, d.currency)], [T.pending, money(d.client.pending, d.currency)]]));
    } else {
      client.appendChild(h('p', 'sf-muted', T.clientNotInProgram));
    }
  };

  // A rejection shows its reason (SPEC 5); an admin's override shows who accepted it and why.
  const verdict = (r) => {
    const why = r.rejectReason ? T.rejectReasons[r.rejectReason] || r.rejectReason : '';
    if (r.status === 'rejected') return [[T.rejected, why]];
    if (r.override) return [[T.overridden, '#' + r.override.by + ' — ' + r.override.comment + (why ? ' (' + why + ')' : '')]];
    return [];
  };

  const renderMember = async (entity, id) => {
    const m = await api('/api/members/' + entity + '/' + id);
    if (!m.enrolled && !m.balance && !m.pending && !m.referrals && !m.referrer && !m.referral && !m.ledger.length) {
      card().appendChild(h('p', 'sf-empty', T.notInProgram));
      return;
    }
    const main = card();
    if (m.enrolled) {
      main.appendChild(h('div', 'sf-code', m.code));
      const row = main.appendChild(h('div', 'sf-row'));
      const link = row.appendChild(h('a', 'sf-link', m.link));
      link.href = m.link;
      link.target = '_blank';
      link.rel = 'noopener';
      const copy = row.appendChild(h('button', '', T.copy));
      copy.type = 'button';
      copy.addEventListener('click', () => {
        navigator.clipboard.writeText(m.link).then(() => { copy.textContent = T.copied; }, (e) => console.error(e));
      });
    } else {
      main.appendChild(h('p', 'sf-muted', T.notEnrolled));
    }
    const stats = list('sf-stats', [
      [T.balance, money(m.balance, m.currency)],
      [T.pending, money(m.pending, m.currency)],
      [T.tier, m.tier],
      [T.referrals, m.referrals],
    ]);
    stats.style.marginTop = '12px';
    main.appendChild(stats);
    if (m.referrer) main.appendChild(h('div', 'sf-row')).append(h('span', 'sf-muted', T.referrer + ':'), person(m.referrer));
    if (m.referral && verdict(m.referral).length) main.appendChild(list('sf-facts', [[T.code, m.referral.code], ...verdict(m.referral)]));
    const history = card(T.history);
    if (m.ledger.length) {
      history.appendChild(table([T.date, T.reason, T.amount, T.status, T.deal], m.ledger.map((e) => [day(e.at), e.comment ? reason(e) + ' — ' + e.comment : reason(e), amountCell(e.amount, m.currency), badge(e.status), e.dealId ? '#' + e.dealId : '—'])));
    } else {
      history.appendChild(h('p', 'sf-muted', T.noHistory));
    }
  };

  const renderProgram = async () => {
    let answer;
    try {
      answer = await api('/api/program');
    } catch (e) {
      if (e.status !== 403) throw e;
      card().appendChild(h('p', 'sf-empty', T.adminsOnly));
      return;
    }
    const p = answer.program;
    const r = p.referral;
    const reward = (x) => ('percent' in x ? x.percent + ' % ' + T.ofDeal : money(x.fixed, p.currency));
    const c = card(T.program + ', ' + T.version + ' ' + answer.version);
    c.appendChild(list('sf-facts', [
      [T.referralProgram, r.enabled ? T.enabled : T.disabled],
      [T.levels, r.levels.map((x, i) => T.levelN + ' ' + (i + 1) + ': ' + reward(x)).join('; ')],
      [T.welcome, r.referee ? reward(r.referee) : T.none],
      [T.qualify, r.qualify === 'every_won_deal' ? T.every_won_deal.replace('{n}', r.windowDays) : T.first_won_deal],
      [T.holdDays, String(r.holdDays)],
      [T.cashback, p.cashback.enabled ? (p.cashback.percent !== undefined ? p.cashback.percent + ' %' : T.byTier) : T.disabled],
      [T.tiers, p.tiers.levels.map((t) => t.name).join(', ') || T.none],
      [T.expiry, p.expiry.days ? String(p.expiry.days) : T.never],
      [T.redemption, p.redemption.maxPercentOfDeal + ' % ' + T.ofDeal],
    ]));
    c.appendChild(h('p', 'sf-muted', T.readOnly)).style.marginTop = '12px';
  };

  const fit = () =>
    Promise.race([$b24.parent.fitWindow(), new Promise((resolve) => setTimeout(resolve, 1500))]).catch((e) => console.error(e));

  const fail = (text) => {
    content.appendChild(h('p', 'error', text)).id = 'message';
    document.body.dataset.state = 'error';
  };

  (async () => {
    try {
      $b24 = await B24Js.initializeB24Frame();
    } catch (e) {
      console.error(e);
      sdkStatus.textContent = T.sdkFailed;
      fail(T.sdkFailed);
      return;
    }
    const placement = $b24.placement.placement;
    const options = $b24.placement.options || {};
    sdkStatus.textContent = T.sdkReady + ' ' + placement;
    document.body.dataset.placement = placement;
    try {
      const entityId = String(options.ID || '');
      const needId = () => {
        if (!/^[1-9][0-9]*$/.test(entityId)) throw new Error(T.noEntity);
        return entityId;
      };
      if (placement === 'CRM_DEAL_DETAIL_TAB') await renderDeal(needId());
      else if (placement === 'CRM_CONTACT_DETAIL_TAB') await renderMember('contact', needId());
      else if (placement === 'CRM_LEAD_DETAIL_TAB') await renderMember('lead', needId());
      else if (placement === 'DEFAULT') await renderProgram();
      else throw new Error(T.unsupported + ' ' + placement);
      await fit();
      document.body.dataset.state = 'ready';
    } catch (e) {
      console.error(e);
      fail(T.failed + ' ' + (e && e.message ? e.message : String(e)));
      await fit();
    }
  })();
})();
`;

export function framePage(appBaseUrl: string, lang: Lang): string {
  const t = TEXT[lang];
  return page(
    t.title,
    `<p id="sdk-status" class="sf-status">${escapeHtml(t.loading)}</p>
<main id="content"></main>
<script>document.body.dataset.state = 'loading'; window.SARAFAN_TEXT = ${scriptJson(t)};</script>
<script src="${escapeHtml(appBaseUrl)}/static/b24jssdk.js"></script>
<script>${SCRIPT}</script>`,
    { head: STYLE, lang },
  );
}
