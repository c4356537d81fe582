/**
 * Repacking (format-spec 14.8, local-store.md section 5.1): gives back the
 * space of deleted objects by rewriting packs. One algorithm for both pack
 * stores (LocalStore, PackedStore), over the narrow `RepackHost` each offers.
 *
 * A pack's unused bytes are everything but the records reads are served from:
 * records hidden by tombstones, copies of objects that reads take from another
 * pack, and bytes no index entry covers. When the store's unused fraction
 * exceeds `maxUnusedPercent`, the packs with the most unused bytes are
 * rewritten, until what is left unused is within half the limit (small packs
 * are combined along with them). Their live records are copied byte for byte
 * (checked against their digests) into new packs; in batches, the new packs
 * are made durable and indexed first, then the tombstones that deleted their
 * objects meanwhile are carried over, then the old packs are removed, then the
 * tombstones that named them. A crash anywhere leaves at worst duplicates,
 * which are unused space for the next run. Needs no repository key, changes
 * no id. At most one repack runs per store at a time (the host's lock), since
 * two deciding independently which copy of a duplicate is unused could each
 * drop a different one.
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { Kind, KIND_CODE } from '../format/version.js';
import type { PackedLocation } from './compact-index.js';
import { parseTombstoneKey } from './pack-index.js';
import { FOOTER_BYTES, INDEX_ENTRY_BYTES, PACK_HEADER_BYTES, PackEntry, RECORD_HEADER_BYTES } from './pack-format.js';
import type { RepackOptions, RepackResult } from './store.js';

/** A pack as the host's index sees it. */
export interface PackUsage {
  pack: string;
  size: number;
  /** Records the index serves from this pack. */
  liveCount: number;
  /** Their object bytes. */
  liveBytes: number;
}

/** A new pack being filled by the repacker. */
export interface RepackWriter {
  readonly size: number;
  readonly count: number;
  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): Promise<void>;
  /** Makes the pack durable (D1-D3) and adds it to the host's index; returns its id and size. */
  finish(): Promise<{ pack: string; size: number }>;
  /** Gives the pack up (its temporary file removed). */
  abandon(): Promise<void>;
}

export interface Tombstone {
  kind: Kind;
  id: string;
  pack: string;
}

/** The tombstones among `keys` (KIND-ID-PACK names) that name one of `packs`. */
export function tombstonesNaming(keys: Iterable<string>, packs: ReadonlySet<string>): Tombstone[] {
  const out: Tombstone[] = [];
  for (const key of keys) {
    const t = parseTombstoneKey(key);
    if (t && packs.has(t.pack)) out.push(t);
  }
  return out;
}

/** What a pack store offers the repacker. */
export interface RepackHost {
  readonly packSize: number;
  /** Takes the store's repack lock (CONFLICT if another repack holds it); resolves to its release. */
  lock(): Promise<() => Promise<void>>;
  /** Learns every pack and tombstone on storage now (and forgets removed packs). */
  refresh(): Promise<void>;
  usage(): PackUsage[];
  /** The records of a pack that the index serves from it, by offset (digests from the pack's own index); undefined if that index cannot be read. */
  liveRecords(pack: string): Promise<PackEntry[] | undefined>;
  /** Raw bytes of a pack. */
  read(pack: string, offset: number, length: number): Promise<Buffer>;
  newPack(): RepackWriter;
  /** Writes an index segment for these packs (best effort). */
  writeSegment(packs: ReadonlySet<string>): Promise<void>;
  /** Every copy of an object the index knows. */
  locations(kind: Kind, id: string): PackedLocation[];
  /** Lists the tombstones on storage afresh (learning them) and returns those naming these packs. */
  tombstonesNaming(packs: ReadonlySet<string>): Promise<Tombstone[]>;
  /** Writes a tombstone (durably) and hides that copy. */
  tombstone(t: Tombstone): Promise<void>;
  /** Removes packs from storage (durably) and from the index. */
  removePacks(packs: ReadonlySet<string>): Promise<void>;
  removeTombstones(ts: readonly Tombstone[]): Promise<void>;
  /** Called once a run has ended: the host may compact its index. */
  done(): void;
}

