/**
 * obnam list: the snapshots, oldest first. A snapshot that cannot be read is
 * named on stderr and counted; `--json` lists it last, as
 * `{"id", "short_id", "damaged": true, "error"}` (readable ones have
 * `"damaged": false`).
 *
 * In a shared repository (format-spec/sharing.md 10.1) each readable
 * snapshot also says whose it is ("owner": member name, "owner_key") and,
 * for one's own, with whom it is shared ("shared_with": the members its
 * stanzas or one's share objects give it to); "readable": true. Members with
 * --can-delete also see the other members' snapshots they cannot read, as
 * `{"id", "short_id", "owner", "owner_key", "hostname", "time",
 * "readable": false}` after the readable ones.
 */
import { encodePublicKey } from '../../lib/crypto/pubkey.js';
import type { Repository, SnapshotInfo } from '../../lib/repo/repository.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { isoTime, localTime, snapshotJson } from '../format.js';
import { formatBytes } from '../progress.js';
import { MemberDirectory, memberDirectory, ownShares } from '../sharing.js';

const keyHex = (k: Uint8Array) => Buffer.from(k).toString('hex');

/** Whose each snapshot is and with whom one's own are shared (version 3 only). */
interface Sharing {
  dir: MemberDirectory;
  mine(s: SnapshotInfo): boolean;
  sharedWith(s: SnapshotInfo): string[];
}

async function sharingOf(repo: Repository): Promise<Sharing> {
  const dir = await memberDirectory(repo);
  const byShare = new Map<string, Set<string>>();
  for (const share of await ownShares(repo)) {
    for (const s of share.snapshots) {
      let names = byShare.get(s.id);
      if (!names) byShare.set(s.id, (names = new Set()));
      names.add(dir.ofKey(share.grantee)?.name ?? share.granteeName);
    }
  }
  const me = keyHex(repo.self.publicKey);
  const mine = (s: SnapshotInfo) => !!s.owner && keyHex(s.owner) === me;
  return {
    dir,
    mine,
    sharedWith: (s) => (mine(s) ? [...new Set([...(s.sharedWith ?? []), ...(byShare.get(s.id) ?? [])])].sort() : []),
  };
}

export async function listCommand(args: GlobalArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const { snapshots: snaps, damaged, unreadable = [] } = await repo.scanSnapshots();
    const sharing = repo.formatVersion === 3 ? await sharingOf(repo) : undefined;
    const hidden = sharing && repo.self.canDelete ? unreadable : [];
    const ownerOf = (s: { owner?: Uint8Array }) => (sharing && s.owner ? sharing.dir.nameOf(s.owner) : '');
    if (ctx.json) {
      const shared = (s: SnapshotInfo) =>
        sharing ? { owner: ownerOf(s), owner_key: s.owner ? encodePublicKey(s.owner) : null, shared_with: sharing.sharedWith(s), readable: true } : {};
      const out = [
        ...snaps.map((s) => ({ ...snapshotJson(s), ...shared(s), damaged: false })),
        ...hidden.map((u) => ({
          id: u.id,
          short_id: u.id.slice(0, 8),
          owner: ownerOf(u),
          owner_key: encodePublicKey(u.owner),
          hostname: u.hostname,
          time: isoTime(u.time),
          readable: false,
          damaged: false,
        })),
        ...damaged.map((d) => ({ id: d.id, short_id: d.id.slice(0, 8), damaged: true, error: d.error.message })),
      ];
      process.stdout.write(JSON.stringify(out) + '\n');
      return EXIT_OK;
    }
    const rows = snaps.map((s) => [
      s.id.slice(0, 8),
      localTime(s.time),
      s.hostname,
      ...(sharing ? [ownerOf(s), sharing.sharedWith(s).join(',')] : []),
      formatBytes(s.summary.bytes),
      String(s.summary.files),
      s.tags.join(','),
      s.paths.join(' '),
    ]);
    for (const u of hidden) {
      rows.push([u.id.slice(0, 8), localTime(u.time), u.hostname, ownerOf(u), '', '', '', '', '(not shared with you)']);
    }
    const head = ['ID', 'Time', 'Host', ...(sharing ? ['Owner', 'Shared with'] : []), 'Size', 'Files', 'Tags', 'Paths'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
    process.stdout.write([fmt(head), ...rows.map(fmt)].join('\n') + '\n');
    const counts = [
      `${snaps.length} snapshot${snaps.length === 1 ? '' : 's'}`,
      ...(hidden.length ? [`${hidden.length} not shared with you`] : []),
      ...(damaged.length ? [`${damaged.length} damaged`] : []),
    ];
    process.stdout.write(counts.join(', ') + '\n');
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
