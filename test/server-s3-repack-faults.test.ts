/**
 * kill -9 of `obnam-server repack` on S3 storage (s3rver on 127.0.0.1), at
 * random points (a few seeds), and of `serve` during its background repack,
 * then on fresh copies aimed from early to late until one kill lands
 * mid-repack (bounded). After each kill: the next
 * repack completes and does what a dry run (another process) announced,
 * fsck passes through a fresh server, the kept snapshot restores byte for
 * byte, and the forgotten snapshots' bytes are gone (what is left beyond the
 * kept snapshot's is unused space within half the limit).
 *
 * The namespace is prepared once under one prefix of the bucket (four
 * snapshots, each stored as packs of its own, three forgotten and swept,
 * nothing repacked yet) and copied blob by blob to a new prefix, with a copy
 * of the server directory pointing at it, for every kill.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { startS3, S3_KEY, TestS3 } from './helpers/s3.js';
import { assertKeptSnapshotServed, OBNAM_SERVER, obnamServerOk, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const AWS = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY };
const PASS = 's3 repack faults';
const SEEDS = ['one', 'two', 'three'];
const FILES = 30;
const FILE_BYTES = 30_000;
/** What the kept snapshot holds, plus room for trees and indexes. */
const KEPT_BYTES = 5 * FILES * FILE_BYTES + 300_000;

let s3: TestS3;
let tmp: TempDir;

before(async () => {
  s3 = await startS3();
  tmp = await tempDir('obnam-s3-repack-faults-');
});

after(async () => {
  await tmp?.remove();
  await s3?.stop();
});

function delayOf(seed: string, maxMs: number): number {
  return prngBytes(seed, 4).readUInt32BE(0) % Math.max(1, Math.round(maxMs));
}

interface Template {
  dir: string;
  prefix: string;
  token: string;
  fingerprint: string;
  kept: string;
  src: string;
  want: string;
}

/** Blobs under a prefix: name (after the prefix) -> size. */
async function blobs(prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const b of s3.backend(prefix).list('')) out.set(b.name, b.size);
  return out;
}

async function prepare(): Promise<Template> {
  const dir = path.join(tmp.path, 'template');
  const prefix = 'template';
  const init = await obnamServerOk(['init', dir, '--storage', `s3://${s3.bucket}/${prefix}`, '--s3-endpoint', s3.endpoint], { env: AWS });
  const fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
  const token = (await obnamServerOk(['client', 'add', 'alice', '--dir', dir], { env: AWS })).stdout.trim();
  const src = path.join(tmp.path, 'src');
  fs.mkdirSync(src);
  const srv = await spawnServer(dir, '127.0.0.1:0', [], AWS);
  const env = { env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: PASS, HOME: tmp.path } };
  try {
    await obnamOk(['init'], env);
    for (let i = 0; i < 4; i++) {
      // Each snapshot adds files every later one keeps, and files of its own (its own packs: every
      // request's objects are flushed to the bucket).
      for (let j = 0; j < FILES; j++) fs.writeFileSync(path.join(src, `kept${i}-${j}.bin`), prngBytes(`kept ${i} ${j}`, FILE_BYTES));
      for (let j = 0; j < FILES; j++) fs.writeFileSync(path.join(src, `own${j}.bin`), prngBytes(`own ${i} ${j}`, FILE_BYTES));
      await obnamOk(['backup', src], env);
      if (i < 3) for (let j = 0; j < FILES; j++) fs.rmSync(path.join(src, `own${j}.bin`));
    }
    const snaps = (JSON.parse((await obnamOk(['list', '--json'], env)).stdout) as { id: string }[]).map((x) => x.id);
    await obnamOk(['forget', ...snaps.slice(0, 3)], env);
    const r = JSON.parse((await obnamOk(['prune', '--exclusive', '--max-unused', '100', '--json'], env)).stdout);
    assert.ok(r.deleted.chunks >= 3 * FILES && !r.repack.packsRemoved, JSON.stringify(r));
    const want = path.join(tmp.path, 'want');
    fs.cpSync(src, want, { recursive: true });
    return { dir, prefix, token, fingerprint, kept: snaps[3]!, src, want };
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}

/** A fresh copy of the template: its blobs under a new prefix, and a server directory pointing there. */
async function copyOf(t: Template, name: string): Promise<{ dir: string; prefix: string }> {
  const from = s3.backend(t.prefix);
  const to = s3.backend(name);
  for await (const b of from.list('')) await to.put(b.name, await from.get(b.name));
  const dir = path.join(tmp.path, name);
  fs.cpSync(t.dir, dir, { recursive: true });
  const config = path.join(dir, 'obnam-server.yaml');
  const text = fs.readFileSync(config, 'utf8');
  const moved = text.replace(`s3://${s3.bucket}/${t.prefix}"`, `s3://${s3.bucket}/${name}"`);
  assert.notEqual(moved, text);
  fs.writeFileSync(config, moved);
  return { dir, prefix: name };
}

