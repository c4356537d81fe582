/**
 * Settings: the configuration file (YAML), environment variables and global
 * command-line options, described once in SETTINGS. Loading, validation,
 * precedence (option, then environment, then file, then default) and
 * `obnam config` all work from that table, so a new setting is one line here.
 *
 * The file is looked for at --config, $OBNAM_CONFIG, or
 * $XDG_CONFIG_HOME/obnam/config.yaml (~/.config/obnam/config.yaml):
 *
 *   repo: /srv/backup/obnam          # or https://host:8443
 *   paths: [/home/alice, /etc]
 *   exclude: ["*.tmp", "~/.cache"]    # "~/" is the home directory
 *   exclude_files: [~/.config/obnam/excludes]
 *   exclude_if_present: [.nobackup]
 *   exclude_caches: true             # the default: skip CACHEDIR.TAG directories
 *   passphrase_file: /home/alice/.config/obnam/passphrase
 *   token_file: /home/alice/.config/obnam/token   # remote repositories (or token: ...)
 *   server_fingerprint: AB:CD:...    # or ca_file: /path/ca.pem
 *   request_timeout: 300             # seconds one request to the server may take
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ObnamError } from '../lib/errors.js';

/**
 * How a setting's value is checked and read: `path` values are made absolute
 * (relative to the config file, or to the working directory for options and
 * environment variables; `~/` is the home directory), `location` is a path
 * unless it is a URL, `strings`/`paths`/`patterns` are lists (a single
 * string is a list of one; in `patterns` only a leading `~/` is expanded,
 * since "*.tmp" must keep matching names anywhere). Environment variables (strings) set booleans as true/false/1/0
 * and numbers in decimal.
 */
export type SettingType = 'string' | 'path' | 'location' | 'strings' | 'paths' | 'patterns' | 'boolean' | 'number';

export interface Setting {
  type: SettingType;
  describe: string;
  /** The global command-line option (without "--") that sets it. */
  flag?: string;
  /** The environment variable that sets it. */
  env?: string;
  /** Masked wherever settings are shown. */
  secret?: boolean;
  /** False for settings that must not be written in the file (the passphrase itself). */
  file?: boolean;
  default?: () => string | boolean | number | string[];
  /** What a number counts, for messages ("seconds"). */
  unit?: string;
}

export const SETTINGS = {
  repo: { type: 'location', flag: 'repo', env: 'OBNAM_REPO', default: () => defaultRepoPath(), describe: 'repository: a directory or https://HOST:PORT' },
  paths: { type: 'paths', describe: 'what `obnam backup` backs up when given no paths' },
  exclude: { type: 'patterns', describe: 'globs of paths to leave out of backups' },
  exclude_files: { type: 'paths', describe: 'files of more exclude globs, one a line' },
  exclude_if_present: { type: 'strings', describe: 'NAME[:HEADER]: back up a directory holding this file as that file alone' },
  exclude_caches: { type: 'boolean', default: () => true, describe: 'skip the contents of CACHEDIR.TAG directories' },
  tags: { type: 'strings', describe: 'tags for every snapshot' },
  one_file_system: { type: 'boolean', default: () => false, describe: 'do not cross file system boundaries in backups' },
  passphrase: { type: 'string', env: 'OBNAM_PASSPHRASE', secret: true, file: false, describe: 'the passphrase itself' },
  passphrase_file: { type: 'path', flag: 'passphrase-file', env: 'OBNAM_PASSPHRASE_FILE', describe: 'file holding the passphrase' },
  token: { type: 'string', flag: 'token', env: 'OBNAM_TOKEN', secret: true, describe: 'access token for a server' },
  token_file: { type: 'path', flag: 'token-file', env: 'OBNAM_TOKEN_FILE', describe: 'file holding the access token' },
  server_fingerprint: { type: 'string', flag: 'server-fingerprint', env: 'OBNAM_SERVER_FINGERPRINT', describe: "SHA-256 of the server's certificate" },
  ca_file: { type: 'path', flag: 'ca-file', env: 'OBNAM_CA_FILE', describe: 'CA certificate to trust for the server' },
  request_timeout: { type: 'number', flag: 'request-timeout', env: 'OBNAM_REQUEST_TIMEOUT', unit: 'seconds', describe: 'seconds one request to a server may take in all (default 300)' },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;
type ValueOf<T extends SettingType> = T extends 'boolean'
  ? boolean
  : T extends 'number'
    ? number
    : T extends 'strings' | 'paths' | 'patterns'
      ? string[]
      : string;
type FileKeys = { [K in SettingName]: Settings[K] extends { file: false } ? never : K }[SettingName];

/** The settings a config file may hold, as loaded (paths absolute). */
export type FileConfig = { [K in FileKeys]?: ValueOf<Settings[K]['type']> };
/** Every setting's value after precedence; undefined where nothing sets it. */
export type EffectiveValues = { [K in SettingName]?: ValueOf<Settings[K]['type']> };

export type SettingValue = string | boolean | number | string[];
/** Where a value came from: "option --repo", "environment OBNAM_REPO", "file", "default". */
export type SettingSource = `option --${string}` | `environment ${string}` | 'file' | 'default';

const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export function defaultConfigPath(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'obnam', 'config.yaml');
}

