// Parses AsyncAPI documents with the official parser (@asyncapi/parser), as tests/ use it:
//   node deploy/asyncapi/parse.cjs <node_modules folder> <document>...
// Prints one JSON object: for each document, its diagnostics (severity 0 is an error).
const path = require("path");
const fs = require("fs");
const { Parser } = require(path.resolve(process.argv[2], "@asyncapi/parser"));

async function main() {
  const parser = new Parser();
  const results = {};
  for (const file of process.argv.slice(3)) {
    const { diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"), { source: path.resolve(file) });
    results[file] = diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
