/**
 * kill -9 during repacking on obnam-server (local storage): of `obnam-server
 * repack` running beside `serve`, and of `serve` during its background
 * repack, each at a random point (a few seeds, bounded). Afterwards fsck
 * passes, the kept snapshot restores byte for byte, and the next repack
 * completes and gives the space back.
 *
 * The server directory is prepared once (four snapshots, each in its own
 * pack, half of each pack's bytes deleted by forget and prune) and copied for
 * every kill.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_REPACK } from '../server/config.js';
import { baseEnv, obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { bytesUnder, namespaceDirOf, assertKeptSnapshotServed, OBNAM_SERVER, obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'repack faults';
const SEEDS = ['one', 'two'];
/** Per snapshot: FILES files every later snapshot keeps, FILES of its own (one chunk each). */
const FILES = 40;
const FILE_BYTES = 30_000;
/** What the kept snapshot holds, plus room for trees and indexes. */
const KEPT_BYTES = 5 * FILES * FILE_BYTES + 300_000;

/** A delay in [0, maxMs) from a seed. */
function delayOf(seed: string, maxMs: number): number {
  return prngBytes(seed, 4).readUInt32BE(0) % Math.max(1, Math.round(maxMs));
}

interface Template {
  dir: string;
  token: string;
  fingerprint: string;
  /** The kept snapshot and a copy of what it holds. */
  kept: string;
  src: string;
  want: string;
}

async function prepare(tmp: TempDir): Promise<Template> {
  const dir = path.join(tmp.path, 'template');
  const init = await obnamServerOk(['init', dir]);
  const fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
  const token = (await obnamServerOk(['client', 'add', 'alice', '--dir', dir])).stdout.trim();
  const src = path.join(tmp.path, 'src');
  fs.mkdirSync(src);
  let srv = await spawnServer(dir);
  const env = () => ({ env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: PASS, HOME: tmp.path } });
  try {
    await obnamOk(['init'], env());
    for (let i = 0; i < 4; i++) {
      // Each snapshot adds a file every later one keeps, and one of its own.
      for (let j = 0; j < FILES; j++) fs.writeFileSync(path.join(src, `kept${i}-${j}.bin`), prngBytes(`kept ${i} ${j}`, FILE_BYTES));
      for (let j = 0; j < FILES; j++) fs.writeFileSync(path.join(src, `own${j}.bin`), prngBytes(`own ${i} ${j}`, FILE_BYTES));
      await obnamOk(['backup', src], env());
      if (i < 3) for (let j = 0; j < FILES; j++) fs.rmSync(path.join(src, `own${j}.bin`));
      // A restart finishes the server's journal: one pack per snapshot.
      srv.child.kill('SIGTERM');
      await srv.exited;
      srv = await spawnServer(dir);
    }
    const snaps = (JSON.parse((await obnamOk(['list', '--json'], env())).stdout) as { id: string }[]).map((x) => x.id);
    await obnamOk(['forget', ...snaps.slice(0, 3)], env());
    // Sweep now, repack later (the kills below interrupt the repack).
    const r = JSON.parse((await obnamOk(['prune', '--exclusive', '--max-unused', '100', '--json'], env())).stdout);
    assert.ok(r.deleted.chunks >= 3 * FILES && r.repack.packsRemoved === 0, JSON.stringify(r));
    const want = path.join(tmp.path, 'want');
    fs.cpSync(src, want, { recursive: true });
    return { dir, token, fingerprint, kept: snaps[3]!, src, want };
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}

/** Starts `node bin/obnam-server ARGS`; kills it with SIGKILL `delayMs` after `marker` appears in its output. */
function killAfter(args: string[], marker: RegExp, delayMs: number): { done: Promise<{ killed: boolean; out: string; msAfterMarker: number }> } {
  const child = spawn(process.execPath, [OBNAM_SERVER, ...args], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let armed = false;
  const seen = (d: Buffer) => {
    out += d;
    if (!armed && marker.test(out)) {
      armed = true;
      markedAt = performance.now();
      const t = setTimeout(() => child.kill('SIGKILL'), delayMs);
      child.on('close', () => clearTimeout(t));
    }
  };
  const bound = setTimeout(() => child.kill('SIGKILL'), 60_000); // never hangs: the marker did not come
  child.on('close', () => clearTimeout(bound));
  child.stdout!.on('data', seen);
  child.stderr!.on('data', seen);
  let markedAt = 0;
  const done = new Promise<{ killed: boolean; out: string; msAfterMarker: number }>((resolve) =>
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL', out, msAfterMarker: performance.now() - markedAt })),
  );
  return { done };
}

/** The pack files of a namespace (tmp/ included: new packs being written). */
function packFiles(ns: string): Set<string> {
  const out = new Set<string>();
  for (const sub of ['packs', 'tmp']) {
    for (const f of fs.readdirSync(path.join(ns, sub), { recursive: true, encoding: 'utf8' })) out.add(`${sub}/${f}`);
  }
  return out;
}

async function assertBytesLeft(ns: string, most: number, label: string): Promise<void> {
  const left = await bytesUnder(ns);
  if (left >= most) assert.fail(`${label}: ${left} bytes left (at most ${Math.round(most)}):\n${listing(ns)}`);
}

/** Every file under `dir` with its size, one per line: what a failed space check found. */
function listing(dir: string): string {
  const lines: string[] = [];
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const st = fs.statSync(path.join(dir, f));
    if (st.isFile()) lines.push(`${String(st.size).padStart(10)} ${f}`);
  }
  return lines.join('\n');
}

