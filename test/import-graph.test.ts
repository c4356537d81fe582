/**
 * The module map's rules, checked on the sources: no import cycles; lib/
 * never imports cli/, server/ or mount/, and those three never import each
 * other; no engine imports another engine; the server's client registry has
 * no storage code; lib/blob/ knows nothing of objects or repositories;
 * engines never see a concrete store (only the narrow views of
 * lib/repo/views.ts), and they walk trees only through lib/repo/treewalk.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/cli.js';

const TOP = ['lib', 'cli', 'server', 'mount'];

function sources(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = `${d}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const t of TOP) if (fs.existsSync(path.join(ROOT, t))) walk(t);
  return out;
}

/** Relative imports of a module (static, dynamic and type-only), as repository paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  }
  return out;
}

const graph = new Map(sources().map((f) => [f, importsOf(f)]));

/** The names a module imports from `target` (a repository path), type-only imports included. */
function namesImported(file: string, target: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[2]!)).replace(/\.js$/, '.ts');
    if (to !== target) continue;
    for (const n of m[1]!.split(',')) {
      const name = n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
      if (name) out.push(name);
    }
  }
  return out;
}

const ENGINE = /^lib\/(backup|restore|fsck|diff|forget|gc|dump|fsview)\//;

/** Known exceptions: `obnam mount` and `obnam umount` run the FUSE file system of mount/ (to be moved behind lib/). */
const allowed = (edge: string) => /^cli\/commands\/u?mount\.ts -> mount\/[a-z-]+\.ts$/.test(edge);

describe('module map', () => {
  it('has no import cycles', () => {
    const state = new Map<string, 'active' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'active') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'active');
      for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g, [...stack, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  it('keeps the layers: lib imports no upper layer; cli, server and mount do not import each other', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const top = f.split('/')[0]!;
      for (const d of deps) {
        const dtop = d.split('/')[0]!;
        if (top === 'lib' && dtop !== 'lib') bad.push(`${f} -> ${d}`);
        if (top !== 'lib' && dtop !== 'lib' && dtop !== top && TOP.includes(dtop) && !allowed(`${f} -> ${d}`)) bad.push(`${f} -> ${d}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('keeps the layers of lib/ in order: no module imports one of a higher layer (ARCHITECTURE.md)', () => {
    // Lowest first, as the table in ARCHITECTURE.md.
    const rank = (f: string): number | undefined => {
      if (f === 'lib/errors.ts' || f === 'lib/version.ts') return 0;
      const dir = /^lib\/([a-z-]+)\//.exec(f)?.[1];
      if (dir === undefined) return undefined;
      if (dir === 'util') return 1;
      if (dir === 'format' || dir === 'chunking' || dir === 'crypto') return 2;
      if (dir === 'blob') return 3;
      if (dir === 'store') return 4;
      if (dir === 'repo') return 5;
      if (dir === 'workers') return 6;
      if (ENGINE.test(f)) return 7;
      if (dir === 'engine-workers') return 8;
      return 9; // a directory the table does not name yet
    };
    // The table's named exceptions: blob backends take StoreOptions and the durable file operations
    // from lib/store; utilities take the id and timestamp helpers of lib/format.
    const excepted = (f: string, d: string) =>
      (f.startsWith('lib/blob/') && /^lib\/store\/(store|localfs)\.ts$/.test(d)) ||
      (f.startsWith('lib/util/') && /^lib\/format\/(ids|tree)\.ts$/.test(d));
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = rank(f);
      if (from === undefined) continue;
      for (const d of deps) {
        const to = rank(d);
        if (to !== undefined && to > from && !excepted(f, d)) bad.push(`${f} -> ${d}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('is written down: ARCHITECTURE.md names every module of lib/, cli/, mount/ and server/', () => {
    const named = new Set<string>();
    let sectionDirs: string[] = [];
    const resolve = (t: string) => (/^(lib|cli|server|mount)\//.test(t) ? t : `lib/${t}`);
    for (const line of fs.readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8').split('\n')) {
      if (line.startsWith('#')) {
        sectionDirs = [...line.matchAll(/\b(lib\/[a-z-]+|cli|mount|server)\//g)].map((m) => m[1]!);
        continue;
      }
      // A bare name belongs to the directory of the path named before it on the line, else to the section's.
      let lineDir: string | undefined;
      for (const [, t] of line.matchAll(/`([^`]+\.ts)`/g)) {
        if (t!.includes('/')) {
          const p = resolve(t!);
          lineDir = path.posix.dirname(p);
          if (p.endsWith('/*.ts')) for (const f of graph.keys()) if (path.posix.dirname(f) === lineDir) named.add(f);
          named.add(p);
        } else {
          for (const d of lineDir ? [lineDir] : sectionDirs) named.add(`${d}/${t}`);
        }
      }
    }
    assert.deepEqual([...graph.keys()].filter((f) => !named.has(f)).sort(), []);
  });

  it('keeps engines apart: no engine imports another, and the worker pool (lib/workers) imports none', () => {
    const engineOf = (f: string) => /^lib\/(backup|restore|fsck|diff|forget|gc|dump|fsview)\//.exec(f)?.[1];
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = engineOf(f);
      for (const d of deps) {
        const to = engineOf(d);
        if (to && from && to !== from) bad.push(`${f} -> ${d}`);
        if (to && f.startsWith('lib/workers/')) bad.push(`${f} -> ${d}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('keeps storage in its place: blob backends know no objects, the client registry no storage', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      if (f.startsWith('lib/blob/')) for (const d of deps) if (!/^lib\/(blob\/|errors\.ts|store\/(store|localfs)\.ts)/.test(d)) bad.push(`${f} -> ${d}`);
      if (f === 'server/clients.ts') for (const d of deps) if (/storage|namespaces|lib\/store|lib\/blob/.test(d)) bad.push(`${f} -> ${d}`);
    }
    assert.deepEqual(bad, []);
  });

  it('keeps stores behind the repository: engines and the mount see only its narrow views', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const engine = ENGINE.test(f) || f.startsWith('mount/');
      for (const d of deps) {
        // No engine, and not the FUSE layer, reaches storage code (not even its types).
        if (engine && /^lib\/(store|blob)\//.test(d)) bad.push(`${f} -> ${d}`);
        // The commands open stores through the factory and name specs; the store classes are not theirs.
        if (f.startsWith('cli/') && /^lib\/(store|blob)\//.test(d) && !/^lib\/store\/(open|store)\.ts$/.test(d)) bad.push(`${f} -> ${d}`);
      }
      // Engines take views (lib/repo/views.ts), never the Repository class itself.
      if (engine && namesImported(f, 'lib/repo/repository.ts').includes('Repository')) bad.push(`${f} imports Repository`);
    }
    assert.deepEqual(bad, []);
  });

  it('reaches the store under a repository only in tests', () => {
    const bad: string[] = [];
    for (const f of [...graph.keys(), ...fs.readdirSync(path.join(ROOT, 'bench')).filter((n) => n.endsWith('.ts')).map((n) => `bench/${n}`)]) {
      if (f === 'lib/repo/repository.ts') continue;
      if (fs.readFileSync(path.join(ROOT, f), 'utf8').includes('storeForTests')) bad.push(f);
    }
    assert.deepEqual(bad, []);
  });

  it('has one tree walker: only lib/repo walks tree pages (lib/format/treesplit.ts) itself', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      if (f.startsWith('lib/repo/') || f.startsWith('lib/format/')) continue;
      for (const d of deps) if (d === 'lib/format/treesplit.ts') bad.push(`${f} -> ${d}`);
    }
    assert.deepEqual(bad, []);
  });
});
