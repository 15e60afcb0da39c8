/**
 * The portal's REST dialect: one gateway per installation (limits, batching, token refresh —
 * gateway.ts). Only adapters in src/bitrix speak it; use cases see the domain ports of
 * src/handlers/ports.ts (STYLE.md practice 16).
 */
import type { Installation, PortalGateways } from '../handlers/ports.js';

export interface BatchCommand {
  method: string;
  params?: Record<string, unknown>;
}

export type BatchOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: string; description: string };

export interface PortalGateway {
  /** One REST call with the stored tokens (refreshed and retried as needed). Throws PortalCallError. */
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>;
  /**
   * Any number of commands, sent as `batch` requests of ≤ 50 with halt=0; outcomes in input
   * order. Throws PortalCallError only when a whole batch request fails.
   */
  batch(commands: BatchCommand[]): Promise<BatchOutcome[]>;
  /** Every row of a list method, paged with `start=-1` and `>ID` filters. */
  list<T = Record<string, unknown>>(method: string, params: Record<string, unknown>, opts?: { idKey?: string; itemsKey?: string }): Promise<T[]>;
}

export interface PortalGatewayFactory extends PortalGateways {
  /** The one gateway of this installation (cached per portal; tokens persisted on rotation). */
  forInstallation(installation: Installation): PortalGateway;
}
