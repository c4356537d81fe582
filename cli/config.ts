/**
 * The configuration file (YAML), so that a backup is one command without
 * arguments. Looked for at --config, $OBNAM_CONFIG, or
 * $XDG_CONFIG_HOME/obnam/config.yaml (~/.config/obnam/config.yaml).
 *
 *   repo: /srv/backup/obnam          # or https://host:8443
 *   paths: [/home/alice, /etc]
 *   exclude: ["*.tmp", "~/.cache"]    # "~/" is the home directory
 *   exclude_files: [~/.config/obnam/excludes]
 *   exclude_if_present: [.nobackup]
 *   exclude_caches: true             # the default: skip CACHEDIR.TAG directories
 *   passphrase_file: /home/alice/.config/obnam/passphrase
 *   token: ...                       # remote repositories
 *   server_fingerprint: AB:CD:...    # or ca_file: /path/ca.pem
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ObnamError } from '../lib/errors.js';

export interface FileConfig {
  repo?: string;
  paths?: string[];
  exclude?: string[];
  exclude_files?: string[];
  exclude_if_present?: string[];
  exclude_caches?: boolean;
  tags?: string[];
  passphrase_file?: string;
  token?: string;
  server_fingerprint?: string;
  ca_file?: string;
  one_file_system?: boolean;
}

const STRING_KEYS = ['repo', 'passphrase_file', 'token', 'server_fingerprint', 'ca_file'] as const;
const LIST_KEYS = ['paths', 'exclude', 'exclude_files', 'exclude_if_present', 'tags'] as const;
const BOOLEAN_KEYS = ['one_file_system', 'exclude_caches'] as const;

function isHomePath(p: string): boolean {
  return p === '~' || p.startsWith('~/');
}

/** "~" and "~/..." to the home directory; anything else unchanged. */
export function expandHome(p: string): string {
  return isHomePath(p) ? path.join(os.homedir(), p.slice(2)) : p;
}

export function defaultConfigPath(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'obnam', 'config.yaml');
}

export function defaultRepoPath(): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'obnam', 'repo');
}

/** Loads the config file; a missing default file is an empty config, a missing explicit one an error. */
export async function loadConfig(explicit?: string): Promise<FileConfig> {
  const file = explicit ?? process.env.OBNAM_CONFIG ?? defaultConfigPath();
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (!explicit && !process.env.OBNAM_CONFIG && (e as { code?: string }).code === 'ENOENT') return {};
    throw new ObnamError('USAGE', `cannot read config file ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ObnamError('USAGE', `config file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ObnamError('USAGE', `config file ${file} must be a mapping`);
  const cfg: FileConfig = {};
  const dir = path.dirname(file);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if ((STRING_KEYS as readonly string[]).includes(k)) {
      if (typeof v !== 'string') throw new ObnamError('USAGE', `config ${file}: ${k} must be a string`);
      (cfg as Record<string, unknown>)[k] = v;
    } else if ((LIST_KEYS as readonly string[]).includes(k)) {
      const list = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
        throw new ObnamError('USAGE', `config ${file}: ${k} must be a list of strings`);
      }
      (cfg as Record<string, unknown>)[k] = list;
    } else if ((BOOLEAN_KEYS as readonly string[]).includes(k)) {
      if (typeof v !== 'boolean') throw new ObnamError('USAGE', `config ${file}: ${k} must be true or false`);
      (cfg as Record<string, unknown>)[k] = v;
    } else {
      throw new ObnamError('USAGE', `config ${file}: unknown setting ${JSON.stringify(k)}`);
    }
  }
  // Relative file names in the config are relative to the config file.
  const expand = (p: string) => (isHomePath(p) ? expandHome(p) : path.resolve(dir, p));
  if (cfg.passphrase_file) cfg.passphrase_file = expand(cfg.passphrase_file);
  if (cfg.ca_file) cfg.ca_file = expand(cfg.ca_file);
  if (cfg.paths) cfg.paths = cfg.paths.map(expand);
  if (cfg.exclude_files) cfg.exclude_files = cfg.exclude_files.map(expand);
  // Patterns stay patterns ("*.tmp" matches names anywhere); only "~/" is expanded.
  if (cfg.exclude) cfg.exclude = cfg.exclude.map(expandHome);
  if (cfg.repo && !/^https?:\/\//.test(cfg.repo)) cfg.repo = expand(cfg.repo);
  return cfg;
}
