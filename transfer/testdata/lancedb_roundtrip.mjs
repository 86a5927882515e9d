// Loads mmdb's LanceDB export into LanceDB through its official Node
// package, builds a vector index on each table, and answers the probes.
// Usage: node lancedb_roundtrip.mjs PLAN.json OUT.json
// PLAN: {"dir": lance folder, "files": [{"path", "table", "metric",
// "probes": [[...], ...]}]}. OUT: per file the schema LanceDB read, the
// row count, the indices, and each probe's top-10 ids.
import * as lancedb from "@lancedb/lancedb";
import { readParquet } from "parquet-wasm";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

// LanceDB takes apache-arrow's CommonJS build: tables from the ESM build
// fail its instanceof checks.
const { tableFromIPC } = createRequire(import.meta.url)("apache-arrow");

const [planFile, outFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, "utf8"));
const db = await lancedb.connect(plan.dir);
const out = [];
for (const f of plan.files) {
  const bytes = new Uint8Array(readFileSync(f.path));
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  const tbl = await db.createTable(f.table, table, { mode: "overwrite" });
  const partitions = 4;
  await tbl.createIndex("vector", { config: lancedb.Index.ivfFlat({ distanceType: f.metric, numPartitions: partitions }) });
  const schema = await tbl.schema();
  const top = [];
  for (const p of f.probes) {
    // Every partition probed: the IVF index then ranks exactly.
    const rows = await tbl.search(p).distanceType(f.metric).nprobes(partitions).limit(10).select(["id"]).toArray();
    top.push(rows.map((r) => r.id));
  }
  out.push({
    table: f.table,
    rows: await tbl.countRows(),
    fields: schema.fields.map((x) => ({ name: x.name, type: String(x.type), nullable: x.nullable })),
    indices: (await tbl.listIndices()).map((i) => ({ name: i.name, type: i.indexType, columns: i.columns })),
    top,
  });
}
writeFileSync(outFile, JSON.stringify(out));
