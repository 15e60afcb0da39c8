import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes SQL migrations from the schema; they are applied at start-up by
// openStore (src/store/open-store.ts), never by drizzle-kit against a live database.
export default defineConfig({
  schema: './src/store/schema.ts',
  out: './src/store/migrations',
  dialect: 'postgresql',
});
