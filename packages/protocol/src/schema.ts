import { ProtocolError } from './errors.js';

/**
 * A parser checks an untrusted JSON value and returns a fresh, typed copy holding only the
 * fields it knows, so unknown keys (including `__proto__`) never reach the program.
 */
export type Parser<T> = (value: unknown, path: string) => T;

function invalid(path: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new ProtocolError('TESTCLOUD_PROTOCOL_INVALID', `${path}: expected ${expected}, got ${got}`);
}

export const string: Parser<string> = (v, path) => (typeof v === 'string' ? v : invalid(path, 'a string', v));

export const boolean: Parser<boolean> = (v, path) => (typeof v === 'boolean' ? v : invalid(path, 'true or false', v));

export const integer: Parser<number> = (v, path) =>
  Number.isSafeInteger(v) ? (v as number) : invalid(path, 'an integer', v);

export const nonNegativeInteger: Parser<number> = (v, path) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : invalid(path, 'an integer >= 0', v);

export const positiveInteger: Parser<number> = (v, path) =>
  Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : invalid(path, 'an integer > 0', v);

export const nonNegativeNumber: Parser<number> = (v, path) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : invalid(path, 'a number >= 0', v);

export function literal<const L extends string>(...allowed: L[]): Parser<L> {
  return (v, path) => (allowed.includes(v as L) ? (v as L) : invalid(path, allowed.map((a) => `"${a}"`).join(' or '), v));
}

export function nullable<T>(inner: Parser<T>): Parser<T | null> {
  return (v, path) => (v === null ? null : inner(v, path));
}

/** A field that may be absent: yields `undefined` then, and the field is left out of the copy. */
export function optional<T>(inner: Parser<T>): Parser<T | undefined> {
  return (v, path) => (v === undefined ? undefined : inner(v, path));
}

export function array<T>(item: Parser<T>, { min = 0 } = {}): Parser<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) return invalid(path, 'an array', v);
    if (v.length < min) throw new ProtocolError('TESTCLOUD_PROTOCOL_INVALID', `${path}: expected at least ${min} item(s)`);
    const out = new Array<T>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = item(v[i], `${path}[${i}]`);
    return out;
  };
}

type Shape = Record<string, Parser<unknown>>;
type Parsed<S extends Shape> = { [K in keyof S]: ReturnType<S[K]> };

export function object<S extends Shape>(shape: S): Parser<Parsed<S>> {
  const keys = Object.keys(shape);
  return (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid(path, 'an object', v);
    const source = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const value = Object.hasOwn(source, key) ? source[key] : undefined;
      const parsed = shape[key]!(value, `${path}.${key}`);
      if (parsed !== undefined) out[key] = parsed;
    }
    return out as Parsed<S>;
  };
}
