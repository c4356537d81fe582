/**
 * Format version 3 at library level (format-spec/sharing.md 6-10): a shared
 * repository's backup restores byte-identical with metadata; two members
 * backing up the same data store it once; a member without a stanza gets
 * NOT_SHARED and, holding every stored object and the member key set,
 * cannot open another member's trees or chunks; garbage collection keeps
 * every member's snapshots; a lying reference list is CORRUPT to readers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { generateIdentity, Identity } from '../lib/crypto/identity.js';
import { ObnamError } from '../lib/errors.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { encodeCbor } from '../lib/format/cbor.js';
import { sealObject } from '../lib/format/envelope.js';
import { encodeMemberObject, newMemberId } from '../lib/format/member.js';
import { innerAad, sealInner } from '../lib/format/inner-envelope.js';
import { encodeTreeNode, encodeTreeRefs, TreeNode, treeRefs } from '../lib/format/tree.js';
import { prune } from '../lib/gc/prune.js';
import { diffSnapshots } from '../lib/diff/engine.js';
import { dump } from '../lib/dump/engine.js';
import { fsck } from '../lib/fsck/engine.js';
import { poolReader } from '../lib/fsview/objects.js';
import { FsView } from '../lib/fsview/view.js';
import { Repository } from '../lib/repo/repository.js';
import { addReachable, resolvePath, snapshotPathComponents, walkTree } from '../lib/repo/treewalk.js';
import { IdSet } from '../lib/util/id-map.js';
import { snapshotRoot } from '../lib/repo/views.js';
import { restore } from '../lib/restore/engine.js';
import { LocalStore } from '../lib/store/local.js';
import { tempDir } from './helpers/tmp.js';

async function addMember(repo: Repository, identity: Identity, name: string): Promise<void> {
  const info = { id: newMemberId(), name, publicKey: identity.public, canDelete: false, created: 1_700_000_000, addedBy: repo.self.name };
  assert.ok(await repo.putMemberObject(info.id, encodeMemberObject(repo.memberKeys, info)));
}

/** A shared repository in `dir` with alice (its creator), bob and carol. */
async function family(dir: string): Promise<{ ids: Record<string, Identity>; open: (who: string) => Promise<Repository> }> {
  const ids = { alice: generateIdentity(), bob: generateIdentity(), carol: generateIdentity() };
  const repo = await Repository.initShared(await LocalStore.create(dir), ids.alice, { name: 'alice' });
  await addMember(repo, ids.bob, 'bob');
  await addMember(repo, ids.carol, 'carol');
  await repo.close();
  return { ids, open: async (who) => Repository.openShared(await LocalStore.open(dir), ids[who as keyof typeof ids]) };
}

async function backupAs(repo: Repository, paths: string[], hostname = 'host', parent: string | null | 'default' = null) {
  const pool = startRepoPool(repo, { size: 1 });
  try {
    return await backup(repo, { paths, pool, hostname, parent: parent === 'default' ? undefined : parent });
  } finally {
    await pool.close();
  }
}

async function restoreAs(repo: Repository, id: string, target: string): Promise<void> {
  const pool = startRepoPool(repo, { size: 1 });
  try {
    await restore(repo, await repo.getSnapshot(id), { target, pool });
  } finally {
    await pool.close();
  }
}

function writeTree(src: string, seed: string): void {
  fs.mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(src, 'small.txt'), `small ${seed}\n`);
  fs.writeFileSync(path.join(src, 'sub', 'big.bin'), Buffer.concat([Buffer.from(seed), randomBytes(700_000)]));
  fs.writeFileSync(path.join(src, 'sub', 'deeper', 'text'), `${seed} `.repeat(50_000));
  fs.symlinkSync('small.txt', path.join(src, 'link'));
  fs.chmodSync(path.join(src, 'small.txt'), 0o640);
  fs.utimesSync(path.join(src, 'sub', 'big.bin'), 1_600_000_000.123, 1_600_000_000.123);
}

