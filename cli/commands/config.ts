/**
 * obnam config: the effective settings (global options, then environment,
 * then the config file, then defaults), secrets masked, each with where it
 * came from. YAML with the source as a comment; --json prints
 * { config_file, config_file_found, values, sources }.
 */
import * as fs from 'node:fs/promises';
import { Document, isScalar, isSeq, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { configFilePath, maskedSettings, SettingName } from '../config.js';
import { GlobalArgs, loadSettings } from '../context.js';
import { EXIT_OK } from '../exit.js';

export async function configCommand(args: GlobalArgs): Promise<number> {
  const { settings } = await loadSettings(args);
  const { file } = configFilePath(args.config);
  const found = await fs.access(file).then(
    () => true,
    () => false,
  );
  const values = maskedSettings(settings.values);
  const sources: Record<string, string | null> = {};
  for (const name of Object.keys(values) as SettingName[]) sources[name] = settings.sources[name] ?? null;
  if (args.json) {
    process.stdout.write(JSON.stringify({ config_file: file, config_file_found: found, values, sources }) + '\n');
    return EXIT_OK;
  }
  const doc = new Document(values);
  doc.commentBefore = ` effective obnam configuration (config file: ${file}${found ? '' : ', not found'})`;
  for (const pair of (doc.contents as YAMLMap).items as Pair<Scalar, unknown>[]) {
    const source = sources[String(pair.key.value)];
    const note = ` ${source ?? 'not set'}`;
    if (isSeq(pair.value) && (pair.value as YAMLSeq).items.length) pair.key.comment = note;
    else if (isSeq(pair.value)) {
      (pair.value as YAMLSeq).flow = true;
      (pair.value as YAMLSeq).comment = note;
    } else if (isScalar(pair.value)) pair.value.comment = note;
  }
  process.stdout.write(doc.toString());
  return EXIT_OK;
}
