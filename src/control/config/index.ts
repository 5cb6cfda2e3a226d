// Public entry point of the config module: loading/validation (load.ts), the typed model (types.ts) and
// route compilation plus lookup helpers (compile.ts). Control-thread only.
export * from './types.js';
export * from './load.js';
export * from './compile.js';
