import { ValidationError } from './errors.js';
import type { AddJobOptions, JobParams } from './types.js';

const MAX_DEPTH = 32;

/**
 * The generic params validator (the default for tests and for callers without a schema): params must be a plain
 * JSON object of JSON values (no undefined, functions, NaN/Infinity, class instances), at most `maxBytes` as JSON.
 * Returns a deep copy.
 */
export function jsonParams(params: unknown, maxBytes = 1 << 20): JobParams {
  if (!isPlainObject(params)) throw new ValidationError('must be a JSON object', 'params');
  checkJson(params, 'params', 0);
  const text = JSON.stringify(params);
  if (Buffer.byteLength(text) > maxBytes) throw new ValidationError(`is larger than ${maxBytes} bytes as JSON`, 'params');
  return JSON.parse(text) as JobParams;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function checkJson(v: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new ValidationError(`nested deeper than ${MAX_DEPTH} levels`, path);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValidationError('must be a finite number', path);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJson(x, `${path}[${i}]`, depth + 1));
    return;
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) checkJson(x, `${path}.${k}`, depth + 1);
    return;
  }
  throw new ValidationError(`is not a JSON value (${typeof v})`, path);
}

/** An uploaded file in a JSON submission: base64 content and an optional file name. */
export interface Base64File {
  base64: string;
  filename?: string;
}

/**
 * The submission envelope the HTTP API accepts (as JSON; multipart carries the same fields as form fields, with
 * files as file parts):
 * ```
 * { "params": { ... },                 // required, checked by the injected params validator
 *   "name": "optional label",
 *   "priority": 0,                     // integer, higher runs first
 *   "maxAttempts": 3,                  // integer 1..100
 *   "files": { "<param>": { "base64": "...", "filename": "in.png" } } }   // optional uploads
 * ```
 * Each uploaded file is stored by the server and its path is written into `params[<param>]` before validation;
 * a file already on the server's disk is simply given by path inside params.
 */
export interface Submission {
  params: Record<string, unknown>;
  options: AddJobOptions;
  files: Record<string, Base64File>;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const ENVELOPE_KEYS = new Set(['params', 'name', 'priority', 'maxAttempts', 'files']);

export function parseSubmission(body: unknown): Submission {
  if (!isPlainObject(body)) throw new ValidationError('request body must be a JSON object with a "params" object');
  for (const k of Object.keys(body)) {
    if (!ENVELOPE_KEYS.has(k)) throw new ValidationError(`unknown field (expected ${[...ENVELOPE_KEYS].join(', ')})`, k);
  }
  if (!isPlainObject(body.params)) throw new ValidationError('is required and must be a JSON object', 'params');
  const options = parseJobOptions(body);
  const files: Record<string, Base64File> = {};
  if (body.files !== undefined) {
    if (!isPlainObject(body.files)) throw new ValidationError('must be an object of { base64, filename? }', 'files');
    for (const [k, f] of Object.entries(body.files)) {
      if (!PARAM_NAME.test(k)) throw new ValidationError('is not a valid parameter name', `files.${k}`);
      if (!isPlainObject(f) || typeof f.base64 !== 'string') throw new ValidationError('must be { base64: string, filename?: string }', `files.${k}`);
      if (f.filename !== undefined && typeof f.filename !== 'string') throw new ValidationError('must be a string', `files.${k}.filename`);
      if (!/^[A-Za-z0-9+/=\s_-]*$/.test(f.base64)) throw new ValidationError('is not base64', `files.${k}.base64`);
      files[k] = { base64: f.base64, ...(f.filename !== undefined ? { filename: f.filename } : {}) };
    }
  }
  return { params: body.params, options, files };
}

/** name / priority / maxAttempts from an object whose values may be numbers or (multipart, CLI) strings. */
export function parseJobOptions(src: Record<string, unknown>): AddJobOptions {
  const out: AddJobOptions = {};
  if (src.name !== undefined && src.name !== null) {
    if (typeof src.name !== 'string' || src.name.length > 200) throw new ValidationError('must be a string of at most 200 characters', 'name');
    out.name = src.name;
  }
  const int = (key: 'priority' | 'maxAttempts', lo: number, hi: number) => {
    const v = src[key];
    if (v === undefined || v === null || v === '') return;
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) throw new ValidationError(`must be an integer from ${lo} to ${hi}`, key);
    out[key] = n;
  };
  int('priority', -1_000_000, 1_000_000);
  int('maxAttempts', 1, 100);
  return out;
}

/** Parses `key=value` pairs from the CLI: the value is JSON when it parses as JSON, else a string. Dots nest. */
export function applyAssignments(params: Record<string, unknown>, assignments: readonly string[]): Record<string, unknown> {
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new ValidationError(`expected key=value, got "${a}"`, '--set');
    const key = a.slice(0, eq).trim();
    const raw = a.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* a plain string */
    }
    const parts = key.split('.');
    if (parts.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
      throw new ValidationError(`invalid key "${key}"`, '--set');
    }
    let obj = params;
    for (const p of parts.slice(0, -1)) {
      if (!isPlainObject(obj[p])) obj[p] = {};
      obj = obj[p] as Record<string, unknown>;
    }
    obj[parts[parts.length - 1]!] = value;
  }
  return params;
}
