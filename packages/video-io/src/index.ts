export * from './output/index.js';
export * from './input/index.js';
