/**
 * Vitest global set-up of the browser suite: the Vue client must be built (dist/client) for the
 * frames to show it. CI has built it (`npm run build`); a local run builds it when it is missing
 * or older than its sources, as `npm start` does.
 */
import { ensureClient } from '../../server/ensure-client.js';

export default async function setup(): Promise<void> {
  await ensureClient((line) => console.log(line));
}