/** Every file, directory and symlink below `a`, compared with `b`: type, content, mode, mtime. */
function assertSameTree(a: string, b: string): void {
  const sa = fs.lstatSync(a, { bigint: true });
  const sb = fs.lstatSync(b, { bigint: true });
  assert.equal(sb.mode, sa.mode, `${b}: mode`);
  if (!sa.isSymbolicLink()) assert.equal(sb.mtimeNs, sa.mtimeNs, `${b}: mtime`);
  if (sa.isDirectory()) {
    assert.deepEqual(fs.readdirSync(b).sort(), fs.readdirSync(a).sort(), `${b}: names`);
    for (const n of fs.readdirSync(a)) assertSameTree(path.join(a, n), path.join(b, n));
  } else if (sa.isSymbolicLink()) {
    assert.equal(fs.readlinkSync(b), fs.readlinkSync(a));
  } else {
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), `${b}: content`);
  }
}

async function count(it: AsyncIterable<string>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

async function walkAll(repo: Repository, r: { snapshot: { tree: string; treeKey?: Uint8Array } }) {
  const out = [];
  for await (const w of walkTree((id, key) => repo.getTree(id, { key }), snapshotRoot(r.snapshot), Buffer.alloc(0))) out.push(w);
  return out;
}

const rejectsCode = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: unknown) => e instanceof ObnamError && e.code === code);