/**
 * fsck and a restore of the kept snapshot through a fresh server on `dir`;
 * the next repack completes. Returns whether the killed repack was cut off
 * midway: it had changed the packs, and left work to do.
 */
async function check(t: Template, dir: string, tmp: TempDir, label: string): Promise<boolean> {
  const ns = await namespaceDirOf(dir, 'alice');
  const template = packFiles(await namespaceDirOf(t.dir, 'alice'));
  const now = packFiles(ns);
  const changed = now.size !== template.size || [...now].some((f) => !template.has(f));
  const dry = JSON.parse((await obnamServerOk(['repack', dir, '--dry-run', '--json'])).stdout);
  const midway = changed && dry.total.packsRewritten > 0;
  const again = JSON.parse((await obnamServerOk(['repack', dir, '--json'])).stdout);
  assert.equal(again.ok, true, `${label}: the next repack completes`);
  // After a killed repack, copies left twice are resolved as the repack goes, so it may rewrite
  // fewer packs than the dry run (which judges every pack up front) announced, never more.
  assert.ok(again.total.packsRewritten <= dry.total.packsRewritten, `${label}: it does at most what the dry run said (${again.total.packsRewritten} > ${dry.total.packsRewritten})`);
  await assertKeptSnapshotServed(dir, { ...t, passphrase: PASS }, tmp.path, label);
  // Whatever was interrupted, the space is back now: the forgotten snapshots' own bytes are gone,
  // up to what the default threshold leaves unused (a killed repack's duplicates may be within it)...
  await assertBytesLeft(ns, KEPT_BYTES / (1 - DEFAULT_REPACK.maxUnusedPercent / 100), `${label}, after the default repack`);
  // ...and a repack told to leave nothing unused gives back every byte.
  await obnamServerOk(['repack', dir, '--max-unused', '0']);
  await assertBytesLeft(ns, KEPT_BYTES, `${label}, after repack --max-unused 0`);
  return midway;
}

describe('repacking on obnam-server killed with SIGKILL', () => {
  it('obnam-server repack beside serve, and serve during a background repack, at random points: fsck passes, the kept snapshot restores, the next repack completes', async () => {
    const tmp = await tempDir('obnam-repack-faults-');
    try {
      const t = await prepare(tmp);
      const before = await bytesUnder(await namespaceDirOf(t.dir, 'alice'));
      let killedMidway = 0;
      // How long an uninterrupted repack takes from its first line on this machine now: the kills fall within it.
      const calibrate = path.join(tmp.path, 'calibrate');
      fs.cpSync(t.dir, calibrate, { recursive: true });
      const whole = await killAfter(['repack', calibrate], /repacking client alice/, 600_000).done;
      assert.ok(!whole.killed && /1 of 1 namespaces/.test(whole.out), whole.out);
      const span = whole.msAfterMarker;
      for (const seed of SEEDS) {
        const dir = path.join(tmp.path, `repack-${seed}`);
        fs.cpSync(t.dir, dir, { recursive: true });
        let srv: ServerProcess | undefined = await spawnServer(dir);
        try {
          const k = killAfter(['repack', dir], /repacking client alice/, delayOf(`repack ${seed}`, span * 0.5));
          await k.done;
        } finally {
          srv.child.kill('SIGTERM');
          await srv.exited;
          srv = undefined;
        }
        if (await check(t, dir, tmp, `repack-${seed}`)) killedMidway++;
      }
      for (const seed of SEEDS) {
        const dir = path.join(tmp.path, `serve-${seed}`);
        fs.cpSync(t.dir, dir, { recursive: true });
        const config = path.join(dir, 'obnam-server.yaml');
        fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(/idle_seconds: \d+/, 'idle_seconds: 1'));
        const k = killAfter(['serve', '--dir', dir, '--listen', '127.0.0.1:0'], /background repack: looking at an idle namespace/, delayOf(`serve ${seed}`, span * 0.5));
        await k.done;
        if (await check(t, dir, tmp, `serve-${seed}`)) killedMidway++;
      }
      // Kills at random points may all miss the middle (before the first new pack, or after the
      // last removal) on a machine slower or faster than at calibration: then aim at the middle
      // on fresh copies, from early to late, until one lands there (bounded).
      // The window is narrow on a loaded machine (most of a repack's time may be its start), so the
      // aims step finely through it.
      for (let attempt = 0; killedMidway === 0 && attempt < 12; attempt++) {
        const dir = path.join(tmp.path, `repack-extra-${attempt}`);
        fs.cpSync(t.dir, dir, { recursive: true });
        await killAfter(['repack', dir], /repacking client alice/, span * (0.05 + 0.075 * attempt)).done;
        if (await check(t, dir, tmp, `repack-extra-${attempt}`)) killedMidway++;
        fs.rmSync(dir, { recursive: true });
      }
      console.log(`# a repack takes ${Math.round(span)} ms here; ${killedMidway} of ${2 * SEEDS.length} kills cut one off midway`);
      assert.ok(killedMidway >= 1, 'at least one kill cut a repack off midway');
      assert.ok(before > KEPT_BYTES, `the template held the forgotten snapshots' bytes (${before})`);
    } finally {
      await tmp.remove();
    }
  });
});