/** Starts `obnam-server ARGS` (S3 credentials in its environment); SIGKILL `delayMs` after `marker` appears. */
function killAfter(args: string[], marker: RegExp, delayMs: number): Promise<{ killed: boolean; marked: boolean; out: string; msAfterMarker: number }> {
  const child = spawn(process.execPath, [OBNAM_SERVER, ...args], { env: baseEnv(AWS), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let markedAt = 0;
  const seen = (d: Buffer) => {
    out += d;
    if (!markedAt && marker.test(out)) {
      markedAt = performance.now();
      const t = setTimeout(() => child.kill('SIGKILL'), delayMs);
      child.on('close', () => clearTimeout(t));
    }
  };
  const bound = setTimeout(() => child.kill('SIGKILL'), 120_000); // never hangs: the marker did not come
  child.on('close', () => clearTimeout(bound));
  child.stdout!.on('data', seen);
  child.stderr!.on('data', seen);
  return new Promise((resolve) => child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL', marked: markedAt > 0, out, msAfterMarker: performance.now() - markedAt })));
}

/**
 * After a kill: whether it cut the repack off midway (the blobs changed, and
 * work is left); then the next repack completes, and fsck and a restore
 * through a fresh server pass.
 */
async function check(t: Template, copy: { dir: string; prefix: string }, template: Map<string, number>, label: string): Promise<boolean> {
  const now = await blobs(copy.prefix);
  const changed = now.size !== template.size || [...now.keys()].some((k) => !template.has(k));
  const dry = JSON.parse((await obnamServerOk(['repack', copy.dir, '--dry-run', '--json'], { env: AWS })).stdout);
  const midway = changed && dry.total.packsRewritten > 0;
  const again = JSON.parse((await obnamServerOk(['repack', copy.dir, '--json'], { env: AWS })).stdout);
  assert.equal(again.ok, true, `${label}: the next repack completes`);
  // Every process indexes the same copy of an object a kill left twice (local-store.md 11.5).
  const plan = (r: typeof dry) => ({ packsRemoved: r.total.packsRemoved, packsRewritten: r.total.packsRewritten, objectsCopied: r.total.objectsCopied });
  assert.deepEqual(plan(again), plan(dry), `${label}: it does what the dry run said`);
  await assertKeptSnapshotServed(copy.dir, { ...t, passphrase: PASS }, tmp.path, label, AWS);
  // Left: the kept snapshot's bytes, and unused space (duplicates a kill left) within half the limit (5.1).
  const left = JSON.parse((await obnamServerOk(['repack', copy.dir, '--dry-run', '--json'], { env: AWS })).stdout);
  assert.equal(left.total.packsRemoved, 0, `${label}: the namespace is within its unused-space limit: ${JSON.stringify(left.total)}`);
  const unused: number = left.namespaces[0].result.unusedBytesBefore;
  let bytes = 0;
  for (const size of (await blobs(copy.prefix)).values()) bytes += size;
  assert.ok(bytes - unused < KEPT_BYTES, `${label}: ${bytes} bytes left in the bucket, ${unused} of them unused`);
  // The copy is done with: its blobs go.
  const b = s3.backend(copy.prefix);
  for (const name of now.keys()) await b.delete(name).catch(() => undefined);
  for await (const x of b.list('')) await b.delete(x.name).catch(() => undefined);
  return midway;
}

describe('obnam-server repack on S3 storage killed with SIGKILL', () => {
  it('obnam-server repack, and serve during its background repack, at random points, then aimed until one lands midway: the next repack completes, fsck passes, the kept snapshot restores byte for byte', async () => {
    const t = await prepare();
    const template = await blobs(t.prefix);
    let before = 0;
    for (const size of template.values()) before += size;
    assert.ok(before > KEPT_BYTES, `the template holds the forgotten snapshots' bytes (${before})`);
    // How long an uninterrupted repack takes from its first line here: the kills fall within it.
    const calibrate = await copyOf(t, 'calibrate');
    const whole = await killAfter(['repack', calibrate.dir], /repacking client alice/, 600_000);
    assert.ok(!whole.killed && /1 of 1 namespaces/.test(whole.out) && !/rewrote 0 of/.test(whole.out), whole.out);
    const span = whole.msAfterMarker;
    let midway = 0;
    let kills = 0;
    for (const seed of SEEDS) {
      const copy = await copyOf(t, `repack-${seed}`);
      const k = await killAfter(['repack', copy.dir], /repacking client alice/, delayOf(`s3 repack ${seed}`, span));
      if (k.killed) kills++;
      if (await check(t, copy, template, `repack-${seed}`)) midway++;
    }
    // serve, killed during its background repack of the idle namespace.
    for (const seed of SEEDS.slice(0, 2)) {
      const copy = await copyOf(t, `serve-${seed}`);
      const config = path.join(copy.dir, 'obnam-server.yaml');
      fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(/idle_seconds: \d+/, 'idle_seconds: 1'));
      const k = await killAfter(['serve', '--dir', copy.dir, '--listen', '127.0.0.1:0'], /background repack: looking at an idle namespace/, delayOf(`s3 serve ${seed}`, span));
      assert.ok(k.marked && k.killed, k.out);
      kills++;
      if (await check(t, copy, template, `serve-${seed}`)) midway++;
    }
    // Random kills may all miss the middle on a machine slower or faster than at calibration:
    // aim at it on fresh copies, from early to late, until one lands there (bounded).
    for (let attempt = 0; midway === 0 && attempt < 6; attempt++) {
      const copy = await copyOf(t, `repack-aimed-${attempt}`);
      const k = await killAfter(['repack', copy.dir], /repacking client alice/, span * (0.1 + 0.15 * attempt));
      if (k.killed) kills++;
      if (await check(t, copy, template, `repack-aimed-${attempt}`)) midway++;
    }
    console.log(`# an S3 repack takes ${Math.round(span)} ms here; ${kills} kills, ${midway} cut one off midway`);
    assert.ok(midway >= 1, 'at least one kill cut a repack off midway');
  });
});