describe('shared repository (format version 3)', () => {
  it('a backup restores byte-identical with metadata; stored objects carry version 3', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'alice');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      try {
        assert.equal(alice.formatVersion, 3);
        const r = await backupAs(alice, [src]);
        assert.ok(r.snapshot.treeKey, 'the snapshot carries its root key');
        const again = await alice.putSnapshot(r.snapshot);
        assert.deepEqual([again.id, again.isNew], [r.id, false], 'the same snapshot put again (a late put, README 14.6 B5) is the same object');
        const [snap] = await alice.listSnapshots();
        assert.equal(snap!.id, r.id);
        assert.equal(snap!.ownerName, 'alice');
        assert.deepEqual(snap!.sharedWith, []);
        const out = path.join(tmp.path, 'out');
        await restoreAs(alice, r.id, out);
        assertSameTree(src, path.join(out, src));
        const store = Repository.storeForTests(alice);
        for (const kind of ['snapshot', 'tree', 'chunk', 'config'] as const) {
          for await (const id of store.list(kind)) assert.equal((await store.get(kind, id))[4], 3, `${kind} ${id}: envelope version`);
        }
      } finally {
        await alice.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('two members backing up the same data store it once', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'same');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      const first = await backupAs(alice, [src]);
      await alice.close();
      const bob = await open('bob');
      try {
        const store = Repository.storeForTests(bob);
        const chunks = await count(store.list('chunk'));
        const trees = await count(store.list('tree'));
        const second = await backupAs(bob, [src], 'bobs-host');
        assert.ok(first.snapshot.summary.newChunks > 0);
        assert.equal(second.snapshot.summary.newChunks, 0, 'bob stored no chunk');
        // Identical directories give identical nodes: src and everything below it are the same objects.
        // (Its ancestors, /tmp above all, may change between the backups on a busy machine.)
        const srcTree = async (repo: Repository, snap: { tree: string; treeKey?: Uint8Array }) =>
          (await resolvePath((id, key) => repo.getTree(id, { key }), snapshotRoot(snap), snapshotPathComponents(src))).entry!.subtree;
        assert.equal(await srcTree(bob, second.snapshot), await srcTree(bob, first.snapshot));
        assert.ok(second.snapshot.summary.newTrees <= snapshotPathComponents(src).length, 'at most the ancestors of src are new');
        assert.equal(await count(store.list('chunk')), chunks);
        assert.ok((await count(store.list('tree'))) <= trees + snapshotPathComponents(src).length);
        const out = path.join(tmp.path, 'out');
        await restoreAs(bob, second.id, out);
        assertSameTree(src, path.join(out, src));
      } finally {
        await bob.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('a member without a stanza gets NOT_SHARED and cannot open the trees or chunks with everything they hold; a recipient can', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'private');
      const mine = path.join(tmp.path, 'carols');
      writeTree(mine, 'carol');
      const dir = path.join(tmp.path, 'repo');
      const { ids, open } = await family(dir);
      const alice = await open('alice');
      alice.snapshotRecipients = async () => [{ name: 'bob', publicKey: ids.bob.public }];
      const r = await backupAs(alice, [src]);
      await alice.close();

      const bob = await open('bob');
      try {
        const s = await bob.getSnapshot(r.id);
        assert.equal(s.ownerName, 'alice');
        assert.deepEqual(s.sharedWith, ['bob']);
        const out = path.join(tmp.path, 'bob-out');
        await restoreAs(bob, r.id, out);
        assertSameTree(src, path.join(out, src));
        // bob's own backup of the same host and paths takes its parent among his own snapshots, never alice's.
        const first = await backupAs(bob, [src], 'host', 'default');
        assert.equal(first.snapshot.parent, undefined);
        assert.equal((await bob.getSnapshot(first.id)).own, true);
        assert.equal(s.own, false);
        const next = await backupAs(bob, [src], 'host', 'default');
        assert.equal(next.snapshot.parent, first.id);
      } finally {
        await bob.close();
      }

      const carol = await open('carol');
      try {
        await rejectsCode(carol.getSnapshot(r.id), 'NOT_SHARED');
        await assert.rejects(carol.getSnapshot(r.id), /snapshot [0-9a-f]{8} is not shared with you/);
        await rejectsCode(carol.snapshotKey(r.id), 'NOT_SHARED');
        const scan = await carol.scanSnapshots();
        assert.deepEqual(scan.snapshots, []);
        assert.deepEqual(scan.unreadable.filter((u) => u.ownerName === 'alice').map((u) => [u.id, u.hostname, u.tree]), [[r.id, 'host', r.snapshot.tree]]);
        assert.equal(scan.unreadable.length, 3, 'alice\'s and bob\'s two: headers only');
        // What carol holds: every stored object, the member key set, her identity, and the keys of her own snapshot's trees and chunks.
        const own = await backupAs(carol, [mine]);
        const keys: Uint8Array[] = [...Object.values(carol.memberKeys), own.snapshot.treeKey!, randomBytes(32)];
        for await (const w of walkTree((id, key) => carol.getTree(id, { key }), snapshotRoot(own.snapshot), Buffer.alloc(0))) {
          if (w.entry.subtreeKey) keys.push(w.entry.subtreeKey);
          for (const c of w.entry.chunks ?? []) keys.push(c.key!);
        }
        const store = Repository.storeForTests(carol);
        const carolsTrees = new Set<string>([own.snapshot.tree]);
        for await (const w of walkTree((id, key) => carol.getTree(id, { key }), snapshotRoot(own.snapshot), Buffer.alloc(0))) {
          if (w.entry.subtree) carolsTrees.add(w.entry.subtree);
        }
        let tried = 0;
        for await (const id of store.list('tree')) {
          if (carolsTrees.has(id)) continue;
          // The reference list is there for every member (garbage collection) ...
          assert.ok((await carol.getTreeRefs(id)).trees.length + (await carol.getTreeRefs(id)).chunks.length >= 0);
          // ... the node is not: every key fails its authentication.
          for (const key of keys) await assert.rejects(carol.getTree(id, { key }), /authentication failed/, `tree ${id}`);
          tried++;
        }
        assert.ok(tried >= 3, 'alice\'s trees were tried');
        const reach = { trees: new IdSet(), chunks: new IdSet() };
        await addReachable((id) => carol.getTreeRefs(id), r.snapshot.tree, reach);
        const aliceChunks = [...reach.chunks];
        assert.ok(aliceChunks.length >= 2, 'alice\'s chunks are named in the reference lists');
        for (const id of aliceChunks) {
          for (const key of keys) await assert.rejects(carol.getObject('chunk', id, { key }), /authentication failed/, `chunk ${id}`);
        }
      } finally {
        await carol.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('garbage collection by any member keeps every member\'s snapshots and deletes only what none reaches', async () => {
    const tmp = await tempDir();
    try {
      const a = path.join(tmp.path, 'a');
      const b = path.join(tmp.path, 'b');
      const gone = path.join(tmp.path, 'gone');
      writeTree(a, 'alice');
      writeTree(b, 'bob');
      writeTree(gone, 'forgotten');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      const keep = await backupAs(alice, [a]);
      const forget = await backupAs(alice, [gone]);
      await alice.close();
      const bob = await open('bob');
      const bobs = await backupAs(bob, [b]);
      await bob.close();

      const carol = await open('carol');
      try {
        const store = Repository.storeForTests(carol);
        const before = await count(store.list('chunk'));
        await carol.deleteSnapshot(forget.id);
        const report = await prune(carol, { exclusive: true });
        assert.ok(report.deleted.chunks > 0 && report.deleted.trees > 0, 'the forgotten snapshot\'s own objects are deleted');
        assert.equal(await count(store.list('chunk')), before - report.deleted.chunks);
      } finally {
        await carol.close();
      }
      for (const [who, snap, src] of [['alice', keep, a], ['bob', bobs, b]] as const) {
        const repo = await open(who);
        try {
          const out = path.join(tmp.path, `${who}-out`);
          await restoreAs(repo, snap.id, out);
          assertSameTree(src, path.join(out, src));
        } finally {
          await repo.close();
        }
      }
    } finally {
      await tmp.remove();
    }
  });

  it('a tree whose reference list does not match its node is CORRUPT to every reader of the node', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      try {
        const chunk = await alice.putObject('chunk', Buffer.from('some content that a directory names'));
        const node: TreeNode = {
          kind: 'leaf',
          entries: [
            {
              name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: { sec: 1, nsec: 0 }, ctime: { sec: 1, nsec: 0 },
              size: 35, chunks: [{ id: chunk.id, length: 35, key: chunk.key }],
            },
          ],
        };
        const plaintext = encodeTreeNode(node);
        const at = alice.address('tree', plaintext);
        // The lying writer: the same node, under its true id, with a reference list that omits the chunk.
        const content = sealInner(at.key!, innerAad('tree', at.id), plaintext, 1);
        const outer = encodeCbor({ refs: encodeTreeRefs({ trees: [], chunks: [] }), content });
        await Repository.storeForTests(alice).put('tree', at.id, sealObject(alice.memberKeys.members, 'tree', at.id, outer, 0, undefined, 3));
        assert.deepEqual((await alice.getTreeRefs(at.id)).chunks, [], 'the collector sees the lie');
        await assert.rejects(alice.getTree(at.id, { key: at.key }), /reference list does not match/);
        assert.deepEqual(treeRefs(node).chunks, [chunk.id]);
      } finally {
        await alice.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('a snapshot key from a share opens the snapshot only if the share\'s sender is its owner', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'shared later');
      const dir = path.join(tmp.path, 'repo');
      const { ids, open } = await family(dir);
      const alice = await open('alice');
      const r = await backupAs(alice, [src]);
      const key = await alice.snapshotKey(r.id);
      await alice.close();
      const carol = await open('carol');
      try {
        carol.acceptSnapshotKeys([[r.id, key, ids.bob.public]]);
        await rejectsCode(carol.getSnapshot(r.id), 'NOT_SHARED');
      } finally {
        await carol.close();
      }
      const bob = await open('bob');
      try {
        bob.acceptSnapshotKeys([[r.id, randomBytes(32), ids.alice.public]]);
        await rejectsCode(bob.getSnapshot(r.id), 'NOT_SHARED'); // a wrong key opens nothing, and is not damage
        assert.deepEqual((await bob.scanSnapshots()).damaged, []);
      } finally {
        await bob.close();
      }
      const carol2 = await open('carol');
      try {
        carol2.acceptSnapshotKeys([[r.id, key, ids.alice.public]]);
        assert.equal((await carol2.getSnapshot(r.id)).ownerName, 'alice');
        const out = path.join(tmp.path, 'out');
        await restoreAs(carol2, r.id, out);
        assertSameTree(src, path.join(out, src));
      } finally {
        await carol2.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('fsck: clean for the owner and for a member who cannot read the snapshot; a stored tree with a lying reference list is CORRUPT', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'checked');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      try {
        const r = await backupAs(alice, [src]);
        const check = async (repo: Repository) => {
          const pool = startRepoPool(repo, { size: 1 });
          try {
            return await fsck(repo, { pool });
          } finally {
            await pool.close();
          }
        };
        const clean = await check(alice);
        assert.deepEqual(clean.problems, []);
        assert.ok(clean.chunks >= 2 && clean.trees >= 3);
        const bob = await open('bob');
        try {
          const asBob = await check(bob);
          assert.deepEqual(asBob.problems, [], 'another member\'s snapshot is not damage');
          assert.ok(asBob.unreferenced > 0, 'its objects are checked as far as bob can');
        } finally {
          await bob.close();
        }
        // Replace the tree of src/sub with the same node under the same id, but a reference list that names nothing.
        const sub = (await walkAll(alice, r)).find((w) => w.path.toString() === path.join(src, 'sub'))!.entry;
        const plaintext = await alice.getObject('tree', sub.subtree!, { key: sub.subtreeKey });
        const content = sealInner(sub.subtreeKey!, innerAad('tree', sub.subtree!), plaintext, 1);
        const outer = encodeCbor({ refs: encodeTreeRefs({ trees: [], chunks: [] }), content });
        const store = Repository.storeForTests(alice);
        await store.delete('tree', sub.subtree!);
        await store.put('tree', sub.subtree!, sealObject(alice.memberKeys.members, 'tree', sub.subtree!, outer, 0, undefined, 3));
        await store.flush?.();
        const lying = await check(alice);
        assert.equal(lying.problems.length, 1);
        assert.equal(lying.problems[0]!.kind, 'tree');
        assert.equal(lying.problems[0]!.id, sub.subtree);
        assert.equal(lying.problems[0]!.status, 'corrupt');
        assert.match(lying.problems[0]!.message, /reference list does not match/);
        assert.deepEqual(lying.problems[0]!.snapshots, [r.id]);
      } finally {
        await alice.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('diff, dump and the file-system view read a shared repository\'s snapshots with their keys', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'v1');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      try {
        const first = await backupAs(alice, [src]);
        fs.writeFileSync(path.join(src, 'sub', 'deeper', 'text'), 'changed\n');
        const second = await backupAs(alice, [src]);
        const load = (id: string, key?: Uint8Array) => alice.getTree(id, { key });
        const changes: string[] = [];
        for await (const c of diffSnapshots({ load, rootBefore: snapshotRoot(first.snapshot), rootAfter: snapshotRoot(second.snapshot) })) {
          changes.push(`${c.marker} ${c.path.toString()}`);
        }
        assert.ok(changes.includes(`M ${path.join(src, 'sub', 'deeper', 'text')}`), changes.join('\n'));
        const parts: Buffer[] = [];
        await dump(
          { load, getChunk: (id, key) => alice.getObject('chunk', id, { key }), root: snapshotRoot(first.snapshot), path: snapshotPathComponents(path.join(src, 'sub', 'big.bin')) },
          async (d) => void parts.push(Buffer.from(d)),
        );
        assert.ok(Buffer.concat(parts).equals(fs.readFileSync(path.join(src, 'sub', 'big.bin'))));
        const pool = startRepoPool(alice, { size: 1 });
        try {
          const view = await FsView.open({ ...poolReader(pool, alice), listSnapshotIds: () => alice.listSnapshotIds() }, { refreshMs: Infinity });
          const file = Buffer.from(`/ids/${second.id}${path.join(src, 'sub', 'deeper', 'text')}`);
          const h = await view.open(file);
          assert.equal((await view.read(h, 0, 100)).toString(), 'changed\n');
          const big = await view.open(Buffer.from(`/ids/${first.id}${path.join(src, 'sub', 'big.bin')}`));
          assert.ok((await view.read(big, 0, 700_010)).equals(fs.readFileSync(path.join(src, 'sub', 'big.bin'))));
        } finally {
          await pool.close();
        }
      } finally {
        await alice.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('a version 2 snapshot object left by an upgrade in progress is passed over by listings, not reported as damage', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      writeTree(src, 'upgrading');
      const dir = path.join(tmp.path, 'repo');
      const { open } = await family(dir);
      const alice = await open('alice');
      try {
        const r = await backupAs(alice, [src]);
        const store = Repository.storeForTests(alice);
        const old = Buffer.from(await store.get('snapshot', r.id));
        old[4] = 2;
        await store.put('snapshot', randomBytes(32).toString('hex'), old);
        const damaged: string[] = [];
        alice.onDamagedSnapshot = (d) => damaged.push(d.id);
        const scan = await alice.scanSnapshots();
        assert.deepEqual(scan.snapshots.map((x) => x.id), [r.id]);
        assert.deepEqual(scan.damaged, []);
        assert.deepEqual(damaged, []);
      } finally {
        await alice.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('an identity that is not a member gets NOT_A_MEMBER; a passphrase open is refused with advice', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      await family(dir);
      await rejectsCode(Repository.openShared(await LocalStore.open(dir), generateIdentity()), 'NOT_A_MEMBER');
      await assert.rejects(Repository.open(await LocalStore.open(dir), 'x'), /shared.*identity/);
    } finally {
      await tmp.remove();
    }
  });
});
