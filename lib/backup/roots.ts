/**
 * The backed-up paths as a tree of path components. The snapshot's root tree
 * mirrors the file system from "/": directories above a backed-up path are
 * recorded with their real metadata but hold only the components that lead
 * to backed-up paths (as restic does).
 */
import * as path from 'node:path';
import { ObnamError } from '../errors.js';

export interface PathNode {
  /** True if everything below this node is backed up. */
  whole: boolean;
  /** Only when !whole: the components to descend into, by name. */
  children: Map<string, PathNode>;
}

/** Normalises paths (absolute, no trailing slash, nested ones dropped) and builds the component tree. */
export function buildRoots(paths: readonly string[]): { root: PathNode; paths: string[] } {
  if (paths.length === 0) throw new ObnamError('USAGE', 'nothing to back up: give one or more paths');
  const abs = [...new Set(paths.map((p) => path.resolve(p)))].sort();
  const kept: string[] = [];
  for (const p of abs) {
    if (!kept.some((k) => k === '/' || p.startsWith(k + '/'))) kept.push(p);
  }
  const root: PathNode = { whole: false, children: new Map() };
  for (const p of kept) {
    let node = root;
    if (p === '/') {
      root.whole = true;
      break;
    }
    for (const comp of p.split('/').filter(Boolean)) {
      let next = node.children.get(comp);
      if (!next) {
        next = { whole: false, children: new Map() };
        node.children.set(comp, next);
      }
      node = next;
    }
    node.whole = true;
    node.children.clear();
  }
  return { root, paths: kept };
}
