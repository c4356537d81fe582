/**
 * Man pages made from the programs' own --help (the yargs definitions in
 * cli/main.ts and server/main.ts), so a man page cannot drift from the
 * program: the package build runs the built program, asks it for the help of
 * every command it lists (recursively: `obnam key --help` names key's
 * subcommands), parses yargs' help layout and writes roff. Only the
 * sections --help cannot give (exit status, files, see also) come from the
 * caller.
 */

/** One entry of a help section: a command, a positional or an option. */
export interface HelpEntry {
  /** As printed: `obnam ls <snapshot> [path]`, `paths`, `-r, --repo`. */
  name: string;
  description: string;
  /** yargs' trailing tags without brackets: `string`, `default: []`, `required`. */
  tags: string[];
}

/** The parts of one `--help` text. */
export interface HelpText {
  /** The first line: `obnam backup [paths..]` or `obnam <command> [options]`. */
  usage: string;
  /** The paragraphs between the usage line and the first section. */
  description: string[];
  commands: HelpEntry[];
  positionals: HelpEntry[];
  options: HelpEntry[];
}

const SECTIONS: Record<string, 'commands' | 'positionals' | 'options'> = {
  'Commands:': 'commands',
  'Positionals:': 'positionals',
  'Options:': 'options',
};

/** Splits yargs' trailing tags (`[array] [default: []]`, brackets may nest) off a description. */
function splitTags(text: string): { description: string; tags: string[] } {
  const tags: string[] = [];
  let rest = text.trimEnd();
  while (rest.endsWith(']')) {
    let depth = 0;
    let i = rest.length - 1;
    for (; i >= 0; i--) {
      if (rest[i] === ']') depth++;
      else if (rest[i] === '[' && --depth === 0) break;
    }
    if (i < 0 || (i > 0 && rest[i - 1] !== ' ')) break;
    tags.unshift(rest.slice(i + 1, -1));
    rest = rest.slice(0, i).trimEnd();
  }
  return { description: rest, tags };
}

/** Parses yargs' help layout (any width: wrapped descriptions are joined again). */
export function parseHelp(text: string): HelpText {
  const lines = text.replace(/\s+$/, '').split('\n');
  const help: HelpText = { usage: (lines[0] ?? '').trim(), description: [], commands: [], positionals: [], options: [] };
  let section: 'commands' | 'positionals' | 'options' | undefined;
  let para: string[] = [];
  let raw: string[] | undefined;
  const entries: { section: 'commands' | 'positionals' | 'options'; raw: string[] }[] = [];
  for (const line of lines.slice(1)) {
    const heading = SECTIONS[line.trim()];
    if (heading && !/^\s/.test(line)) {
      section = heading;
      raw = undefined;
      continue;
    }
    if (!section) {
      if (line.trim() === '') {
        if (para.length) help.description.push(para.join(' '));
        para = [];
      } else para.push(line.trim());
      continue;
    }
    if (line.trim() === '') continue;
    const indent = line.length - line.trimStart().length;
    const starts = section === 'options' ? indent <= 6 && line.trimStart().startsWith('-') : indent === 2;
    if (starts) {
      raw = [line.trim()];
      entries.push({ section, raw });
    } else if (raw) raw.push(line.trim());
    else throw new Error(`help text: unexpected line in ${section}: ${line}`);
  }
  if (para.length) help.description.push(para.join(' '));
  for (const e of entries) {
    const [first, ...rest] = e.raw;
    const m = /^(.*?\S)(?: {2,}(.*))?$/.exec(first!);
    if (!m) throw new Error(`help text: cannot parse ${first}`);
    const { description, tags } = splitTags([m[2] ?? '', ...rest].join(' ').replace(/\s+/g, ' ').trim());
    help[e.section].push({ name: m[1]!, description, tags });
  }
  return help;
}

/** Runs the program with these arguments and returns what it printed on stdout. */
export type HelpRunner = (args: string[]) => string;

/** A command with its own help (subcommands are entries of their parent's help). */
export interface CommandHelp {
  /** The words that name it: ['key', 'add']. */
  words: string[];
  help: HelpText;
}

