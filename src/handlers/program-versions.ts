/**
 * Program versions of a portal. A fresh install starts with the default program of SPEC 5.1
 * as version 1; every change stores a new version, and a credit records the version that
 * priced it. Parsed documents are immutable, so they are cached per (portal, version).
 */
import { AppError } from './errors.js';
import { DEFAULT_PROGRAM, parseProgram, type Program } from '../rules/program.js';
import type { ProgramRepo, ProgramVersion } from './ports.js';

export interface LoadedProgram {
  version: number;
  program: Program;
}

const parsed = new Map<string, Program>();

/** Keyed by the stored row too: a CLEAN uninstall deletes versions and numbering restarts. */
function parseStored(portalId: number, stored: ProgramVersion): Program {
  const { version, document } = stored;
  const key = `${portalId}:${version}:${stored.createdAt.getTime()}`;
  const hit = parsed.get(key);
  if (hit) return hit;
  const result = parseProgram(document);
  if (!result.ok) {
    throw new AppError('internal', `Stored program version ${version} of portal ${portalId} is invalid`, result.errors);
  }
  if (parsed.size > 10_000) parsed.clear();
  parsed.set(key, result.program);
  return result.program;
}

/** The version in force; creates version 1 (the default program) when the portal has none. */
export async function currentProgram(programs: ProgramRepo, portalId: number, now: Date): Promise<LoadedProgram> {
  const current = (await programs.current(portalId)) ?? (await programs.create(portalId, DEFAULT_PROGRAM, null, now));
  return { version: current.version, program: parseStored(portalId, current) };
}

export async function programVersion(programs: ProgramRepo, portalId: number, version: number): Promise<LoadedProgram> {
  const stored = await programs.get(portalId, version);
  if (!stored) throw new AppError('internal', `Program version ${version} of portal ${portalId} is missing`);
  return { version, program: parseStored(portalId, stored) };
}
