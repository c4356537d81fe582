/**
 * Public keys as one line of text: bech32m with the prefix "obnam-pk", so
 * "obnam-pk1" followed by 58 characters (format-spec/sharing.md 2.2).
 */
import { ObnamError } from '../errors.js';
import { bech32mDecode, bech32mEncode } from './bech32m.js';
import { X25519_BYTES } from './x25519.js';

export const PUBLIC_KEY_HRP = 'obnam-pk';
export const PUBLIC_KEY_TEXT_LENGTH = 67;

export function encodePublicKey(pk: Uint8Array): string {
  if (pk.length !== X25519_BYTES) throw new ObnamError('INTERNAL', `a public key is ${X25519_BYTES} bytes, not ${pk.length}`);
  return bech32mEncode(PUBLIC_KEY_HRP, pk);
}

/** The 32 bytes of a public key given as text; USAGE with the reason if it is not one. */
export function decodePublicKey(text: string): Uint8Array {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  const bad = (why: string): never => {
    throw new ObnamError('USAGE', `not an obnam public key: ${JSON.stringify(shown)} ${why}`);
  };
  let decoded: { hrp: string; bytes: Uint8Array };
  try {
    decoded = bech32mDecode(text.trim());
  } catch (e) {
    return bad((e as Error).message);
  }
  if (decoded.hrp !== PUBLIC_KEY_HRP) return bad(`starts with ${decoded.hrp}1, not ${PUBLIC_KEY_HRP}1`);
  if (decoded.bytes.length !== X25519_BYTES) return bad(`holds ${decoded.bytes.length} bytes, not ${X25519_BYTES}`);
  return decoded.bytes;
}
