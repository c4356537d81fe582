/**
 * obnam forget [SNAPSHOT...] [--keep-* ...] [--host|--tag|--path ...]
 * [--group-by ...] [--dry-run] [--prune] [--json]: removes the named
 * snapshots, or those the policy does not keep (lib/forget/policy.ts), and
 * prints what is kept (with the rules that keep it) and what is removed.
 * Days, weeks and so on are those of the local time zone (TZ).
 *
 * `--json` prints one document:
 *   {"dry_run", "groups": [{"group": {"hostname"?, "paths"?, "tags"?},
 *     "keep": [SNAPSHOT + "reasons"], "remove": [SNAPSHOT]}],
 *    "named": [SNAPSHOT | {"id", "short_id", "damaged": true, "error"}],
 *    "removed": [ID...], "damaged": [{"id", "error"}]}
 * where SNAPSHOT is as in `list --json`, "removed" what was deleted ([] on a
 * dry run) and "damaged" the unreadable snapshots left alone. With
 * --prune, a collection run follows (cli/commands/prune.ts; refused before
 * anything is removed where prune would refuse) and "prune" holds its report.
 */
import * as path from 'node:path';
import { checkCanPrune } from '../../lib/gc/prune.js';
import { ObnamError } from '../../lib/errors.js';
import { parseDuration } from '../../lib/forget/duration.js';
import { checkForgetRequest, decideForget, deleteSnapshots, ForgetDecision, NamedSnapshot } from '../../lib/forget/engine.js';
import { describeGroup, describePolicy, GroupBy, parseTagList, Policy } from '../../lib/forget/policy.js';
import { systemTimeZone } from '../../lib/forget/timezone.js';
import type { SnapshotInfo } from '../../lib/repo/repository.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { localTime, snapshotJson } from '../format.js';
import { checkMayForget, forgettable, printUnreadable, splitUnreadable, unreadableJson } from '../forget-shared.js';
import { recordForgotten } from '../seen-snapshots.js';
import { printPruneReport, runPrune } from './prune.js';
import { cancelSignal } from '../signals.js';

export interface ForgetArgs extends GlobalArgs {
  snapshots?: string[];
  'keep-last'?: string;
  'keep-hourly'?: string;
  'keep-daily'?: string;
  'keep-weekly'?: string;
  'keep-monthly'?: string;
  'keep-yearly'?: string;
  'keep-within'?: string;
  'keep-tag'?: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
  'group-by'?: string;
  'dry-run'?: boolean;
  prune?: boolean;
}

const COUNT_OPTIONS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

/** N (0 means the rule is off, as in restic) or "unlimited". */
function parseCount(option: string, value: unknown): number {
  if (Array.isArray(value)) throw new ObnamError('USAGE', `--${option} given more than once`);
  const s = String(value).trim();
  if (s === 'unlimited') return Infinity;
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new ObnamError('USAGE', `--${option} ${JSON.stringify(s)}: expected a number of snapshots or "unlimited"`);
  }
  return Number(s);
}

function single(option: string, value: unknown): string {
  if (Array.isArray(value)) throw new ObnamError('USAGE', `--${option} given more than once`);
  return String(value);
}

export function parseGroupBy(value: string): GroupBy {
  const g: GroupBy = { host: false, paths: false, tags: false };
  const s = value.trim();
  if (s === '' || s === 'none') return g;
  for (const part of s.split(',').map((p) => p.trim())) {
    if (part === 'host') g.host = true;
    else if (part === 'paths') g.paths = true;
    else if (part === 'tags') g.tags = true;
    else throw new ObnamError('USAGE', `--group-by ${JSON.stringify(value)}: expected host,paths, host, paths, tags (comma-separated) or none`);
  }
  return g;
}

function policyFrom(args: ForgetArgs): Policy {
  const p: Policy = {};
  for (const k of COUNT_OPTIONS) {
    const v = args[`keep-${k}`];
    if (v !== undefined) p[k] = parseCount(`keep-${k}`, v);
  }
  if (args['keep-within'] !== undefined) p.within = parseDuration(single('keep-within', args['keep-within']));
  if (args['keep-tag']?.length) p.tags = args['keep-tag'].map(parseTagList);
  return p;
}

