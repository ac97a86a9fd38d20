// Check curtain's --log-format ecs lines against the Elastic Common Schema
// field definitions of the npm package @elastic/ecs (not curtain's own):
// every top-level key is an ECS field, of the ECS type, within its allowed
// values; curtain's fields live under `curtain`, which ECS does not define.
//
// usage: node check_ecs.js NODE_MODULES_DIR FILE
const fs = require("fs");
const path = require("path");
const [modules, file] = process.argv.slice(2);
const { EcsFlat } = require(path.resolve(modules, "@elastic/ecs/generated/ecs_flat.js"));

const fail = (msg) => {
  console.error(msg);
  process.exit(1);
};
if (Object.keys(EcsFlat).some((k) => k === "curtain" || k.startsWith("curtain."))) {
  fail("ECS defines curtain.*: the namespace is not ours");
}
const typeOk = {
  keyword: (v) => typeof v === "string",
  constant_keyword: (v) => typeof v === "string",
  match_only_text: (v) => typeof v === "string",
  text: (v) => typeof v === "string",
  wildcard: (v) => typeof v === "string",
  long: (v) => Number.isInteger(v),
  date: (v) => typeof v === "string" && !Number.isNaN(Date.parse(v)),
};
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length);
for (const line of lines) {
  let doc;
  try {
    doc = JSON.parse(line);
  } catch (e) {
    fail(`not JSON (${e.message}): ${line}`);
  }
  for (const [key, value] of Object.entries(doc)) {
    if (key === "curtain") {
      if (typeof value !== "object" || Array.isArray(value)) fail(`curtain is not an object: ${line}`);
      continue;
    }
    const field = EcsFlat[key];
    if (!field) fail(`${key} is not an ECS field: ${line}`);
    const ok = typeOk[field.type];
    if (!ok) fail(`${key}: no check for ECS type ${field.type}`);
    if (!ok(value)) fail(`${key}=${JSON.stringify(value)} is not of ECS type ${field.type}: ${line}`);
    const allowed = (field.allowed_values || []).map((a) => a.name);
    if (allowed.length && !allowed.includes(value)) fail(`${key}=${value} is not one of ${allowed}: ${line}`);
  }
  for (const key of ["@timestamp", "log.level", "message", "ecs.version", "event.action"]) {
    if (!(key in doc)) fail(`no ${key}: ${line}`);
  }
}
console.log(`ecs: ${lines.length} documents checked against @elastic/ecs`);
