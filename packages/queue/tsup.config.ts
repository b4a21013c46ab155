import { defineConfig } from 'tsup';

// Keep the `node:` prefix: `node:sqlite` only exists under that name (tsup strips it by default, which turns
// the import into the npm package "sqlite").
export default defineConfig({ removeNodeProtocol: false });