/** Bytes a pack needs for its live records: header, records, index, footer. */
export function usedBytes(u: PackUsage): number {
  return u.liveCount ? PACK_HEADER_BYTES + FOOTER_BYTES + u.liveCount * (RECORD_HEADER_BYTES + INDEX_ENTRY_BYTES) + u.liveBytes : 0;
}

export const unusedBytes = (u: PackUsage) => Math.max(0, u.size - usedBytes(u));

/** Largest read of a pack at once. */
const READ_RUN = 4 << 20;
/** Gap between live records still read in one go. */
const READ_GAP = 64 << 10;

/**
 * Which packs to rewrite: none unless the store's unused fraction exceeds the
 * limit; then those with the most unused bytes first, until what stays unused
 * is at most half the limit (so that the next run does not start over at
 * once, and a store just repacked is well within the limit).
 */
export function choosePacks(usage: readonly PackUsage[], maxUnusedPercent: number, packSize: number): PackUsage[] {
  const total = usage.reduce((n, u) => n + u.size, 0);
  let unused = usage.reduce((n, u) => n + unusedBytes(u), 0);
  if (unused * 100 <= maxUnusedPercent * total) return [];
  let after = total;
  const chosen: PackUsage[] = [];
  for (const u of [...usage].sort((a, b) => unusedBytes(b) - unusedBytes(a))) {
    const free = unusedBytes(u);
    if (free <= 0 || unused * 200 <= maxUnusedPercent * after) break;
    chosen.push(u);
    unused -= free;
    after -= free;
  }
  // Small packs (a backup's last pack, a repack's last pack) are combined while we are at it.
  const picked = new Set(chosen);
  const small = usage.filter((u) => u.size < packSize / 4 && !picked.has(u));
  if (chosen.length && small.length >= 4) chosen.push(...small);
  // Packs with nothing live first: they free the most for no copying.
  return [...chosen.filter((u) => !u.liveCount), ...chosen.filter((u) => u.liveCount)];
}

/** Reads a pack's live records and checks each against its header and digest; undefined if any is damaged. */
async function readLive(host: RepackHost, pack: string, records: PackEntry[], signal?: AbortSignal): Promise<{ e: PackEntry; data: Buffer }[] | undefined> {
  const out: { e: PackEntry; data: Buffer }[] = [];
  let i = 0;
  while (i < records.length) {
    throwIfAborted(signal);
    const from = records[i]!.offset - RECORD_HEADER_BYTES;
    let j = i + 1;
    let to = records[i]!.offset + records[i]!.length;
    while (j < records.length) {
      const r = records[j]!;
      const end = r.offset + r.length;
      if (r.offset - RECORD_HEADER_BYTES - to > READ_GAP || end - from > READ_RUN) break;
      to = end;
      j++;
    }
    const bytes = await host.read(pack, from, to - from);
    if (bytes.length !== to - from) return undefined;
    for (; i < j; i++) {
      const e = records[i]!;
      const rec = bytes.subarray(e.offset - RECORD_HEADER_BYTES - from, e.offset + e.length - from);
      const data = rec.subarray(RECORD_HEADER_BYTES);
      const ok =
        rec[0] === KIND_CODE[e.kind] &&
        rec.toString('hex', 1, 33) === e.id &&
        rec.readUInt32BE(33) === e.length &&
        e.digest.equals(rec.subarray(37, RECORD_HEADER_BYTES)) &&
        sha256(data).equals(e.digest);
      if (!ok) return undefined;
      out.push({ e, data });
    }
  }
  return out;
}

export async function repackStore(host: RepackHost, opts: RepackOptions): Promise<RepackResult> {
  const p = opts.maxUnusedPercent;
  if (!(p >= 0 && p <= 100)) throw new ObnamError('USAGE', 'the unused-space limit must be a percentage from 0 to 100');
  const release = opts.dryRun ? undefined : await host.lock();
  try {
    await host.refresh();
    const usage = host.usage();
    const bytesBefore = usage.reduce((n, u) => n + u.size, 0);
    const unusedBytesBefore = usage.reduce((n, u) => n + unusedBytes(u), 0);
    const chosen = choosePacks(usage, p, host.packSize);
    const result: RepackResult = {
      packsBefore: usage.length,
      packsRewritten: 0,
      packsRemoved: 0,
      objectsCopied: 0,
      bytesBefore,
      bytesAfter: bytesBefore,
      bytesFreed: 0,
      unusedBytesBefore,
    };
    if (opts.dryRun) {
      for (const u of chosen) {
        result.packsRemoved++;
        if (u.liveCount) result.packsRewritten++;
        result.objectsCopied += u.liveCount;
        result.bytesAfter -= unusedBytes(u);
      }
      result.bytesFreed = bytesBefore - result.bytesAfter;
      return result;
    }
    await rewrite(host, chosen, result, opts);
    result.bytesFreed = result.bytesBefore - result.bytesAfter;
    return result;
  } finally {
    host.done();
    await release?.();
  }
}

