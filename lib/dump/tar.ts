/**
 * A minimal POSIX tar (pax interchange format) writer: one header per
 * member, with a pax extended header in front when ustar's fields cannot hold
 * the member exactly (long or non-UTF-8 names and link targets, sizes of
 * 8 GiB and more, large ids, times before 1970 or with nanoseconds, long
 * owner names, extended attributes as SCHILY.xattr records, which GNU tar
 * and bsdtar restore). Members are written by the caller: header(), then the
 * content, then padding().
 */

export const BLOCK = 512;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' };

export interface TarMember {
  /** Path in the archive (raw bytes; a directory's without the trailing "/", which is added). */
  name: Buffer;
  type: TarType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  /** Content bytes that follow (files only). */
  size: number;
  mtime: { sec: number; nsec: number };
  /** Link target: a symlink's target, or a hardlink's archive path. */
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  xattrs?: [Buffer, Buffer][];
}

const MAX_OCTAL = (digits: number) => 8 ** digits - 1;

function putString(block: Buffer, offset: number, length: number, value: Buffer): void {
  value.copy(block, offset, 0, Math.min(length, value.length));
}

function putOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length - 1 digits and a NUL.
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'latin1');
}

/** One pax record: "LEN key=value\n", LEN counting the whole record in decimal. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

const isUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

function ustarHeader(m: {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Buffer;
  user?: string;
  group?: string;
  devmajor?: number;
  devminor?: number;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  putString(h, 0, 100, m.name);
  putOctal(h, 100, 8, m.mode);
  putOctal(h, 108, 8, m.uid);
  putOctal(h, 116, 8, m.gid);
  putOctal(h, 124, 12, m.size);
  putOctal(h, 136, 12, m.mtime);
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h.write(m.typeflag, 156, 1, 'latin1');
  if (m.linkname) putString(h, 157, 100, m.linkname);
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  if (m.user) putString(h, 265, 32, Buffer.from(m.user, 'utf8'));
  if (m.group) putString(h, 297, 32, Buffer.from(m.group, 'utf8'));
  putOctal(h, 329, 8, m.devmajor ?? 0);
  putOctal(h, 337, 8, m.devminor ?? 0);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** The bytes before a member's content: an optional pax extended header, then the ustar header. */
export function tarHeader(m: TarMember): Buffer {
  const name = m.type === 'dir' ? Buffer.concat([m.name, Buffer.from('/')]) : m.name;
  const records: Buffer[] = [];
  // Names that fit are written raw into the ustar fields; longer ones go into pax
  // records, marked as raw bytes (hdrcharset) when they are not UTF-8.
  const longName = name.length > 100;
  const longLink = m.linkname !== undefined && m.linkname.length > 100;
  if ((longName && !isUtf8(name)) || (longLink && !isUtf8(m.linkname!))) records.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
  if (longName) records.push(paxRecord('path', name));
  if (longLink) records.push(paxRecord('linkpath', m.linkname!));
  if (m.size > MAX_OCTAL(11)) records.push(paxRecord('size', Buffer.from(String(m.size))));
  if (m.uid > MAX_OCTAL(7)) records.push(paxRecord('uid', Buffer.from(String(m.uid))));
  if (m.gid > MAX_OCTAL(7)) records.push(paxRecord('gid', Buffer.from(String(m.gid))));
  const { sec, nsec } = m.mtime;
  if (nsec !== 0 || sec < 0 || sec > MAX_OCTAL(11)) records.push(paxRecord('mtime', Buffer.from(paxTime(sec, nsec))));
  if (m.user && Buffer.byteLength(m.user) > 31) records.push(paxRecord('uname', Buffer.from(m.user, 'utf8')));
  if (m.group && Buffer.byteLength(m.group) > 31) records.push(paxRecord('gname', Buffer.from(m.group, 'utf8')));
  for (const [k, v] of m.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k.toString('latin1')}`, v));
  const header = ustarHeader({
    name,
    mode: m.mode & 0o7777,
    uid: m.uid > MAX_OCTAL(7) ? 0 : m.uid,
    gid: m.gid > MAX_OCTAL(7) ? 0 : m.gid,
    size: m.size > MAX_OCTAL(11) ? 0 : m.size,
    mtime: sec < 0 || sec > MAX_OCTAL(11) ? 0 : sec,
    typeflag: TYPEFLAG[m.type],
    linkname: m.linkname,
    user: m.user && Buffer.byteLength(m.user) <= 32 ? m.user : undefined,
    group: m.group && Buffer.byteLength(m.group) <= 32 ? m.group : undefined,
    devmajor: m.devmajor,
    devminor: m.devminor,
  });
  if (!records.length) return header;
  const data = Buffer.concat(records);
  const paxName = Buffer.concat([Buffer.from('PaxHeaders/'), lastComponent(name)]).subarray(0, 100);
  const pax = ustarHeader({ name: paxName, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, typeflag: 'x' });
  return Buffer.concat([pax, data, padding(data.length), header]);
}

function lastComponent(name: Buffer): Buffer {
  let end = name.length;
  while (end > 0 && name[end - 1] === 0x2f) end--;
  const start = name.lastIndexOf(0x2f, end - 1) + 1;
  return name.subarray(start, end);
}

/** "SEC.NSEC" with a negative time written as pax readers expect (-86400.25 is 1969-12-31T00:00:00.25). */
function paxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec);
  const frac = String(nsec).padStart(9, '0').replace(/0+$/, '');
  if (sec >= 0) return `${sec}.${frac}`;
  // sec + nsec/1e9 is negative: -(|sec| - 1) - (1 - nsec/1e9)
  const whole = sec + 1;
  const neg = String(1e9 - nsec).padStart(9, '0').replace(/0+$/, '');
  return `-${Math.abs(whole)}.${neg}`;
}

/** Zero bytes that complete a member of `size` content bytes to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest ? BLOCK - rest : 0);
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);
