/**
 * Gathers new small files' contents into bundles (format-spec 6.7): the
 * backup appends each new or changed small file, in walk order and across
 * directories, to the open bundle, and gets back a promise of its bundle
 * reference. The bundle is stored as an ordinary chunk once it holds
 * `target` bytes, or when the walk asks (`finish`: at the end of the walk's
 * submission, so that no tree waits for a bundle nothing will fill).
 * A file whose content (by SHA-256) equals one of the last RECENT_CONTENTS
 * distinct contents this walk bundled gets that file's reference instead:
 * identical small files in one backup are stored once.
 *
 * Memory: at most one open bundle of about `target` bytes, the bundles
 * being stored, and the recent-content table (at most RECENT_CONTENTS
 * entries of a 32-byte key and one reference: about 4 MiB).
 */
import type { ChunkRef } from '../format/tree.js';
import type { PutResult } from '../repo/views.js';

/** Files of at most this many bytes stay inline (`data`): a bundle reference would cost about as much. */
export const INLINE_ALWAYS = 64;

/** How many distinct recent contents the bundler remembers, least recently used forgotten first (a design number: about 4 MiB). */
export const RECENT_CONTENTS = 16_384;

/** What the bundler stores a closed bundle with. */
export type PutBundle = (plaintext: Uint8Array) => Promise<PutResult>;

interface OpenBundle {
  parts: Buffer[];
  length: number;
  /** Settles the references handed out for this bundle. */
  settle: (r: { id: string } | { error: unknown }) => void;
  done: Promise<{ id: string }>;
}

export class Bundler {
  private open: OpenBundle | undefined;
  /** Set by finish: every later add is stored at once, since nothing else will fill its bundle. */
  private finished = false;
  /** SHA-256 (as a latin1 string) of a recently bundled content -> its reference; Map order is recency. */
  private readonly recent = new Map<string, Promise<ChunkRef>>();

  constructor(
    private readonly target: number,
    private readonly put: PutBundle,
    private readonly onStored: (r: PutResult, plaintextBytes: number) => void = () => undefined,
  ) {}

  /**
   * Appends one file's content, unless `digest` (its SHA-256) names a content
   * bundled recently; resolves to its bundle reference once the bundle is stored.
   */
  add(content: Uint8Array, digest?: Uint8Array): Promise<ChunkRef> {
    const key = digest && Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
    if (key !== undefined) {
      const known = this.recent.get(key);
      if (known) {
        this.recent.delete(key);
        this.recent.set(key, known);
        return known;
      }
    }
    const ref = this.append(content);
    if (key !== undefined) {
      this.recent.set(key, ref);
      if (this.recent.size > RECENT_CONTENTS) this.recent.delete(this.recent.keys().next().value!);
    }
    return ref;
  }

  private append(content: Uint8Array): Promise<ChunkRef> {
    if (this.open && this.open.length > 0 && this.open.length + content.length > this.target) this.close();
    const b = (this.open ??= newBundle());
    const offset = b.length;
    b.parts.push(Buffer.from(content));
    b.length += content.length;
    const ref = b.done.then(({ id }): ChunkRef => ({ id, offset, length: content.length }));
    if (b.length >= this.target || this.finished) this.close();
    return ref;
  }

  /** Stores the open bundle, and from now on each file added at once (the walk has submitted everything). */
  finish(): void {
    this.finished = true;
    this.close();
  }

  /** Stores the open bundle, if there is one (its references resolve once it is stored). */
  private close(): void {
    const b = this.open;
    this.open = undefined;
    if (!b) return;
    const plaintext = Buffer.concat(b.parts, b.length);
    b.parts = [];
    this.put(plaintext).then(
      (r) => {
        this.onStored(r, plaintext.length);
        b.settle({ id: r.id });
      },
      (error: unknown) => b.settle({ error }),
    );
  }
}

function newBundle(): OpenBundle {
  let settle!: OpenBundle['settle'];
  const done = new Promise<{ id: string }>((resolve, reject) => {
    settle = (r) => ('error' in r ? reject(r.error) : resolve(r));
  });
  done.catch(() => undefined); // each reference handed out reports the failure
  return { parts: [], length: 0, settle, done };
}
