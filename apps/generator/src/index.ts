export * from './section-loop.js';
