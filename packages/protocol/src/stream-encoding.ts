import { isUtf8 } from 'node:buffer';
import type { StreamEncoding } from './messages.js';

/**
 * Command output is bytes, JSON holds text: valid UTF-8 travels as a string, anything else as
 * base64, so a binary or Latin-1 stdout arrives byte for byte.
 */
export function encodeStream(bytes: Buffer): { text: string; encoding: StreamEncoding } {
  return isUtf8(bytes) ? { text: bytes.toString('utf8'), encoding: 'utf8' } : { text: bytes.toString('base64'), encoding: 'base64' };
}

export function decodeStream(text: string, encoding: StreamEncoding): Buffer {
  return Buffer.from(text, encoding === 'base64' ? 'base64' : 'utf8');
}