export async function forgetCommand(args: ForgetArgs): Promise<number> {
  const policy = policyFrom(args);
  const filter = { hosts: args.host ?? [], tags: (args.tag ?? []).map(parseTagList), paths: (args.path ?? []).map((p) => path.resolve(p)) };
  const groupBy = parseGroupBy(args['group-by'] === undefined ? 'host,paths' : single('group-by', args['group-by']));
  const dryRun = !!args['dry-run'];
  checkForgetRequest(args.snapshots ?? [], policy);
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    // A repository prune must refuse (format version 1, a client that may not delete) is refused before anything is removed.
    if (args.prune) await checkCanPrune(repo);
    const signal = cancelSignal();
    const shared = repo.formatVersion === 3;
    // Shared repositories: named snapshots this member cannot read are forgotten by id alone (--can-delete only).
    const { readable: named, unreadable } = shared ? await splitUnreadable(repo, args.snapshots ?? []) : { readable: args.snapshots ?? [], unreadable: [] };
    const decision =
      unreadable.length && !named.length
        ? { groups: [], named: [], damaged: [], remove: [] }
        : await decideForget(shared ? forgettable(repo) : repo, {
            named,
            policy,
            filter,
            groupBy,
            clock: { now: Date.now() / 1000, zone: systemTimeZone() },
            signal,
          });
    if (shared) checkMayForget(repo, decision);
    if (!ctx.json) printDecision(decision, policy);
    if (!ctx.json && unreadable.length) printUnreadable(unreadable);
    const remove = [...decision.remove, ...unreadable.map((u) => u.id)];
    const removed: string[] = [];
    if (!dryRun) {
      try {
        await deleteSnapshots(repo, remove, { signal, onDeleted: (id) => removed.push(id) });
      } finally {
        // These vanished by our own hand: the rollback warning must not name them (also when a later delete failed).
        if (removed.length) await recordForgotten(repo.config.repositoryId, removed);
      }
    }
    if (!ctx.json) {
      if (dryRun) process.stdout.write(`would remove ${plural(remove.length, 'snapshot')} (dry run: nothing changed)\n`);
      else process.stdout.write(`removed ${plural(removed.length, 'snapshot')}` + (removed.length && !args.prune ? ' (obnam prune gives their space back)\n' : '\n'));
    }
    const pruned = args.prune ? await runPrune(repo, { dryRun, json: ctx.json }) : undefined;
    if (pruned && !ctx.json) printPruneReport(pruned);
    if (ctx.json) {
      const doc = decisionJson(decision, dryRun, removed);
      if (unreadable.length) doc.named = [...(doc.named as unknown[]), ...unreadable.map(unreadableJson)];
      process.stdout.write(JSON.stringify({ ...doc, ...(pruned ? { prune: pruned } : {}) }) + '\n');
    }
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n') + '\n';
}

const row = (s: SnapshotInfo) => [s.id.slice(0, 8), localTime(s.time), s.hostname, s.tags.join(','), s.paths.join(' ')];

function printDecision(d: ForgetDecision, policy: Policy): void {
  const out: string[] = [];
  if (!d.named.length) out.push(`policy: ${describePolicy(policy)}\n\n`);
  for (const g of d.groups) {
    out.push(`${describeGroup(g.key)}:\n`);
    out.push(`keep ${plural(g.keep.length, 'snapshot')}:\n`);
    out.push(
      table(
        ['ID', 'Time', 'Host', 'Tags', 'Reasons', 'Paths'],
        g.keep.map((k) => {
          const r = row(k.snapshot);
          return [...r.slice(0, 4), k.reasons.join(', '), r[4]!];
        }),
      ),
    );
    if (g.remove.length) {
      out.push(`remove ${plural(g.remove.length, 'snapshot')}:\n`);
      out.push(table(['ID', 'Time', 'Host', 'Tags', 'Paths'], g.remove.map(row)));
    }
    out.push('\n');
  }
  if (d.named.length) {
    out.push(`remove ${plural(d.named.length, 'snapshot')} (named):\n`);
    out.push(
      table(
        ['ID', 'Time', 'Host', 'Tags', 'Paths'],
        d.named.map((n) => ('snapshot' in n ? row(n.snapshot) : [n.id.slice(0, 8), '(damaged)', '', '', ''])),
      ),
    );
  }
  if (d.damaged.length) out.push(`${plural(d.damaged.length, 'damaged snapshot')} left alone (see the warnings above)\n`);
  process.stdout.write(out.join(''));
}

function namedJson(n: NamedSnapshot): Record<string, unknown> {
  if ('snapshot' in n) return { ...snapshotJson(n.snapshot), damaged: false };
  return { id: n.id, short_id: n.id.slice(0, 8), damaged: true, error: n.damaged.error.message };
}

function decisionJson(d: ForgetDecision, dryRun: boolean, removed: string[]): Record<string, unknown> {
  return {
    dry_run: dryRun,
    groups: d.groups.map((g) => ({
      group: g.key,
      keep: g.keep.map((k) => ({ ...snapshotJson(k.snapshot), reasons: k.reasons })),
      remove: g.remove.map(snapshotJson),
    })),
    named: d.named.map(namedJson),
    removed,
    damaged: d.damaged.map((x) => ({ id: x.id, error: x.error.message })),
  };
}
