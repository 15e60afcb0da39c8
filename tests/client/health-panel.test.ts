/**
 * The admin page's health panel in happy-dom: registration items grouped by kind with
 * present / missing / misconfigured badges and counts, a registration that could not be read,
 * the last event, reconciliation lag and queue relative to the server's check; «Repair
 * installation» and «Retry» on a dead job call their endpoints, show busy state and errors, and
 * show the health after them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../client/src/api';
import HealthPanel from '../../client/src/views/admin/HealthPanel.vue';
import { health } from './fixtures';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

afterEach(() => {
  document.body.innerHTML = '';
});

function admin(lang: 'ru' | 'en' = 'en'): FakePortal {
  const p = new FakePortal();
  p.placement = 'DEFAULT';
  p.isAdmin = true;
  p.lang = lang;
  return p;
}

const healed = health({
  registration: health().registration!.map((i) => ({ ...i, present: true, problem: null })),
  deadJobs: [],
  queue: { queued: 0, running: 0, dead: 0, oldestQueuedAt: null },
});

describe('the health panel', () => {
  it('groups the registration by kind with badges and counts, and shows events, lag, queue and dead jobs', async () => {
    const api = new FakeApi().on('GET /api/health', health());
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    expect(wrapper.findAll('[data-testid^="health-group-"]').map((g) => g.attributes('data-testid'))).toEqual(['health-group-field', 'health-group-event', 'health-group-placement', 'health-group-robot']);
    expect(textOf(wrapper, 'health-summary')).toBe('Needing attention: 2. Press "Repair installation".');
    const fields = byTestId(wrapper, 'health-group-field');
    expect(fields.find('h3').text()).toBe('CRM fields 1 of 2 fine');
    expect(byTestId(wrapper, 'item-UF_CRM_SARAFAN_BALANCE (contact)').find('[data-testid="badge-missing"]').text()).toBe('Missing');
    expect(byTestId(wrapper, 'item-UF_CRM_SARAFAN_CODE (contact)').find('[data-testid="badge-present"]').text()).toBe('Present');
    const event = byTestId(wrapper, 'item-ONCRMDEALUPDATE');
    expect(event.find('[data-testid="badge-problem"]').text()).toBe('Misconfigured');
    expect(event.text()).toContain('bound to https://elsewhere.example.com/b24/events');
    expect(textOf(wrapper, 'health-last-event')).toBe('5 minutes ago');
    expect(textOf(wrapper, 'health-lag')).toBe('3 min');
    expect(textOf(wrapper, 'health-queue')).toBe('queued 3 · running 1 · dead 1');
    expect(textOf(wrapper, 'health-oldest')).toBe('oldest queued 2 hours ago');
    expect(textOf(wrapper, 'job-41')).toContain('projectioncontact:58QUERY_LIMIT_EXCEEDEDyesterday');
  });

  it('a registration the portal would not show is a warning, not a list', async () => {
    const api = new FakeApi().on('GET /api/health', health({ registration: null, registrationError: 'ACCESS_DENIED: the app lost its CRM scope' }));
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    expect(textOf(wrapper, 'health-summary')).toBe('Could not read the registration from the portal.');
    expect(byTestId(wrapper, 'health-registration-error').text()).toContain('ACCESS_DENIED: the app lost its CRM scope');
    expect(wrapper.findAll('[data-testid^="health-group-"]')).toHaveLength(0);
  });

  it('repair calls the endpoint once while busy, lists what it restored and shows the new health', async () => {
    const api = new FakeApi()
      .on('GET /api/health', health())
      .on('POST /api/health/repair', { repaired: [{ kind: 'field', name: 'UF_CRM_SARAFAN_BALANCE (contact)' }, { kind: 'event', name: 'ONCRMDEALUPDATE' }], health: healed })
      .hold('POST /api/health/repair');
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    await byTestId(wrapper, 'health-repair').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'health-repair').attributes('disabled')).toBeDefined();
    await byTestId(wrapper, 'health-repair').trigger('click');
    api.release('POST /api/health/repair');
    await flushPromises();
    expect(api.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/health', 'POST /api/health/repair']);
    expect(textOf(wrapper, 'health-repaired')).toBe('Restored: Field: UF_CRM_SARAFAN_BALANCE (contact)Event: ONCRMDEALUPDATE');
    expect(textOf(wrapper, 'health-summary')).toBe('Everything is in place.');
    expect(byTestId(wrapper, 'item-UF_CRM_SARAFAN_BALANCE (contact)').find('[data-testid="badge-present"]').exists()).toBe(true);
    expect(byTestId(wrapper, 'health-repair').attributes('disabled')).toBeUndefined();
  });

  it('a failed repair says why and keeps the health shown', async () => {
    const api = new FakeApi().on('GET /api/health', health()).on('POST /api/health/repair', new ApiError(502, 'portal_unavailable', 'the portal did not answer'));
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    await byTestId(wrapper, 'health-repair').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'health-repair-error').text()).toContain('the portal did not answer');
    expect(byTestId(wrapper, 'item-UF_CRM_SARAFAN_BALANCE (contact)').find('[data-testid="badge-missing"]').exists()).toBe(true);
  });

  it('«Retry» queues the dead job again and reloads the health; a refusal is shown at the job', async () => {
    const api = new FakeApi()
      .on('GET /api/health', health(), healed)
      .on('POST /api/jobs/41/retry', new ApiError(409, 'conflict', 'the job is not dead'), { id: 41, status: 'queued' });
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    await byTestId(wrapper, 'retry-41').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'retry-error-41').text()).toContain('the job is not dead');
    await byTestId(wrapper, 'retry-41').trigger('click');
    await flushPromises();
    expect(api.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/health', 'POST /api/jobs/41/retry', 'POST /api/jobs/41/retry', 'GET /api/health']);
    expect(byTestId(wrapper, 'job-41').exists()).toBe(false);
    expect(byTestId(wrapper, 'health-no-dead').text()).toBe('No failures.');
  });

  it('in Russian', async () => {
    const api = new FakeApi().on('GET /api/health', health());
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin('ru') });
    expect(byTestId(wrapper, 'health-group-robot').find('h3').text()).toBe('Роботы 1 из 1 в порядке');
    expect(textOf(wrapper, 'health-last-event')).toBe('5 минут назад');
    expect(byTestId(wrapper, 'health-repair').text()).toBe('Починить установку');
    expect(byTestId(wrapper, 'retry-41').text()).toBe('Повторить');
  });

  it('a failed load offers a retry', async () => {
    const api = new FakeApi().on('GET /api/health', new ApiError(403, 'forbidden', 'Admins only'), health());
    const { wrapper } = await mountView(HealthPanel, {}, { api, portal: admin() });
    expect(byTestId(wrapper, 'state-error').text()).toContain('Only portal administrators can do this.');
    await byTestId(wrapper, 'state-error').find('button').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'health-panel').exists()).toBe(true);
  });
});
