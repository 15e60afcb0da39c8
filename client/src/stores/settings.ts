/**
 * The program settings form (issue 12): the draft document, validated as the admin types with
 * the server's own schema, a debounced live preview (POST /api/program/preview), save (PUT →
 * a new version) and the version history (GET /api/program/versions) with who saved each.
 * The debounce waits on deps.delay, so tests decide when it fires.
 */
import { defineStore } from 'pinia';
import { computed, reactive, ref, watch } from 'vue';
import type { ProgramPreviewAnswer, ProgramVersionsAnswer } from '../../../src/contract/admin';
import { DEFAULT_PROGRAM, parseCompleteProgram, parseProgram, type Program, type ProgramError } from '../../../src/rules/program';
import { ApiError } from '../api';
import { applyPreset, type PresetId } from '../components/settings/program-form';
import { useDeps } from '../context';
import type { Pipeline } from '../frame';
import { useProgramStore } from './program';

export const PREVIEW_DEBOUNCE_MS = 400;

/**
 * Typed as the program for the form's bindings; while the admin types it may hold what the
 * schema refuses (null, NaN, a bad string), which is the point of validating it.
 */
export type Draft = Program;

export const useSettingsStore = defineStore('settings', () => {
  const { api, portal, delay } = useDeps();
  const program = useProgramStore();

  const draft = ref<Draft>(structuredClone(DEFAULT_PROGRAM) as Draft);
  const loaded = ref(false);
  /** Server-side refusals (400 details), shown until the admin edits again. */
  const serverErrors = ref<ProgramError[]>([]);
  const saving = ref(false);
  const saved = ref<number | null>(null);
  const saveError = ref<string | null>(null);

  const checked = computed(() => parseCompleteProgram(draft.value));
  const errors = computed<ProgramError[]>(() => [...(checked.value.ok ? [] : checked.value.errors), ...serverErrors.value]);
  const valid = computed(() => checked.value.ok);

  /** The draft as plain JSON, as it goes on the wire (the reactive proxy is not a plain object). */
  const snapshot = (): Program => JSON.parse(JSON.stringify(draft.value)) as Program;

  function reset(p: Program): void {
    // Completed with the defaults of keys it lacks (a document stored by an older schema), and a
    // JSON copy: the program may come from another store, and a reactive proxy cannot be cloned.
    const parsed = parseProgram(JSON.parse(JSON.stringify(p)));
    draft.value = (parsed.ok ? parsed.program : JSON.parse(JSON.stringify(p))) as Draft;
    loaded.value = true;
  }

  function preset(id: PresetId): void {
    draft.value = applyPreset(draft.value as unknown as Record<string, unknown>, id) as unknown as Draft;
  }

  // -------------------------------------------------------------------------------------------
  // Preview
  // -------------------------------------------------------------------------------------------
  const deal = reactive({ amount: 100_000 as number | null, depth: 5 as number | null });
  const preview = ref<ProgramPreviewAnswer | null>(null);
  const previewError = ref<string | null>(null);
  let asked = 0;
  let shown = 0;

  async function refreshPreview(): Promise<void> {
    const ticket = ++asked;
    await delay(PREVIEW_DEBOUNCE_MS);
    // A later edit started its own wait: this one is superseded.
    if (ticket !== asked) return;
    const parsed = checked.value;
    if (!parsed.ok || deal.amount === null || !(deal.amount > 0) || deal.depth === null) return;
    const body = { program: snapshot(), deal: { amount: deal.amount, currency: parsed.program.currency, depth: deal.depth } };
    try {
      const answer = await api<ProgramPreviewAnswer>('/api/program/preview', { method: 'POST', body });
      // Answers may come back out of order: never let an older one replace a newer.
      if (ticket < shown) return;
      shown = ticket;
      preview.value = answer;
      previewError.value = null;
    } catch (e) {
      if (ticket < shown) return;
      shown = ticket;
      previewError.value = e instanceof ApiError ? (e.fields[0] ? `${e.fields[0].path}: ${e.fields[0].message}` : e.message) : String(e);
    }
  }

  watch(
    draft,
    () => {
      // Any edit makes the server's last refusal and the «saved» note out of date.
      serverErrors.value = [];
      saved.value = null;
      void refreshPreview();
    },
    { deep: true },
  );
  watch(deal, () => void refreshPreview());

  // -------------------------------------------------------------------------------------------
  // Save and history
  // -------------------------------------------------------------------------------------------
  const versions = ref<ProgramVersionsAnswer['versions']>([]);
  const versionsError = ref<string | null>(null);
  const userNames = reactive(new Map<number, string>());

  async function loadVersions(): Promise<void> {
    try {
      versions.value = (await api<ProgramVersionsAnswer>('/api/program/versions')).versions;
      versionsError.value = null;
    } catch (e) {
      versionsError.value = e instanceof Error ? e.message : String(e);
      return;
    }
    const ids = [...new Set(versions.value.map((v) => v.createdBy).filter((id): id is number => id !== null && !userNames.has(id)))];
    if (!ids.length) return;
    try {
      for (const [id, name] of await portal.userNames(ids)) userNames.set(id, name);
    } catch {
      // Names are a courtesy: without them a version reads «пользователь #5».
    }
  }

  async function save(): Promise<void> {
    const parsed = checked.value;
    if (!parsed.ok || saving.value) return;
    saving.value = true;
    saveError.value = null;
    try {
      const answer = await api<{ version: number; program: Program }>('/api/program', { method: 'PUT', body: snapshot() });
      program.answer = answer;
      reset(answer.program);
      await loadVersions();
      saved.value = answer.version;
    } catch (e) {
      if (e instanceof ApiError && e.status === 400 && e.fields.length) serverErrors.value = e.fields;
      else saveError.value = e instanceof Error ? e.message : String(e);
    } finally {
      saving.value = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The portal's pipelines for the multi-select
  // -------------------------------------------------------------------------------------------
  const pipelines = ref<Pipeline[]>([]);
  async function loadPipelines(): Promise<void> {
    try {
      pipelines.value = await portal.pipelines();
    } catch {
      // Without the list the admin still sees the ids already chosen.
      pipelines.value = [];
    }
  }

  return {
    draft,
    loaded,
    errors,
    valid,
    serverErrors,
    saving,
    saved,
    saveError,
    reset,
    preset,
    deal,
    preview,
    previewError,
    refreshPreview,
    versions,
    versionsError,
    userNames,
    loadVersions,
    save,
    pipelines,
    loadPipelines,
  };
});
