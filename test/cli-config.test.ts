/**
 * obnam config: the effective settings from options, environment, the config
 * file and defaults, as YAML (sources as comments) or JSON, with secrets
 * masked; every setting of the schema is shown, and the values are the ones
 * the other commands use.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseDocument } from 'yaml';
import { SETTINGS } from '../cli/config.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const TOKEN = 'token-that-must-never-be-printed';
const PASS = 'passphrase-that-must-never-be-printed';

interface ConfigJson {
  config_file: string;
  config_file_found: boolean;
  values: Record<string, unknown>;
  sources: Record<string, string | null>;
}

describe('obnam config', () => {
  let tmp: TempDir;
  let cfgFile: string;
  let env: Record<string, string>;

  before(async () => {
    tmp = await tempDir();
    const dir = path.join(tmp.path, 'etc');
    fs.mkdirSync(dir);
    cfgFile = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      cfgFile,
      [
        'repo: ../repo',
        'paths: [~/docs, /etc]',
        'exclude: ["*.tmp", "~/.cache"]',
        'exclude_files: [excludes.txt]',
        'tags: nightly',
        'one_file_system: true',
        `token: ${TOKEN}`,
        'passphrase_file: pass.txt',
        'server_fingerprint: AB:CD',
      ].join('\n') + '\n',
    );
    env = { HOME: tmp.path, XDG_CONFIG_HOME: path.join(tmp.path, 'nothing-here'), OBNAM_PASSPHRASE: PASS };
  });
  after(async () => {
    await tmp?.remove();
  });

  it('prints every setting with its value and source; secrets masked', async () => {
    const r = await obnamOk(['--config', cfgFile, 'config', '--ca-file', 'ca.pem'], {
      env: { ...env, OBNAM_SERVER_FINGERPRINT: '01:02' },
      cwd: tmp.path,
    });
    assert.ok(!r.stdout.includes(TOKEN) && !r.stdout.includes(PASS), 'no secret in the output');
    const values = parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(values), Object.keys(SETTINGS), 'every setting of the schema, in its order');
    assert.deepEqual(values, {
      repo: path.join(tmp.path, 'repo'),
      paths: [path.join(tmp.path, 'docs'), '/etc'],
      exclude: ['*.tmp', path.join(tmp.path, '.cache')],
      exclude_files: [path.join(tmp.path, 'etc', 'excludes.txt')],
      exclude_if_present: null,
      exclude_caches: true,
      tags: ['nightly'],
      one_file_system: true,
      passphrase: '********',
      passphrase_file: path.join(tmp.path, 'etc', 'pass.txt'),
      token: '********',
      token_file: null,
      server_fingerprint: '01:02',
      ca_file: path.join(tmp.path, 'ca.pem'),
      request_timeout: null,
    });
    // The source of each value is its comment.
    const doc = parseDocument(r.stdout);
    assert.match(doc.commentBefore ?? '', new RegExp(`config file: ${cfgFile}`));
    const line = (key: string) => r.stdout.split('\n').find((l) => l.startsWith(`${key}:`))!;
    assert.match(line('repo'), /# file$/);
    assert.match(line('server_fingerprint'), /# environment OBNAM_SERVER_FINGERPRINT$/);
    assert.match(line('ca_file'), /# option --ca-file$/);
    assert.match(line('passphrase'), /# environment OBNAM_PASSPHRASE$/);
    assert.match(line('paths'), /# file$/);
    assert.match(line('exclude_caches'), /# default$/);
  });

  it('--json: values, sources and the config file; options beat environment beat the file', async () => {
    const r = await obnamOk(['config', '--json', '--repo', '/from/option'], {
      env: { ...env, OBNAM_CONFIG: cfgFile, OBNAM_TOKEN: 'other-secret-token' },
    });
    assert.ok(!r.stdout.includes('other-secret-token') && !r.stdout.includes(PASS));
    const doc = JSON.parse(r.stdout) as ConfigJson;
    assert.equal(doc.config_file, cfgFile);
    assert.equal(doc.config_file_found, true);
    assert.equal(doc.values.repo, '/from/option');
    assert.equal(doc.sources.repo, 'option --repo');
    assert.equal(doc.values.token, '********');
    assert.equal(doc.sources.token, 'environment OBNAM_TOKEN');
    assert.equal(doc.sources.exclude, 'file');
    assert.equal(doc.values.ca_file, null);
    assert.equal(doc.sources.ca_file, null);
    assert.deepEqual(Object.keys(doc.values), Object.keys(SETTINGS));
    const envOnly = JSON.parse((await obnamOk(['config', '--json'], { env: { ...env, OBNAM_CONFIG: cfgFile, OBNAM_REPO: '/from/env' } })).stdout) as ConfigJson;
    assert.equal(envOnly.values.repo, '/from/env');
    assert.equal(envOnly.sources.repo, 'environment OBNAM_REPO');
  });

  it('without a config file: the defaults', async () => {
    const { OBNAM_PASSPHRASE: _p, ...noPass } = env;
    const doc = JSON.parse((await obnamOk(['config', '--json'], { env: { ...noPass, XDG_DATA_HOME: '' } })).stdout) as ConfigJson;
    assert.equal(doc.config_file, path.join(tmp.path, 'nothing-here', 'obnam', 'config.yaml'));
    assert.equal(doc.config_file_found, false);
    assert.equal(doc.values.repo, path.join(tmp.path, '.local', 'share', 'obnam', 'repo'));
    assert.equal(doc.sources.repo, 'default');
    assert.equal(doc.values.one_file_system, false);
    assert.equal(doc.sources.one_file_system, 'default');
    assert.equal(doc.values.passphrase, null);
    assert.equal(doc.values.paths, null);
    const yaml = (await obnamOk(['config'], { env: { ...noPass, XDG_DATA_HOME: '' } })).stdout;
    assert.match(yaml, /not found/);
    assert.match(yaml, /^token: null # not set$/m);
  });

  it('shows the repository the other commands use', async () => {
    const cfg = path.join(tmp.path, 'etc', 'local.yaml');
    fs.writeFileSync(cfg, 'repo: ./here-repo\n');
    const doc = JSON.parse((await obnamOk(['--config', cfg, 'config', '--json'], { env })).stdout) as ConfigJson;
    const init = JSON.parse((await obnamOk(['--config', cfg, 'init', '--json'], { env })).stdout) as { location: string };
    assert.equal(init.location, doc.values.repo);
    assert.ok(fs.existsSync(path.join(tmp.path, 'etc', 'here-repo')));
  });

  it('a bad config file is an error, as for every command', async () => {
    const bad = path.join(tmp.path, 'etc', 'bad.yaml');
    fs.writeFileSync(bad, 'repo: /x\nwhat_is_this: 1\n');
    const r = await obnam(['--config', bad, 'config'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown setting "what_is_this"/);
    fs.writeFileSync(bad, 'passphrase: in the file\n');
    const p = await obnam(['--config', bad, 'config'], { env });
    assert.equal(p.code, 1, 'the passphrase itself is not a file setting');
    assert.match(p.stderr, /unknown setting "passphrase"/);
  });
});
