/**
 * debian/copyright in Debian's machine-readable format (DEP-5), made at build
 * time from what is actually in the package: obnam itself, every bundled npm
 * package (license from its package.json, copyright lines from its license
 * file) and the bundled Node.js runtime. A license without a known text here
 * gets the package's own license file verbatim; a package with neither is a
 * build error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const MIT = `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`;

const ISC = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`;

const ZERO_BSD = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH
REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY
AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT,
INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM
LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR
OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THIS SOFTWARE.`;

const BSD_CONDITIONS = (clauses: string[]) => `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

${clauses.map((c, i) => `${i + 1}. ${c}`).join('\n\n')}

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.`;

const BSD2 = [
  'Redistributions of source code must retain the above copyright notice, this\n   list of conditions and the following disclaimer.',
  'Redistributions in binary form must reproduce the above copyright notice,\n   this list of conditions and the following disclaimer in the documentation\n   and/or other materials provided with the distribution.',
];
const BSD3 = [
  ...BSD2,
  'Neither the name of the copyright holder nor the names of its contributors\n   may be used to endorse or promote products derived from this software\n   without specific prior written permission.',
];

const WTFPL = `Everyone is permitted to copy and distribute verbatim or modified copies of
this license document, and changing it is allowed as long as the name is
changed.

DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE TERMS AND CONDITIONS FOR COPYING,
DISTRIBUTION AND MODIFICATION

0. You just DO WHAT THE FUCK YOU WANT TO.`;

/** License texts by DEP-5 short name (the ones Debian ships are referred to). */
const TEXTS: Record<string, string> = {
  'GPL-3+':
    'This program is free software: you can redistribute it and/or modify it under\nthe terms of the GNU General Public License as published by the Free Software\nFoundation, either version 3 of the License, or (at your option) any later\nversion.\n\nOn Debian systems, the complete text of the GNU General Public License\nversion 3 can be found in "/usr/share/common-licenses/GPL-3".',
  'Apache-2.0': 'On Debian systems, the complete text of the Apache License, Version 2.0\ncan be found in "/usr/share/common-licenses/Apache-2.0".',
  Expat: MIT,
  ISC,
  '0BSD': ZERO_BSD,
  'BSD-2-clause': BSD_CONDITIONS(BSD2),
  'BSD-3-clause': BSD_CONDITIONS(BSD3),
  WTFPL,
};

/** SPDX name -> DEP-5 short name. */
const SHORT: Record<string, string> = {
  MIT: 'Expat',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  'GPL-3.0-or-later': 'GPL-3+',
};

/** An SPDX expression ("(MIT OR Apache-2.0)") as a DEP-5 License value ("Expat or Apache-2.0"). */
export function dep5License(spdx: string): string {
  return spdx
    .replace(/^\((.*)\)$/, '$1')
    .split(/\s+OR\s+/)
    .map((n) => SHORT[n.trim()] ?? n.trim())
    .join(' or ');
}

