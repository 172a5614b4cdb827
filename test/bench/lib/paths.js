import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const BIN = (name) => `${ROOT}bin/${name}.js`;

/** A string as one sh word. */
export function sq(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`;
}