/** $XDG_CONFIG_HOME/obnam/identity (~/.config/obnam/identity): the member's identity file. */
export function defaultIdentityPath(): string {
  return path.join(path.dirname(defaultConfigPath()), 'identity');
}

export function defaultRepoPath(): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'obnam', 'repo');
}

/** Which config file applies, and whether it was named explicitly (a missing explicit file is an error). */
export function configFilePath(explicit?: string): { file: string; explicit: boolean } {
  const named = explicit ?? process.env.OBNAM_CONFIG;
  return { file: named ?? defaultConfigPath(), explicit: named !== undefined };
}

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

function isHomePath(p: string): boolean {
  return p === '~' || p.startsWith('~/');
}

/** "~" and "~/..." to the home directory; anything else unchanged. */
export function expandHome(p: string): string {
  return isHomePath(p) ? path.join(os.homedir(), p.slice(2)) : p;
}

/** Makes a path-like value absolute: `~/` is the home directory, else relative to `base`. */
function expandPath(p: string, base: string): string {
  return isHomePath(p) ? expandHome(p) : path.resolve(base, p);
}

/** Checks and normalises one raw value of a setting; `where` names its origin in errors. */
function readValue(name: SettingName, raw: unknown, base: string, where: string): SettingValue {
  const type = (SETTINGS[name] as Setting).type;
  switch (type) {
    case 'boolean': {
      const v = typeof raw === 'string' ? ({ true: true, '1': true, false: false, '0': false } as Record<string, boolean>)[raw] : raw;
      if (typeof v !== 'boolean') throw new ObnamError('USAGE', `${where}: ${name} must be true or false`);
      return v;
    }
    case 'number': {
      const v = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        const unit = (SETTINGS[name] as Setting).unit;
        const what = where.startsWith('config ') ? `${where}: ${name}` : where;
        throw new ObnamError('USAGE', `${what} must be a positive number${unit ? ` of ${unit}` : ''}`);
      }
      return v;
    }
    case 'strings':
    case 'paths':
    case 'patterns': {
      const list = typeof raw === 'string' ? [raw] : raw;
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
        throw new ObnamError('USAGE', `${where}: ${name} must be a list of strings`);
      }
      if (type === 'paths') return list.map((p: string) => expandPath(p, base));
      return type === 'patterns' ? list.map(expandHome) : [...(list as string[])];
    }
    default: {
      if (typeof raw !== 'string') throw new ObnamError('USAGE', `${where}: ${name} must be a string`);
      if (type === 'path' || (type === 'location' && !isUrl(raw))) return expandPath(raw, base);
      return raw;
    }
  }
}

/** Loads the config file; a missing default file is an empty config, a missing explicit one an error. */
export async function loadConfig(explicit?: string): Promise<FileConfig> {
  const { file, explicit: named } = configFilePath(explicit);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (!named && (e as { code?: string }).code === 'ENOENT') return {};
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
  const cfg: Record<string, SettingValue> = {};
  // Relative file names in the config are relative to the config file.
  const dir = path.dirname(path.resolve(file));
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const setting: Setting | undefined = (SETTINGS as Record<string, Setting>)[k];
    if (!setting || setting.file === false) throw new ObnamError('USAGE', `config ${file}: unknown setting ${JSON.stringify(k)}`);
    cfg[k] = readValue(k as SettingName, v, dir, `config ${file}`);
  }
  return cfg as FileConfig;
}

export interface Effective {
  values: EffectiveValues;
  sources: { [K in SettingName]?: SettingSource };
}

/**
 * Every setting after precedence: the global option, then its environment
 * variable (an empty one counts as unset), then the file, then the default.
 */
export function effectiveSettings(
  args: Record<string, unknown>,
  file: FileConfig,
  env: NodeJS.ProcessEnv = process.env,
): Effective {
  const values: Record<string, SettingValue> = {};
  const sources: Record<string, SettingSource> = {};
  const cwd = process.cwd();
  for (const name of SETTING_NAMES) {
    const s: Setting = SETTINGS[name];
    const fromFile = (file as Record<string, SettingValue | undefined>)[name];
    if (s.flag && args[s.flag] !== undefined) {
      values[name] = readValue(name, args[s.flag], cwd, `--${s.flag}`);
      sources[name] = `option --${s.flag}`;
    } else if (s.env && env[s.env]) {
      values[name] = readValue(name, env[s.env], cwd, s.env);
      sources[name] = `environment ${s.env}`;
    } else if (fromFile !== undefined) {
      values[name] = fromFile;
      sources[name] = 'file';
    } else if (s.default) {
      values[name] = s.default();
      sources[name] = 'default';
    }
  }
  return { values: values as EffectiveValues, sources };
}

export const SECRET_MASK = '********';

/** The settings with every secret replaced by SECRET_MASK, and unset ones as null, in SETTINGS order. */
export function maskedSettings(values: EffectiveValues): Record<SettingName, SettingValue | null> {
  const out = {} as Record<SettingName, SettingValue | null>;
  for (const name of SETTING_NAMES) {
    const v = values[name];
    const secret = (SETTINGS[name] as Setting).secret;
    out[name] = v === undefined ? null : secret ? SECRET_MASK : v;
  }
  return out;
}
