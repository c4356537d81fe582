/**
 * bech32m (BIP 173 with the checksum constant of BIP 350): a case-insensitive
 * text encoding with a human-readable prefix and a six-character checksum.
 * Used for public keys (pubkey.ts). Errors are plain messages for the caller
 * to wrap: this module knows nothing of what is encoded.
 */

const ALPHABET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32M_CONST = 0x2bc830a3;
const MAX_LENGTH = 90;
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >>> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

function checksum(hrp: string, data: readonly number[]): number[] {
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST;
  const out: number[] = [];
  for (let i = 0; i < 6; i++) out.push((mod >>> (5 * (5 - i))) & 31);
  return out;
}

/** Regroups bits: 8 to 5 with zero padding (encoding), or 5 to 8 refusing non-zero padding (decoding). */
function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & max);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || acc !== 0) {
    throw new Error(bits >= from ? 'has a length that is not a whole number of bytes' : 'has non-zero padding bits');
  }
  return out;
}

/** Encodes bytes under a lowercase human-readable part. */
export function bech32mEncode(hrp: string, bytes: Uint8Array): string {
  const data = convertBits([...bytes], 8, 5, true);
  const s = hrp + '1' + [...data, ...checksum(hrp, data)].map((v) => ALPHABET[v]).join('');
  if (s.length > MAX_LENGTH) throw new Error(`bech32m string would be ${s.length} characters (at most ${MAX_LENGTH})`);
  return s;
}

/** The 5-bit values of a bech32m string, checksum verified; throws Error with the reason. */
export function bech32mDecodeWords(text: string): { hrp: string; words: number[] } {
  if (text.length > MAX_LENGTH) throw new Error(`longer than ${MAX_LENGTH} characters`);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 33 || c > 126) throw new Error('contains a character that is not printable ASCII');
  }
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) throw new Error('mixes upper and lower case');
  const sep = lower.lastIndexOf('1');
  if (sep < 1) throw new Error('has no prefix before the separator 1');
  if (sep + 7 > lower.length) throw new Error('is too short to hold a checksum');
  const hrp = lower.slice(0, sep);
  const words: number[] = [];
  for (const ch of lower.slice(sep + 1)) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`contains the character ${JSON.stringify(ch)}, which bech32m does not use`);
    words.push(v);
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== BECH32M_CONST) throw new Error('has a wrong checksum (mistyped or truncated?)');
  return { hrp, words: words.slice(0, -6) };
}

/** Decodes a bech32m string to its prefix and bytes. */
export function bech32mDecode(text: string): { hrp: string; bytes: Uint8Array } {
  const { hrp, words } = bech32mDecodeWords(text);
  return { hrp, bytes: Uint8Array.from(convertBits(words, 5, 8, false)) };
}
