import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestcloudError } from './errors.js';
import { isZ85Key } from './z85.js';

/** A CURVE key pair in Z85. */
export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

export class KeyError extends TestcloudError {}

/**
 * Writes NAME.key (both keys, mode 0600) and NAME.pub (the public key and NAME as a comment,
 * ready to append to an allow-list) in `dir`. Refuses to overwrite an existing key.
 */
export async function generateKeyFiles(dir: string, name: string): Promise<{ secretFile: string; publicFile: string; publicKey: string }> {
  if (!/^[\w.-]+$/.test(name)) throw new KeyError('TESTCLOUD_KEY_NAME', `"${name}" is not a usable key name (letters, digits, . _ - only)`);
  const { curveKeyPair } = await import('zeromq');
  const pair = curveKeyPair();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secretFile = join(dir, `${name}.key`);
  const publicFile = join(dir, `${name}.pub`);
  for (const file of [secretFile, publicFile]) {
    // lstat, not exists: a dangling symlink must count as "there" too.
    if (lstatOrNull(file)) throw new KeyError('TESTCLOUD_KEY_EXISTS', `${file} already exists; remove it first to make a new key`);
  }
  // 'wx' creates or fails: never through a symlink, never over a file that appeared meanwhile.
  writeFileSync(
    secretFile,
    `# testcloud CURVE key "${name}". Secret: keep this file private (mode 0600).\npublic-key ${pair.publicKey}\nsecret-key ${pair.secretKey}\n`,
    { mode: 0o600, flag: 'wx' },
  );
  chmodSync(secretFile, 0o600);
  writeFileSync(publicFile, `${pair.publicKey} ${name}\n`, { mode: 0o644, flag: 'wx' });
  return { secretFile, publicFile, publicKey: pair.publicKey };
}

function lstatOrNull(file: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(file);
  } catch {
    return null;
  }
}

/** Reads a NAME.key file, refusing one that anybody but its owner can read. */
export function readKeyPair(file: string): KeyPair {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (cause) {
    throw new KeyError('TESTCLOUD_KEY_MISSING', `cannot read key file ${file}: it does not exist or is not readable`, { cause });
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyError(
      'TESTCLOUD_KEY_PERMISSIONS',
      `key file ${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): run chmod 600 ${file}`,
    );
  }
  const fields = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*(public-key|secret-key)\s+(\S{40})\s*$/.exec(line);
    if (match) fields.set(match[1]!, match[2]!);
  }
  const publicKey = fields.get('public-key');
  const secretKey = fields.get('secret-key');
  if (!publicKey || !secretKey || !isZ85Key(publicKey) || !isZ85Key(secretKey)) {
    throw new KeyError('TESTCLOUD_KEY_INVALID', `${file} is not a testcloud key file (make one with "testbroker keygen DIR --name NAME")`);
  }
  return { publicKey, secretKey };
}

/** A public key given as the key itself (40 Z85 characters) or as a .pub / .key file. */
export function readPublicKey(keyOrFile: string): string {
  if (isZ85Key(keyOrFile)) return keyOrFile;
  let text: string;
  try {
    text = readFileSync(keyOrFile, 'utf8');
  } catch (cause) {
    throw new KeyError('TESTCLOUD_KEY_MISSING', `"${keyOrFile}" is neither a public key (40 Z85 characters) nor a readable file`, { cause });
  }
  const fromKeyFile = /^\s*public-key\s+(\S{40})\s*$/m.exec(text)?.[1];
  const first = fromKeyFile ?? text.trim().split(/\s+/)[0] ?? '';
  if (!isZ85Key(first)) throw new KeyError('TESTCLOUD_KEY_INVALID', `${keyOrFile} does not hold a public key`);
  return first;
}

/**
 * An allow-list in the shape of authorized_keys: one Z85 public key per line, then an optional
 * comment naming its owner; blank lines and # comments are skipped. Returns key -> comment.
 */
export function readAuthorizedKeys(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new KeyError('TESTCLOUD_KEY_MISSING', `cannot read allow-list ${file}`, { cause });
  }
  const keys = new Map<string, string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [key = '', ...comment] = line.split(/\s+/);
    if (!isZ85Key(key)) throw new KeyError('TESTCLOUD_KEY_INVALID', `${file}:${index + 1}: "${key.slice(0, 48)}" is not a Z85 public key`);
    keys.set(key, comment.join(' ') || `key ${key.slice(0, 8)}…`);
  });
  return keys;
}

/**
 * The CURVE settings of a worker or client from its --key and --broker-key: both or neither.
 */
/** What a worker, client or downstream broker needs to talk CURVE to a broker. */
export interface CurveSettings extends KeyPair {
  /** The broker's public key. */
  serverKey: string;
}

export function curveFromFlags(key: string | undefined, brokerKey: string | undefined): CurveSettings | undefined {
  if (key === undefined && brokerKey === undefined) return undefined;
  if (key === undefined) throw new KeyError('TESTCLOUD_KEY_MISSING', '--broker-key needs --key FILE too: our own key pair, whose .pub the broker must allow');
  if (brokerKey === undefined) throw new KeyError('TESTCLOUD_KEY_MISSING', "--key needs --broker-key too: the broker's public key (its .pub file or the key itself)");
  return { ...readKeyPair(key), serverKey: readPublicKey(brokerKey) };
}
