export {};
export * from './output/index.js';
