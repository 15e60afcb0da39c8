/** A debug-level pino logger whose lines are kept in memory, so tests can assert what was (and was not) logged. */
import { Writable } from 'node:stream';
import { createLogger } from '../../server/logger.js';

export function captureLogs(): { log: ReturnType<typeof createLogger>; logs: string[] } {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), logs };
}