async function rewrite(host: RepackHost, chosen: PackUsage[], result: RepackResult, opts: RepackOptions): Promise<void> {
  const retireEvery = Math.min(256 << 20, 16 * host.packSize);
  /** New packs of this run. */
  const made = new Set<string>();
  /** New packs whose old packs are not being removed yet: removed again if the run fails (see below). */
  let uncommitted = new Set<string>();
  /** Old packs copied and waiting for their new packs to be durable, with their sizes. */
  let pending = new Map<string, { size: number; copied: boolean }>();
  let copiedSinceRetire = 0;
  let writer: RepackWriter | undefined;
  let done = 0;

  const finishWriter = async () => {
    const w = writer;
    writer = undefined;
    if (!w) return;
    if (!w.count) return w.abandon();
    const { pack, size } = await w.finish();
    made.add(pack);
    uncommitted.add(pack);
    result.bytesAfter += size;
  };
  const carryOver = async (ts: Tombstone[]) => {
    // A copy deleted in an old pack after we read it is deleted in the new pack too.
    for (const t of ts) for (const l of host.locations(t.kind, t.id)) if (made.has(l.pack)) await host.tombstone({ kind: t.kind, id: t.id, pack: l.pack });
  };
  const retire = async () => {
    await finishWriter();
    if (!pending.size) return;
    const old = new Set(pending.keys());
    await host.writeSegment(made);
    await opts.onStep?.('published', old);
    await carryOver(await host.tombstonesNaming(old));
    await opts.onStep?.('carried', old);
    uncommitted = new Set();
    await host.removePacks(old);
    await opts.onStep?.('removed', old);
    // Tombstones written while the old packs were being removed.
    const named = await host.tombstonesNaming(old);
    await carryOver(named);
    await host.removeTombstones(named);
    for (const [, { size, copied }] of pending) {
      result.packsRemoved++;
      if (copied) result.packsRewritten++;
      result.bytesAfter -= size;
    }
    done += pending.size;
    opts.onProgress?.(done, chosen.length);
    pending = new Map();
    copiedSinceRetire = 0;
  };

  try {
    opts.onProgress?.(0, chosen.length);
    for (const u of chosen) {
      throwIfAborted(opts.signal);
      const listed = await host.liveRecords(u.pack);
      if (!listed) continue; // its index cannot be read: left alone (scrub reports it)
      // An object stored twice (a killed repack's duplicate) is live in one pack only, but once that pack
      // is removed its other copy takes its place: one already copied by this run is not copied again.
      const records = listed.filter((e) => !host.locations(e.kind, e.id).some((l) => made.has(l.pack)));
      const live = await readLive(host, u.pack, records, opts.signal);
      if (!live) continue; // a damaged record: left alone, scrub reports it
      for (const { e, data } of live) {
        if (writer && writer.count && writer.size + RECORD_HEADER_BYTES + data.length > host.packSize) await finishWriter();
        writer ??= host.newPack();
        await writer.add(e.kind, e.id, data, e.digest);
        result.objectsCopied++;
        copiedSinceRetire += RECORD_HEADER_BYTES + data.length;
      }
      pending.set(u.pack, { size: u.size, copied: live.length > 0 });
      if (copiedSinceRetire >= retireEvery || pending.size >= 256) await retire();
    }
    await retire();
  } catch (e) {
    // Failed or stopped (aborted) before the old packs of this batch were removed: its new packs are
    // mere duplicates, removed while the lock is still held. A deleter that sees no lock relies on the
    // copies a repack made having no other home than packs it still knows (local-store.md 5.1).
    if (uncommitted.size) await host.removePacks(uncommitted).catch(() => undefined);
    throw e;
  } finally {
    if (writer) await writer.abandon().catch(() => undefined);
  }
}