/** The top-level help and the help of every command below it, depth first, in the program's order. */
export function collectHelp(run: HelpRunner): { top: HelpText; commands: CommandHelp[] } {
  const top = parseHelp(run(['--help']));
  const commands: CommandHelp[] = [];
  const visit = (parent: HelpText, prefix: string[]) => {
    for (const c of parent.commands) {
      const words = commandWords(c.name).slice(1);
      if (words.length !== prefix.length + 1) throw new Error(`help text: command ${c.name} is not below ${prefix.join(' ') || 'the top'}`);
      const help = parseHelp(run([...words, '--help']));
      commands.push({ words, help });
      visit(help, words);
    }
  };
  visit(top, []);
  return { top, commands };
}

/** `obnam ls <snapshot> [path]` -> ['obnam', 'ls']. */
function commandWords(usage: string): string[] {
  const words: string[] = [];
  for (const w of usage.split(/\s+/)) {
    if (/^[<[]/.test(w)) break;
    words.push(w);
  }
  return words;
}

/** Escapes text for roff: backslashes, hyphens of options, and a leading dot or quote. */
export function roffEscape(text: string): string {
  const s = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return /^[.']/.test(s) ? `\\&${s}` : s;
}

/** An option or positional name in bold, its metavariables in italics. */
function roffName(name: string): string {
  return name
    .split(/(<[^>]+>|\[[^\]]+\])/)
    .filter((p) => p !== '')
    .map((p) => (/^[<[]/.test(p) ? `\\fI${roffEscape(p)}\\fR` : `\\fB${roffEscape(p)}\\fR`))
    .join('');
}

function entryList(entries: HelpEntry[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    out.push('.TP', roffName(e.name));
    const tags = e.tags.filter((t) => !['string', 'boolean', 'number', 'array'].includes(t));
    out.push(roffEscape(e.description + (tags.length ? ` (${tags.join('; ')})` : '')));
  }
  return out;
}

/** Extra sections written by hand: things --help cannot say. */
export interface ManSection {
  title: string;
  /** roff source of the section body. */
  body: string;
}

export interface ManPageOptions {
  program: string;
  section: 1 | 8;
  version: string;
  /** The date of this version, YYYY-MM-DD. */
  date: string;
  /** The one-line summary for NAME. */
  summary: string;
  extra: ManSection[];
}

/** The man page of a program from its collected help. */
export function renderManPage(h: { top: HelpText; commands: CommandHelp[] }, o: ManPageOptions): string {
  const globalNames = new Set(h.top.options.map((e) => e.name));
  const title = o.section === 8 ? 'System Administration' : 'User Commands';
  const out: string[] = [
    `.\\" Generated from \`${o.program} --help\` by packaging/manpage.ts; do not edit.`,
    `.TH ${o.program.toUpperCase()} ${o.section} "${o.date}" "${o.program} ${o.version}" "${title}"`,
    '.SH NAME',
    `${roffEscape(o.program)} \\- ${roffEscape(o.summary)}`,
    '.SH SYNOPSIS',
    roffName(h.top.usage),
  ];
  if (h.top.description.length) {
    out.push('.SH DESCRIPTION');
    h.top.description.forEach((p, i) => out.push(...(i ? ['.PP'] : []), roffEscape(p)));
  }
  out.push('.SH COMMANDS');
  for (const c of h.commands) {
    const own = c.help.options.filter((e) => !globalNames.has(e.name));
    out.push('.SS ' + roffName(c.help.usage));
    c.help.description.forEach((p, i) => out.push(...(i ? ['.PP'] : []), roffEscape(p)));
    if (c.help.commands.length) {
      out.push('.PP', `Subcommands: ${c.help.commands.map((s) => roffName(commandWords(s.name).slice(-1)[0]!)).join(', ')}.`);
    }
    out.push(...(c.help.positionals.length || own.length ? ['.RS'] : []));
    out.push(...entryList(c.help.positionals), ...entryList(own));
    out.push(...(c.help.positionals.length || own.length ? ['.RE'] : []));
  }
  out.push('.SH OPTIONS', 'These apply to every command.', ...entryList(h.top.options));
  for (const s of o.extra) out.push(`.SH ${s.title}`, s.body.trimEnd());
  return out.join('\n') + '\n';
}
