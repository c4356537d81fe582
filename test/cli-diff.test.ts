/**
 * obnam diff end to end: two real snapshots made by the CLI, with files
 * added, removed, changed in content and in metadata only, changed in type
 * (a file become a symlink, a directory become a file), a name that is not
 * UTF-8, and a directory large enough to be paged.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { obnam, obnamBytes, obnamOk } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const LATIN1 = Buffer.from('caf\xe9', 'latin1');
const MANY = 5000;
const manyName = (i: number) => `f${String(i).padStart(5, '0')}`;

describe('obnam diff', () => {
  let tmp: TempDir;
  let src: string;
  let env: Record<string, string>;
  let id1: string;
  let id2: string;

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: 'diff test' };
    const p = (...parts: string[]) => path.join(src, ...parts);
    await fs.mkdir(p('dir2file'), { recursive: true });
    await fs.mkdir(p('many'));
    await fs.mkdir(p('same', 'deeper'), { recursive: true });
    for (const name of ['keep.txt', 'content.txt', 'meta.txt', 'removed.txt', 'typechange']) await fs.writeFile(p(name), `${name}\n`);
    await fs.writeFile(p('dir2file', 'inner'), 'inner\n');
    await fs.writeFile(p('same', 'deeper', 'x'), 'x\n');
    await fs.writeFile(Buffer.concat([Buffer.from(src + '/'), LATIN1]), 'latin-1 name\n');
    for (let i = 0; i < MANY; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => fs.writeFile(p('many', manyName(i + j)), `${i + j}\n`)));
    }
    await obnamOk(['init'], { env });
    id1 = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot;

    await fs.writeFile(p('content.txt'), 'new content\n');
    await fs.chmod(p('meta.txt'), 0o600);
    await fs.rm(p('removed.txt'));
    await fs.writeFile(p('added.txt'), 'added\n');
    await fs.rm(p('typechange'));
    await fs.symlink('keep.txt', p('typechange'));
    await fs.rm(p('dir2file'), { recursive: true });
    await fs.writeFile(p('dir2file'), 'now a file\n');
    await fs.writeFile(Buffer.concat([Buffer.from(src + '/'), LATIN1]), 'latin-1 name, changed\n');
    await fs.writeFile(p('many', manyName(2500)), 'changed\n');
    await fs.rm(p('many', manyName(100)));
    await fs.writeFile(p('many', 'f09999'), 'added\n');
    id2 = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot;
  });
  after(async () => {
    await tmp?.remove();
  });

  const expected = () => [
    ['U', `${src}/`],
    ['+', `${src}/added.txt`],
    ['M', `${src}/caf\xe9`],
    ['M', `${src}/content.txt`],
    ['T', `${src}/dir2file`],
    ['-', `${src}/dir2file/inner`],
    ['U', `${src}/many/`],
    ['-', `${src}/many/${manyName(100)}`],
    ['M', `${src}/many/${manyName(2500)}`],
    ['+', `${src}/many/f09999`],
    ['U', `${src}/meta.txt`],
    ['-', `${src}/removed.txt`],
    ['T', `${src}/typechange`],
  ];

  it('names every change with its marker, in path order, names as raw bytes', async () => {
    const r = await obnamBytes(['diff', id1.slice(0, 10), 'latest', src], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString('latin1').split('\n');
    assert.equal(lines[0], `comparing snapshot ${id1.slice(0, 8)} to ${id2.slice(0, 8)} below ${src}:`);
    const changes = lines.filter((l) => /^[-+MUT] {4}\//.test(l)).map((l) => [l[0], l.slice(5)]);
    assert.deepEqual(changes, expected());
    const text = r.stdout.toString('latin1');
    assert.match(text, /added: {4}2 files, 0 directories, 0 others/);
    assert.match(text, /removed: {2}3 files, 0 directories, 0 others/);
    assert.match(text, /changed: {2}3 content \(M\), 3 metadata only \(U\), 2 type \(T\)/);
  });

  it('--json: one document with modifiers, types, changed fields and raw names', async () => {
    const r = await obnamOk(['diff', '--json', id1, id2, src], { env });
    const doc = JSON.parse(r.stdout) as {
      snapshot1: string;
      snapshot2: string;
      path: string;
      changes: { modifier: string; path: string; type: string; fields?: string[]; previous_type?: string; path_base64?: string }[];
      summary: Record<string, unknown>;
    };
    assert.equal(doc.snapshot1, id1);
    assert.equal(doc.snapshot2, id2);
    assert.equal(doc.path, src);
    const shown = doc.changes.map((c) => [c.modifier, c.path_base64 ? Buffer.from(c.path_base64, 'base64').toString('latin1') : c.path]);
    assert.deepEqual(
      shown,
      expected().map(([m, p]) => [m, p!.replace(/\/$/, '')]),
    );
    const by = (p: string) => doc.changes.find((c) => c.path === p)!;
    assert.deepEqual(by(`${src}/meta.txt`).fields?.filter((f) => f !== 'ctime'), ['mode']);
    assert.equal(by(`${src}/content.txt`).fields?.[0], 'content');
    assert.equal(by(`${src}/typechange`).type, 'symlink');
    assert.equal(by(`${src}/typechange`).previous_type, 'file');
    assert.equal(by(`${src}/dir2file`).previous_type, 'dir');
    assert.deepEqual(doc.summary, {
      added: { files: 2, dirs: 0, others: 0 },
      removed: { files: 3, dirs: 0, others: 0 },
      modified: 3,
      metadata: 3,
      type: 2,
    });
  });

  it('the whole snapshots, the other way round, and one path', async () => {
    const back = JSON.parse((await obnamOk(['diff', '--json', id2, id1], { env })).stdout) as { changes: { modifier: string; path: string }[] };
    const inSrc = back.changes.filter((c) => c.path.startsWith(src + '/'));
    assert.deepEqual(
      inSrc.filter((c) => c.modifier === '+').map((c) => c.path),
      [`${src}/dir2file/inner`, `${src}/many/${manyName(100)}`, `${src}/removed.txt`],
    );
    assert.deepEqual(
      inSrc.filter((c) => c.modifier === '-').map((c) => c.path),
      [`${src}/added.txt`, `${src}/many/f09999`],
    );
    const one = await obnamOk(['diff', id1, id2, `${src}/many/${manyName(2500)}`], { env });
    assert.deepEqual(
      one.stdout.split('\n').filter((l) => /^[-+MUT] /.test(l)),
      [`M    ${src}/many/${manyName(2500)}`],
    );
    const none = await obnamOk(['diff', id1, id2, `${src}/same`], { env });
    assert.deepEqual(
      none.stdout.split('\n').filter((l) => /^[-+MUT] /.test(l)),
      [],
    );
  });

  it('a snapshot diffed with itself has no changes; a path in neither is an error', async () => {
    const same = JSON.parse((await obnamOk(['diff', '--json', id1, id1], { env })).stdout) as { changes: unknown[] };
    assert.deepEqual(same.changes, []);
    const r = await obnam(['diff', id1, id2, '/no/such/path'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/no\/such\/path is in neither snapshot/);
    const bad = await obnam(['diff', id1, 'ffff'], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no snapshot ffff/);
  });
});