/** A multi-line field value: continuation lines start with a space, empty lines are " .". */
function field(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`))
    .join('\n');
}

const LICENSE_FILE = /^(licen[cs]e|copying)(\.md|\.txt|-mit)?$/i;

/** The copyright lines of a package's license file, without "Copyright" and "(c)". */
function copyrightLines(dir: string): { lines: string[]; licenseFile?: string } {
  const file = fs.readdirSync(dir).find((n) => LICENSE_FILE.test(n));
  if (!file) return { lines: [] };
  const text = fs.readFileSync(path.join(dir, file), 'utf8');
  // "Copyright (c) 2019 Someone" or "Copyright 2019 Someone", not license prose ("copyright license to ...").
  const lines = [...text.matchAll(/^\s*Copyright\s*(\(c\)|©)?\s*(.+)$/gim)]
    .filter((m) => m[1] || /^(?:\(c\)\s*)?\d{4}/i.test(m[2]!))
    .map((m) => m[2]!.trim());
  return { lines: [...new Set(lines)], licenseFile: path.join(dir, file) };
}

export interface BundledPackage {
  /** node_modules/... in the package's app directory. */
  dir: string;
  /** Its path below the app directory. */
  rel: string;
}

/** The copyright file for the package. `appRel` is the app directory without a leading slash. */
export function makeCopyright(opts: { appDir: string; appRel: string; packages: string[]; nodeLicense?: string }): string {
  const paras: string[] = [
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      'Upstream-Name: obnam',
      'Comment: obnam and the npm packages and Node.js runtime it bundles (see README.md).',
    ].join('\n'),
    ['Files: *', 'Copyright: the obnam developers', 'License: GPL-3+'].join('\n'),
  ];
  const used = new Set<string>(['GPL-3+']);
  for (const p of opts.packages) {
    const dir = path.join(opts.appDir, p);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      name: string;
      license?: string;
      author?: string | { name?: string };
    };
    if (!meta.license) throw new Error(`${p}: no license in package.json; cannot write debian/copyright`);
    const license = dep5License(meta.license);
    const { lines, licenseFile } = copyrightLines(dir);
    const author = typeof meta.author === 'string' ? meta.author : meta.author?.name;
    const holders = lines.length ? lines : [author ? author.replace(/\s*[<(].*$/, '') : `the authors of ${meta.name}`];
    const names = license.split(' or ');
    const unknown = names.filter((n) => !TEXTS[n]);
    let licenseField = `License: ${license}`;
    if (unknown.length) {
      if (!licenseFile) throw new Error(`${p}: license ${meta.license} has no text here and the package has no license file`);
      licenseField += '\n' + field(fs.readFileSync(licenseFile, 'utf8').trim());
    } else names.forEach((n) => used.add(n));
    paras.push([`Files: ${opts.appRel}/${p}/*`, `Copyright: ${holders.join('\n ')}`, licenseField].join('\n'));
  }
  paras.push(
    [
      `Files: ${opts.appRel}/node`,
      'Copyright: Node.js contributors and the authors of the libraries it includes (V8, libuv, OpenSSL, ICU, zlib, llhttp and others)',
      'License: Expat',
      'Comment: the Node.js runtime; its full license, covering every included',
      ' library, is at https://github.com/nodejs/node/blob/main/LICENSE',
    ].join('\n'),
  );
  used.add('Expat');
  for (const n of [...used].sort()) paras.push(`License: ${n}\n${field(TEXTS[n]!)}`);
  return paras.join('\n\n') + '\n';
}

/** The paragraphs of a control-file-like text: field name (lower case) -> value (continuation lines kept). */
function paragraphs(text: string): { fields: Map<string, string>; line: number }[] {
  const out: { fields: Map<string, string>; line: number }[] = [];
  let cur: { fields: Map<string, string>; line: number } | undefined;
  let last = '';
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '') {
      cur = undefined;
      return;
    }
    if (!cur) out.push((cur = { fields: new Map(), line: i + 1 }));
    if (/^[ \t]/.test(l)) {
      if (!last) throw new Error(`line ${i + 1}: a continuation line before any field`);
      cur.fields.set(last, `${cur.fields.get(last)!}\n${l}`);
      return;
    }
    const m = /^([!-9;-~][!-9;-~]*):(.*)$/.exec(l);
    if (!m) throw new Error(`line ${i + 1}: not a field: ${l}`);
    last = m[1]!.toLowerCase();
    if (cur.fields.has(last)) throw new Error(`line ${i + 1}: ${m[1]} twice in one paragraph`);
    cur.fields.set(last, m[2]!.trim());
  });
  return out;
}

/**
 * What is wrong with a copyright file in Debian's machine-readable format
 * (copyright-format 1.0): the header paragraph with its Format URI first;
 * every Files paragraph with Files, Copyright and License; every license
 * short name of a Files paragraph without its own text defined once by a
 * standalone License paragraph, and no standalone paragraph unused; `Files: *`
 * first. Empty when it is well formed.
 */
export function dep5Problems(text: string): string[] {
  let paras: ReturnType<typeof paragraphs>;
  try {
    paras = paragraphs(text);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  const [header, ...rest] = paras;
  if (header?.fields.get('format') !== 'https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/') problems.push('the first paragraph has no Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/');
  const needed = new Map<string, number>();
  const defined = new Map<string, number>();
  const files = rest.filter((p) => p.fields.has('files'));
  if (files.length === 0) problems.push('no Files paragraph');
  else if (files[0]!.fields.get('files') !== '*') problems.push(`line ${files[0]!.line}: the first Files paragraph is not Files: *`);
  for (const p of rest) {
    const license = p.fields.get('license');
    if (license === undefined || license.split('\n')[0]!.trim() === '') {
      problems.push(`line ${p.line}: a paragraph without a License short name`);
      continue;
    }
    const [short, ...body] = license.split('\n');
    const hasText = body.some((l) => l.trim() !== '' && l.trim() !== '.');
    if (p.fields.has('files')) {
      if (!p.fields.get('copyright')) problems.push(`line ${p.line}: Files ${p.fields.get('files')} has no Copyright`);
      if (!hasText) for (const n of short!.split(/\s+(?:or|and)\s+/i)) needed.set(n.trim(), p.line);
    } else {
      if (!hasText) problems.push(`line ${p.line}: standalone License ${short} has no text`);
      if (defined.has(short!)) problems.push(`line ${p.line}: License ${short} defined twice`);
      defined.set(short!, p.line);
    }
  }
  for (const [n, line] of needed) if (!defined.has(n)) problems.push(`line ${line}: License ${n} has no text and no standalone License paragraph`);
  for (const [n, line] of defined) if (!needed.has(n)) problems.push(`line ${line}: License ${n} is defined but no Files paragraph uses it`);
  return problems;
}
