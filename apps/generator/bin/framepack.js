#!/usr/bin/env node
// The installed `framepack` command: runs the built CLI (a committed shim, so the bin exists before the first build).
// node:sqlite (the job queue) is stable in use but still flagged experimental on Node 22: keep that one notice quiet.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'ExperimentalWarning' && String(warning).includes('SQLite')) return;
  return emitWarning.call(process, warning, ...rest);
};
const { main } = await import('../dist/cli.js');
await main();
