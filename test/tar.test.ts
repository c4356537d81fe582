/**
 * The tar writer (lib/dump/tar.ts) against GNU tar: members whose names,
 * ids, times or sizes do not fit ustar's fields get pax records that tar
 * reads back exactly.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BLOCK, padding, TAR_END, tarHeader, TarMember } from '../lib/dump/tar.js';
import { runCommand } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { xattrsOf } from './helpers/tree.js';

const base = (name: Buffer, extra: Partial<TarMember> = {}): TarMember => ({
  name,
  type: 'file',
  mode: 0o640,
  uid: 1000,
  gid: 1000,
  size: 0,
  mtime: { sec: 1_600_000_000, nsec: 0 },
  ...extra,
});

/** The pax records in front of a header, as key -> value bytes. */
function paxRecords(bytes: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (bytes[156] !== 'x'.charCodeAt(0)) return out;
  const size = parseInt(bytes.subarray(124, 136).toString('latin1'), 8);
  let data = bytes.subarray(BLOCK, BLOCK + size);
  while (data.length) {
    const space = data.indexOf(0x20);
    const len = Number(data.subarray(0, space).toString());
    const rec = data.subarray(space + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    out.set(rec.subarray(0, eq).toString('latin1'), rec.subarray(eq + 1));
    data = data.subarray(len);
  }
  return out;
}

describe('tar writer', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await tempDir();
  });
  after(async () => {
    await tmp?.remove();
  });

  it('fits ustar when it can: one header block, checksum valid', () => {
    const h = tarHeader(base(Buffer.from('short.txt'), { size: 5 }));
    assert.equal(h.length, BLOCK);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.equal(parseInt(h.subarray(148, 154).toString('latin1'), 8), sum);
    assert.equal(h.subarray(257, 263).toString('latin1'), 'ustar\0');
  });

  it('sizes, ids and times beyond ustar go into pax records', () => {
    const h = tarHeader(base(Buffer.from('huge'), { size: 2 ** 34, uid: 3_000_000, mtime: { sec: -86401, nsec: 750_000_000 }, user: 'u'.repeat(40) }));
    const pax = paxRecords(h);
    assert.equal(pax.get('size')?.toString(), String(2 ** 34));
    assert.equal(pax.get('uid')?.toString(), '3000000');
    assert.equal(pax.get('mtime')?.toString(), '-86400.25');
    assert.equal(pax.get('uname')?.toString(), 'u'.repeat(40));
    const ustar = h.subarray(h.length - BLOCK);
    assert.equal(parseInt(ustar.subarray(124, 136).toString('latin1'), 8), 0, 'ustar size field left at 0');
  });

  it('GNU tar reads long and non-UTF-8 names, large ids, times and xattrs back exactly', async () => {
    const longBinary = Buffer.concat([Buffer.from('d'.repeat(150) + '/'), Buffer.from([0x66, 0xff, 0xfe]), Buffer.from('x'.repeat(60))]);
    const members: [TarMember, Buffer][] = [
      [base(Buffer.from('d'.repeat(150)), { type: 'dir', mode: 0o755 }), Buffer.alloc(0)],
      [base(longBinary, { size: 4, uid: 3_000_000, mtime: { sec: 1_234_567_890, nsec: 123_456_789 } }), Buffer.from('abc\n')],
      [base(Buffer.from('old'), { size: 2, mtime: { sec: -86401, nsec: 750_000_000 }, xattrs: [[Buffer.from('user.k'), Buffer.from([0, 1, 255])]] }), Buffer.from('o\n')],
      [base(Buffer.from('ln'), { type: 'symlink', mode: 0o777, linkname: Buffer.from('t'.repeat(200)) }), Buffer.alloc(0)],
    ];
    const archive = path.join(tmp.path, 'a.tar');
    fs.writeFileSync(archive, Buffer.concat([...members.flatMap(([m, data]) => [tarHeader(m), data, padding(data.length)]), TAR_END]));
    const list = await runCommand('tar', ['--numeric-owner', '--full-time', '-tvf', archive]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /3000000\/1000 +4 2009-02-13 23:31:30\.123456789 d{150}\/f\\377\\376x{60}/);
    assert.match(list.stdout, /1969-12-31 00:00:00\.25 +old/);
    assert.match(list.stdout, / ln -> t{200}$/m);
    const out = path.join(tmp.path, 'out');
    fs.mkdirSync(out);
    const x = await runCommand('tar', ['-x', '--xattrs', '--xattrs-include=*', '-f', archive, '-C', out]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(fs.readFileSync(Buffer.concat([Buffer.from(out + '/'), longBinary])).toString(), 'abc\n');
    const st = fs.statSync(path.join(out, 'old'), { bigint: true });
    assert.equal(st.mtimeNs, -86401n * 1_000_000_000n + 750_000_000n);
    assert.equal(fs.readlinkSync(path.join(out, 'ln')), 't'.repeat(200));
    assert.equal(xattrsOf(path.join(out, 'old'))['user.k'], '0001ff');
  });
});
